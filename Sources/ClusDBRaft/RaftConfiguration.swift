/// Who takes part in the cluster: voters decide elections and commitment; learners receive the
/// log but neither vote nor count.
public struct RaftConfiguration: Sendable, Equatable, Hashable {
    /// The voting members.
    public var voters: Set<NodeID>
    /// The non-voting members (new members catch up as learners before they are promoted).
    public var learners: Set<NodeID>

    /// Creates a configuration; a node is never both voter and learner.
    public init(voters: Set<NodeID>, learners: Set<NodeID> = []) {
        precondition(voters.isDisjoint(with: learners), "a node is a voter or a learner, not both")
        self.voters = voters
        self.learners = learners
    }

    /// Whether no node is both voter and learner (a configuration decoded from a disk or a peer
    /// is checked with this before use; the initializer traps on such input from code).
    public var isValid: Bool { voters.isDisjoint(with: learners) }

    /// Every member, voters and learners.
    public var members: Set<NodeID> { voters.union(learners) }

    /// Votes needed for a majority of the voters.
    public var quorum: Int { voters.count / 2 + 1 }

    /// The configuration's encoding, as the hive records it beside each checkpoint's state
    /// (docs/FORMATS.md, "Membership"): the voter count and the learner count (4 bytes each),
    /// then the voters and the learners in ascending order (8 bytes each), every integer
    /// little-endian. Sorted, so equal configurations encode to equal bytes on every replica.
    public var encoded: [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(8 + 8 * members.count)
        func put<T: FixedWidthInteger>(_ value: T) { bytes.append(contentsOf: (0..<T.bitWidth / 8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }) }
        put(UInt32(voters.count))
        put(UInt32(learners.count))
        for id in voters.sorted() { put(id) }
        for id in learners.sorted() { put(id) }
        return bytes
    }

    /// Decodes ``encoded``; nil for bytes that are not a valid configuration (wrong length,
    /// members out of order or repeated, a node both voter and learner, no voter).
    public init?(encoded bytes: [UInt8]) {
        func get<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
            (0..<T.bitWidth / 8).reduce(T(0)) { $0 | T(bytes[offset + $1]) << (8 * $1) }
        }
        guard bytes.count >= 8 else { return nil }
        let voterCount = Int(get(UInt32.self, at: 0))
        let learnerCount = Int(get(UInt32.self, at: 4))
        guard voterCount >= 1, voterCount <= Self.membersMax, learnerCount <= Self.membersMax,
            bytes.count == 8 + 8 * (voterCount + learnerCount)
        else { return nil }
        let ids = (0..<voterCount + learnerCount).map { get(UInt64.self, at: 8 + 8 * $0) }
        let voters = ids.prefix(voterCount)
        let learners = ids.dropFirst(voterCount)
        guard zip(voters, voters.dropFirst()).allSatisfy({ $0 < $1 }), zip(learners, learners.dropFirst()).allSatisfy({ $0 < $1 }) else { return nil }
        let configuration = RaftConfiguration(unchecked: Set(voters), learners: Set(learners))
        guard configuration.isValid else { return nil }
        self = configuration
    }

    /// The most members a decoded configuration may name, of each kind: far above any cluster
    /// (DESIGN §2 allows seven nodes), low enough that a damaged count cannot ask for gigabytes.
    public static let membersMax = 1_024

    /// A configuration from decoded bytes, checked by the caller with ``isValid``.
    private init(unchecked voters: Set<NodeID>, learners: Set<NodeID>) {
        self.voters = voters
        self.learners = learners
    }

    /// This configuration after `change`, or nil when the change does not apply to it (adding a
    /// member that exists, promoting a non-learner, removing a stranger, removing the last voter).
    public func applying(_ change: ConfigurationChange) -> RaftConfiguration? {
        var next = self
        switch change {
        case .addLearner(let node):
            guard !members.contains(node) else { return nil }
            next.learners.insert(node)
        case .promoteLearner(let node):
            guard learners.contains(node) else { return nil }
            next.learners.remove(node)
            next.voters.insert(node)
        case .remove(let node):
            guard members.contains(node) else { return nil }
            next.voters.remove(node)
            next.learners.remove(node)
            guard !next.voters.isEmpty else { return nil }
        }
        return next
    }
}
