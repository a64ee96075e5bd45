import ClusDBModel
import ClusDBRaft

/// The wire form of a ``RaftMessage`` in a ``PeerFrame/Kind/raftMessage`` frame
/// (docs/FORMATS.md, "Peer protocol").
///
/// Body: from, to, term (u64 each), a body tag (u8), then the tag's fields in declaration order:
/// integers u64, booleans one byte (0 or 1; anything else is refused), entries as a u32 count and
/// per entry index (u64), term (u64), kind (u8) and a length-prefixed payload, snapshot metadata
/// as index, term and the length-prefixed ``RaftConfiguration/encoded``. Integers little-endian.
/// Decoding checks every bound and refuses trailing bytes: a peer's bytes are never trusted.
public enum RaftMessageCoding {
    /// The tag of each body (stable: part of the protocol).
    enum Tag: UInt8 {
        case preVote = 1, preVoteResponse, vote, voteResponse, append, appendResponse, heartbeat, heartbeatResponse
        case installSnapshot, timeoutNow, commitHint, readIndex, readIndexResponse
    }

    /// Bytes an entry takes besides its payload: index, term, kind, payload length.
    static let entryOverheadBytes = 21

    /// The frame body for `message`.
    public static func encode(_ message: RaftMessage) -> [UInt8] {
        var writer = ByteWriter(capacity: 64)
        writer.u64(message.from)
        writer.u64(message.to)
        writer.u64(message.term)
        func flag(_ value: Bool) { writer.u8(value ? 1 : 0) }
        switch message.body {
        case .preVote(let lastIndex, let lastTerm):
            writer.u8(Tag.preVote.rawValue)
            writer.u64(lastIndex)
            writer.u64(lastTerm)
        case .preVoteResponse(let granted):
            writer.u8(Tag.preVoteResponse.rawValue)
            flag(granted)
        case .vote(let lastIndex, let lastTerm, let transfer):
            writer.u8(Tag.vote.rawValue)
            writer.u64(lastIndex)
            writer.u64(lastTerm)
            flag(transfer)
        case .voteResponse(let granted):
            writer.u8(Tag.voteResponse.rawValue)
            flag(granted)
        case .append(let previousIndex, let previousTerm, let entries, let commit):
            writer.u8(Tag.append.rawValue)
            writer.u64(previousIndex)
            writer.u64(previousTerm)
            writer.u32(UInt32(entries.count))
            for entry in entries {
                writer.u64(entry.index)
                writer.u64(entry.term)
                writer.u8(entry.kind.rawValue)
                writer.lengthPrefixed(entry.payload)
            }
            writer.u64(commit)
        case .appendResponse(let index, let rejected, let hintIndex, let hintTerm):
            writer.u8(Tag.appendResponse.rawValue)
            writer.u64(index)
            flag(rejected)
            writer.u64(hintIndex)
            writer.u64(hintTerm)
        case .heartbeat(let commit, let context):
            writer.u8(Tag.heartbeat.rawValue)
            writer.u64(commit)
            writer.u64(context)
        case .heartbeatResponse(let context):
            writer.u8(Tag.heartbeatResponse.rawValue)
            writer.u64(context)
        case .installSnapshot(let metadata):
            writer.u8(Tag.installSnapshot.rawValue)
            writer.u64(metadata.index)
            writer.u64(metadata.term)
            writer.lengthPrefixed(metadata.configuration.encoded)
        case .timeoutNow:
            writer.u8(Tag.timeoutNow.rawValue)
        case .commitHint(let index, let term):
            writer.u8(Tag.commitHint.rawValue)
            writer.u64(index)
            writer.u64(term)
        case .readIndex(let context):
            writer.u8(Tag.readIndex.rawValue)
            writer.u64(context)
        case .readIndexResponse(let context, let index):
            writer.u8(Tag.readIndexResponse.rawValue)
            writer.u64(context)
            writer.u64(index)
        }
        return writer.bytes
    }

    /// Decodes a frame body.
    /// - Throws: `ERROR_INVALID_DATA` naming what is wrong: a field cut short, an unknown tag or
    ///   entry kind, a flag other than 0 or 1, an invalid configuration, trailing bytes.
    public static func decode(_ body: [UInt8]) throws(ClusterError) -> RaftMessage {
        var reader = ByteReader(body)
        let from = try reader.u64()
        let to = try reader.u64()
        let term = try reader.u64()
        func flag() throws(ClusterError) -> Bool {
            switch try reader.u8() {
            case 0: return false
            case 1: return true
            case let other: throw ClusterError(.invalidData, "a Raft message flag is \(other), not 0 or 1")
            }
        }
        let tagByte = try reader.u8()
        guard let tag = Tag(rawValue: tagByte) else {
            throw ClusterError(.invalidData, "unknown Raft message tag \(tagByte)")
        }
        let messageBody: RaftMessage.Body
        switch tag {
        case .preVote:
            messageBody = .preVote(lastIndex: try reader.u64(), lastTerm: try reader.u64())
        case .preVoteResponse:
            messageBody = .preVoteResponse(granted: try flag())
        case .vote:
            messageBody = .vote(lastIndex: try reader.u64(), lastTerm: try reader.u64(), transfer: try flag())
        case .voteResponse:
            messageBody = .voteResponse(granted: try flag())
        case .append:
            let previousIndex = try reader.u64()
            let previousTerm = try reader.u64()
            let count = Int(try reader.u32())
            // The count comes from the peer: bound it by the bytes left before reserving.
            guard count <= (body.count - reader.offset) / entryOverheadBytes else {
                throw ClusterError(.invalidData, "an append claims \(count) entries in \(body.count - reader.offset) bytes")
            }
            var entries: [RaftEntry] = []
            entries.reserveCapacity(count)
            for _ in 0..<count {
                let index = try reader.u64()
                let entryTerm = try reader.u64()
                let kindByte = try reader.u8()
                guard let kind = RaftEntry.Kind(rawValue: kindByte) else {
                    throw ClusterError(.invalidData, "an appended entry at index \(index) has unknown kind \(kindByte)")
                }
                entries.append(RaftEntry(index: index, term: entryTerm, kind: kind, payload: Array(try reader.lengthPrefixed())))
            }
            messageBody = .append(previousIndex: previousIndex, previousTerm: previousTerm, entries: entries, commit: try reader.u64())
        case .appendResponse:
            messageBody = .appendResponse(index: try reader.u64(), rejected: try flag(), hintIndex: try reader.u64(), hintTerm: try reader.u64())
        case .heartbeat:
            messageBody = .heartbeat(commit: try reader.u64(), context: try reader.u64())
        case .heartbeatResponse:
            messageBody = .heartbeatResponse(context: try reader.u64())
        case .installSnapshot:
            let index = try reader.u64()
            let snapshotTerm = try reader.u64()
            guard let configuration = RaftConfiguration(encoded: Array(try reader.lengthPrefixed())) else {
                throw ClusterError(.invalidData, "a snapshot message carries an invalid configuration")
            }
            messageBody = .installSnapshot(SnapshotMetadata(index: index, term: snapshotTerm, configuration: configuration))
        case .timeoutNow:
            messageBody = .timeoutNow
        case .commitHint:
            messageBody = .commitHint(index: try reader.u64(), term: try reader.u64())
        case .readIndex:
            messageBody = .readIndex(context: try reader.u64())
        case .readIndexResponse:
            messageBody = .readIndexResponse(context: try reader.u64(), index: try reader.u64())
        }
        try reader.expectEnd()
        return RaftMessage(from: from, to: to, term: term, body: messageBody)
    }
}
