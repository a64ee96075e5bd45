/// One single-server membership change (dissertation §4.1): one member added (as a learner),
/// promoted, or removed per configuration entry, so that any majority of the old voters and any
/// majority of the new overlap and two leaders cannot be elected in one term.
public enum ConfigurationChange: Sendable, Equatable, Hashable {
    /// A new member that receives the log but does not vote.
    case addLearner(NodeID)
    /// A learner becomes a voter (once it has caught up).
    case promoteLearner(NodeID)
    /// A voter or learner leaves; the leader itself may be removed.
    case remove(NodeID)

    /// The change's 9-byte encoding in a ``RaftEntry/Kind/configurationChange`` entry: a kind byte
    /// (1 add learner, 2 promote, 3 remove), then the node identifier, little-endian like every
    /// integer ClusDB stores (docs/FORMATS.md).
    public var encoded: [UInt8] {
        let (kind, node): (UInt8, NodeID)
        switch self {
        case .addLearner(let id): (kind, node) = (1, id)
        case .promoteLearner(let id): (kind, node) = (2, id)
        case .remove(let id): (kind, node) = (3, id)
        }
        return [kind] + (0..<8).map { UInt8(truncatingIfNeeded: node >> (8 * $0)) }
    }

    /// Decodes ``encoded``; nil for bytes that are not a change.
    public init?(encoded bytes: [UInt8]) {
        guard bytes.count == 9 else { return nil }
        let node = bytes[1...].reversed().reduce(NodeID(0)) { $0 << 8 | NodeID($1) }
        switch bytes[0] {
        case 1: self = .addLearner(node)
        case 2: self = .promoteLearner(node)
        case 3: self = .remove(node)
        default: return nil
        }
    }

    /// The member the change is about.
    public var node: NodeID {
        switch self {
        case .addLearner(let id), .promoteLearner(let id), .remove(let id): id
        }
    }
}
