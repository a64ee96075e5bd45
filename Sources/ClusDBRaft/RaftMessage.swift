/// A message between replicas. Every message carries the sender's term; the transport delivers
/// it, may lose, delay, duplicate or reorder it, and the protocol stays safe.
public struct RaftMessage: Sendable, Equatable {
    /// What the message says.
    public enum Body: Sendable, Equatable {
        /// Would you vote for me in `term` (the message's term, one above the sender's own)? Sent
        /// before a real election so that a node that cannot win never raises the term (§9.6).
        case preVote(lastIndex: UInt64, lastTerm: UInt64)
        /// The answer to a pre-vote.
        case preVoteResponse(granted: Bool)
        /// Vote for me in the message's term. `transfer` when a leadership transfer asked for the
        /// election: it is granted even by nodes that heard from a leader recently.
        case vote(lastIndex: UInt64, lastTerm: UInt64, transfer: Bool)
        /// The answer to a vote request.
        case voteResponse(granted: Bool)
        /// Entries after (`previousIndex`, `previousTerm`), and the leader's commit index.
        case append(previousIndex: UInt64, previousTerm: UInt64, entries: [RaftEntry], commit: UInt64)
        /// The answer to an append: accepted up to `index`, or rejected with a hint where the
        /// follower's log may match (`hintIndex`, and the term there, `hintTerm`) so the leader
        /// backs off by a term at a time, not an entry at a time.
        case appendResponse(index: UInt64, rejected: Bool, hintIndex: UInt64, hintTerm: UInt64)
        /// The leader is alive; commit is at most what the follower is known to hold. `context`
        /// is nonzero when the heartbeat confirms leadership for read requests (ReadIndex).
        case heartbeat(commit: UInt64, context: UInt64)
        /// The answer to a heartbeat, echoing its context.
        case heartbeatResponse(context: UInt64)
        /// Install the snapshot described (the transport streams its bytes in chunks beside this
        /// message and delivers the message once all have arrived and are durable).
        case installSnapshot(SnapshotMetadata)
        /// Start an election now, skipping the pre-vote (leadership transfer, §3.10).
        case timeoutNow
        /// The sender's commit index and the term of its entry there, sent to a candidate whose
        /// log is behind the sender's (with the refused vote). Any replica holding that entry may
        /// take it as committed: by log matching its log equals the sender's up to there, and
        /// what is committed stays so. It unblocks voters that never heard that a change
        /// removing the sender committed, while the sender, holding the newer log, refuses them
        /// its vote (found by the simulator: seeds 181 and 371, two voters, one removed).
        case commitHint(index: UInt64, term: UInt64)
        /// A follower asks the leader for a read index for its read `context`.
        case readIndex(context: UInt64)
        /// The leader's answer: the read may be served once `index` is applied. `index` is 0
        /// when the leader could not serve it (the follower's client retries).
        case readIndexResponse(context: UInt64, index: UInt64)
    }

    /// The sender.
    public var from: NodeID
    /// The receiver.
    public var to: NodeID
    /// The sender's term (for a pre-vote, the term it would campaign in).
    public var term: UInt64
    /// The content.
    public var body: Body

    /// Creates a message.
    public init(from: NodeID, to: NodeID, term: UInt64, body: Body) {
        self.from = from
        self.to = to
        self.term = term
        self.body = body
    }

    /// Whether the message is a request for a (pre-)vote.
    var isVoteRequest: Bool {
        switch body {
        case .preVote, .vote: true
        default: false
        }
    }

    /// Whether only a leader of `term` sends this message.
    var isFromLeader: Bool {
        switch body {
        // Not a read-index answer: a follower refuses a forwarded read with one (index 0).
        case .append, .heartbeat, .installSnapshot, .timeoutNow: true
        default: false
        }
    }
}
