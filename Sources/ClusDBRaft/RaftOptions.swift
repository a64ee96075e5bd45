/// How a replica behaves. The defaults are those of a ClusDB node; tests and the simulator set
/// the debug switches.
public struct RaftOptions: Sendable, Equatable {
    /// Ticks without hearing from a leader before a follower campaigns (randomized in
    /// [electionTicks, 2 × electionTicks)); also the period of check-quorum.
    public var electionTicks = 10
    /// Ticks between a leader's heartbeats.
    public var heartbeatTicks = 1
    /// Appends in flight to one follower before the leader waits for answers (flow control).
    public var maxInflightAppends = 64
    /// Bytes of entries in flight to one follower before the leader waits for answers.
    public var maxInflightBytes = 64 << 20
    /// Bytes of entries in one append (at least one entry is always sent).
    public var maxAppendBytes = 1 << 20
    /// Proposals waiting in the log beyond the commit index before new ones are refused.
    public var maxUncommittedBytes = 256 << 20
    /// Reads waiting for their read index on one replica (its own and, on a leader, those
    /// followers forwarded) before new ones are refused.
    public var maxPendingReads = 4096
    /// Whether to run a pre-vote before each election (§9.6). Off only to show that the
    /// simulator catches its absence.
    public var preVote = true
    /// Whether a leader steps down when it has not heard from a quorum for an election period,
    /// and followers ignore vote requests while they hear from a leader.
    public var checkQuorum = true
    /// Check the replica's invariants after every step (debug builds, tests, the simulator).
    public var checksInvariants = false
    /// Broken on purpose, to prove the checkers can fail (never set in production).
    public var brokenProtocol: BrokenProtocol = []

    /// Creates the default options.
    public init() {}
}

/// Deliberate protocol bugs, each of which the simulator must catch (issue 10, point 5).
public struct BrokenProtocol: OptionSet, Sendable, Equatable {
    /// The raw bits.
    public let rawValue: UInt32
    /// Creates a set from raw bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Commit an entry of an earlier term by counting replicas (Figure 8).
    public static let commitPreviousTermByCounting = BrokenProtocol(rawValue: 1 << 0)
    /// Campaign without the pre-vote even though it is configured.
    public static let skipPreVote = BrokenProtocol(rawValue: 1 << 1)
    /// Answer reads with the leader's commit index at once, without confirming leadership.
    public static let readWithoutReadIndex = BrokenProtocol(rawValue: 1 << 2)
    /// Never hand the vote to the driver to persist (a crash forgets it, and the replica may vote
    /// again in the same term).
    public static let forgetVoteOnCrash = BrokenProtocol(rawValue: 1 << 3)
    /// A leader counts its own copy of an entry before it is durable (§10.2.1 allows sending
    /// before the local write, not counting it).
    public static let countLeaderBeforeDurable = BrokenProtocol(rawValue: 1 << 4)
}
