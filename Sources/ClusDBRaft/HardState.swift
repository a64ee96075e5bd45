/// The state a replica must make durable before it sends anything that depends on it
/// (Raft Figure 2's "persistent state" beside the log): a replica that forgot its vote after a
/// crash could vote twice in one term.
public struct HardState: Sendable, Equatable {
    /// The latest term this replica has seen.
    public var term: UInt64
    /// Whom it voted for in `term`, or nil.
    public var vote: NodeID?
    /// The highest index it knows committed. Persisted so that a restart re-applies exactly the
    /// committed prefix without waiting for a leader; a lower value on disk is safe (the leader
    /// tells it again), a higher one is not written before the entries are durable.
    public var commit: UInt64

    /// Creates a hard state.
    public init(term: UInt64 = 0, vote: NodeID? = nil, commit: UInt64 = 0) {
        self.term = term
        self.vote = vote
        self.commit = commit
    }
}
