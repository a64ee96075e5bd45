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
