import ClusDBModel

/// A simulated client's write: one registry value of the root key set to a value no other write
/// uses, in the client's session — the production command, ``HiveCommand/sessioned(_:_:)`` around
/// ``HiveCommand/setValue(key:name:value:createKey:)``, in its production encoding.
struct ClientWrite: Sendable, Equatable, Hashable {
    /// The session's client id (nonzero).
    var client: UInt64
    /// The write's number in the session, from 1.
    var sequence: UInt64
    /// The value's name in the root key.
    var key: String
    /// The `REG_SZ` data, unique to this write (so that its taking effect can be seen).
    var value: String

    init(client: UInt64, sequence: UInt64, key: String, value: String) {
        precondition(client != 0 && sequence != 0, "sessions number clients and writes from 1")
        self.client = client
        self.sequence = sequence
        self.key = key
        self.value = value
    }

    /// The command a client sends.
    var command: HiveCommand {
        .sessioned(ClientSession(client: client, sequence: sequence), .setValue(key: .root, name: key, value: .string(value), createKey: false))
    }

    /// The log entry's payload: the command's production encoding.
    var encoded: [UInt8] { command.encoded() }

    /// The write a command is, nil for any other command.
    init?(command: HiveCommand) {
        guard case .sessioned(let session, .setValue(let key, let name, .string(let value), false)) = command, key.isRoot else { return nil }
        self.init(client: session.client, sequence: session.sequence, key: name, value: value)
    }
}
