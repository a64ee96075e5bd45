/// The simulator's state machine: registry values by name, with client sessions so that a
/// write retried after a timeout or a leader change is applied once (dissertation §6.3).
///
/// It stands in for the hive until the simulator drives the node itself; its session rule is the
/// one the hive will keep. Applied atomically with its applied index (etcd #13766).
struct KeyValueStateMachine: Sendable, Equatable {
    /// The values.
    private(set) var values: [String: String] = [:]
    /// Per client, the highest sequence number applied.
    private(set) var sessions: [UInt64: UInt64] = [:]
    /// The index of the last applied entry.
    private(set) var appliedIndex: UInt64 = 0
    /// Every (client, sequence) applied, in order, for the exactly-once checker.
    private(set) var appliedWrites: [ClientWrite] = []

    /// Applies a committed entry's command; returns the write when it took effect.
    mutating func apply(index: UInt64, payload: [UInt8]?, applyRetriedTwice: Bool) -> ClientWrite? {
        precondition(index == appliedIndex + 1, "entries are applied in order, once (\(index) after \(appliedIndex))")
        appliedIndex = index
        guard let payload, let write = ClientWrite(encoded: payload) else { return nil }
        if !applyRetriedTwice, let last = sessions[write.client], write.sequence <= last { return nil }
        sessions[write.client] = max(sessions[write.client] ?? 0, write.sequence)
        values[write.key] = write.value
        appliedWrites.append(write)
        return write
    }

    /// Replaces the whole state with a snapshot's image.
    mutating func install(_ image: KeyValueStateMachine) {
        self = image
    }
}

/// A client's write as a command: who, which sequence number, which value.
struct ClientWrite: Sendable, Equatable, Hashable {
    var client: UInt64
    var sequence: UInt64
    var key: String
    var value: String

    /// The command bytes: client and sequence (8 bytes each, big-endian), then key, a 0 byte, value.
    var encoded: [UInt8] {
        var bytes: [UInt8] = []
        for number in [client, sequence] { for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: number >> UInt64(shift))) } }
        bytes += Array(key.utf8) + [0] + Array(value.utf8)
        return bytes
    }

    init(client: UInt64, sequence: UInt64, key: String, value: String) {
        self.client = client
        self.sequence = sequence
        self.key = key
        self.value = value
    }

    init?(encoded bytes: [UInt8]) {
        guard bytes.count >= 17, let separator = bytes[16...].firstIndex(of: 0) else { return nil }
        client = bytes[0..<8].reduce(0) { $0 << 8 | UInt64($1) }
        sequence = bytes[8..<16].reduce(0) { $0 << 8 | UInt64($1) }
        key = String(decoding: bytes[16..<separator], as: UTF8.self)
        value = String(decoding: bytes[(separator + 1)...], as: UTF8.self)
    }
}
