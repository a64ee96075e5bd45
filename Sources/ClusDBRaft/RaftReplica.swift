import ClusDBModel
/// One Raft replica as a pure state machine (in the style of etcd-io/raft): it does no I/O,
/// reads no clock and starts no task. Its inputs are ticks, messages, proposals, read requests
/// and reports from its driver (persisted, applied, compacted); its output is a ``Ready`` the
/// driver takes and carries out. Time is ticks; the only randomness (election timeouts) comes
/// from the ``RandomSource`` it was given, so a simulator replays a run from its seed.
///
/// What it implements (the dissertation's Raft; docs/ARCHITECTURE.md "Consensus"): elections with
/// randomized timeouts, pre-vote and check-quorum; a no-op entry at the start of each term and
/// commitment by counting only for entries of the current term; replication with conflict hints
/// and flow control; ReadIndex reads from leader and followers; leadership transfer; single-server
/// membership changes with learners, taking effect when committed; snapshots and compaction.
public struct RaftReplica: Sendable {
    /// What a replica is doing in its term.
    public enum Role: Sendable, Equatable {
        /// Follows the leader it knows of (or waits for one).
        case follower
        /// Asks whether it could win an election, without raising its term.
        case preCandidate
        /// Campaigns in its term.
        case candidate
        /// Leads its term.
        case leader
    }

    /// A read the leader confirms with a round of heartbeats.
    struct PendingRead: Sendable, Equatable {
        var context: UInt64
        var index: UInt64
        var requester: NodeID
        /// The heartbeat round whose quorum of answers confirms the leadership.
        var round: UInt64
    }

    /// This replica's identity.
    public let id: NodeID
    /// Its role.
    public internal(set) var role = Role.follower
    /// Its current term.
    public internal(set) var term: UInt64
    /// Whom it voted for in ``term``.
    public internal(set) var vote: NodeID?
    /// The leader of ``term`` it knows of.
    public internal(set) var leader: NodeID?
    /// The configuration in force: the last one committed.
    public internal(set) var configuration: RaftConfiguration

    var options: RaftOptions
    var random: RandomSource
    var log: RaftLog
    /// The configuration at the log's snapshot index (for snapshots this leader sends).
    var snapshotConfiguration: RaftConfiguration

    var electionElapsed = 0
    var heartbeatElapsed = 0
    var randomizedElectionTimeout = 0
    /// Votes received in the current (pre-)campaign: true granted, false refused.
    var votes: [NodeID: Bool] = [:]

    // Leader state.
    var progress: [NodeID: FollowerProgress] = [:]
    /// The index of the last configuration change this leader appended (or of its no-op, so that
    /// no change starts before an entry of its term is committed).
    var pendingConfigurationIndex: UInt64 = 0
    var transferee: NodeID?
    var transferElapsed = 0
    var uncommittedBytes = 0
    /// Followers must hear of new entries or a new commit index at the next ``takeReady()``
    /// (proposals in between go out as one append per follower: group commit).
    var broadcastPending = false
    var readRound: UInt64 = 0
    var ackedRound: [NodeID: UInt64] = [:]
    var pendingReads: [PendingRead] = []
    /// Reads asked before this leader committed an entry of its term: its commit index is not
    /// known to be current until then.
    var readsAwaitingTermCommit: [(context: UInt64, requester: NodeID)] = []
    /// Read contexts this follower sent to its leader and awaits: an answer to any other context
    /// (a duplicate, or one meant for this node before it restarted) is dropped.
    var forwardedReads: Set<UInt64> = []

    // Output not yet taken.
    var outMessages: [RaftMessage] = []
    var outMessagesAfterPersist: [RaftMessage] = []
    var outReadStates: [ReadState] = []
    var outDroppedReads: [UInt64] = []
    var outSnapshot: SnapshotMetadata?
    var handedOutHardState: HardState

    /// Creates a replica from what its driver found durable.
    ///
    /// The driver carries out each ``Ready`` in its documented order (hard state, then entries),
    /// so a crash leaves at worst a commit index past the durable log (lowered here) or a state
    /// machine behind a snapshot it was installing (the first ``Ready`` hands the snapshot out
    /// again). A state no crash of a correct driver leaves is refused.
    /// - Throws: `ERROR_CLUSTER_LOG_CORRUPT` when the durable state contradicts itself.
    public init(id: NodeID, durable: DurableState, options: RaftOptions = RaftOptions(), random: RandomSource) throws(ClusterError) {
        self.id = id
        self.options = options
        self.random = random
        term = durable.hardState.term
        vote = durable.hardState.vote
        log = try RaftLog(
            snapshot: durable.snapshot, entries: durable.entries, committed: durable.hardState.commit,
            applied: durable.appliedIndex)
        snapshotConfiguration = durable.snapshot?.configuration ?? durable.bootstrapConfiguration
        configuration = snapshotConfiguration
        handedOutHardState = durable.hardState
        guard log.lastTerm <= term else {
            throw ClusterError(.clusterLogCorrupt, "the durable log ends in term \(log.lastTerm), after the hard state's term \(term)")
        }
        guard snapshotConfiguration.isValid else {
            throw ClusterError(.clusterLogCorrupt, "the durable configuration \(snapshotConfiguration) has a member both voter and learner")
        }
        if log.stateMachineBehindSnapshot { outSnapshot = durable.snapshot }
        // A membership change in the log proves the change before it committed: a leader appends
        // a change only once its previous change (or its term's no-op, after every earlier entry)
        // is committed, and log matching carries that prefix to every log holding the later
        // change. The durable commit index can lag that knowledge (commit-only hard states are
        // not written, and a follower can receive both changes in one append before it learns
        // either commit), and changes take effect at commit: without this a restarted replica
        // could be two changes behind, and a majority of its configuration need not overlap a
        // majority of the current one — two leaders in one term (found in review).
        var changesSeen = 0
        var position = log.lastIndex
        while position > max(log.committed, log.snapshotIndex) {
            if log.entry(at: position).kind == .configurationChange {
                changesSeen += 1
                if changesSeen == 2 {
                    log.commit(to: position)
                    break
                }
            }
            position -= 1
        }
        // The configuration in force: changes take effect when committed.
        if log.committed > log.snapshotIndex {
            for index in log.firstIndex...log.committed { takeEffect(of: log.entry(at: index)) }
        }
        resetElectionTimeout()
        checkInvariants()
    }

    /// The current hard state.
    public var hardState: HardState { HardState(term: term, vote: vote, commit: log.committed) }

    /// The hard state handed to the driver: its commit index never passes what an earlier
    /// persistence made durable here. A commit index learned together with entries that replace
    /// a suffix must not reach the disk before those entries: a crash between the two writes
    /// would leave it covering the old, never committed entries, which start-up would then
    /// apply (found in review).
    var reportedHardState: HardState { HardState(term: term, vote: vote, commit: min(log.committed, log.persisted)) }
    /// The index of the last entry in the log.
    public var lastIndex: UInt64 { log.lastIndex }
    /// The highest index known committed.
    public var commitIndex: UInt64 { log.committed }
    /// The highest index the driver reported applied.
    public var appliedIndex: UInt64 { log.applied }
    /// The highest index the driver reported durable.
    public var persistedIndex: UInt64 { log.persisted }
    /// The first index still in the log (after compaction).
    public var firstIndex: UInt64 { log.firstIndex }
    /// The term of the entry at `index`, when the log still holds it.
    public func term(at index: UInt64) -> UInt64? { log.term(at: index) }
    /// The entry at `index`, when the log still holds it (index after the snapshot).
    public func entry(at index: UInt64) -> RaftEntry? {
        index > log.snapshotIndex && index <= log.lastIndex ? log.entry(at: index) : nil
    }
    /// Whether this replica may campaign: it is a voter of the configuration in force.
    public var isPromotable: Bool { configuration.voters.contains(id) }
    /// The leadership transfer under way, if any.
    public var leadershipTransferTarget: NodeID? { transferee }

    /// The highest index every member holds, as this leader knows (compaction below it never
    /// forces a snapshot on anyone); nil when not leading.
    public var indexAllMembersHold: UInt64? {
        guard role == .leader else { return nil }
        return progress.values.reduce(log.persisted) { min($0, $1.match) }
    }

    /// What a leader knows of `node`'s log: its matching index, nil when not leading or unknown.
    public func matchIndex(of node: NodeID) -> UInt64? {
        node == id ? (role == .leader ? log.persisted : nil) : progress[node]?.match
    }

    // MARK: Output

    /// Takes everything the driver must do now (see ``Ready`` for the order).
    public mutating func takeReady() -> Ready {
        if role == .leader && broadcastPending {
            broadcastPending = false
            for node in progress.keys.sorted() {
                // One append at least (it carries the commit index), then as many as the window takes.
                sendAppend(to: node, evenIfEmpty: true)
                while sendAppend(to: node, evenIfEmpty: false) {}
            }
        }
        var ready = Ready()
        ready.messages = outMessages
        ready.messagesAfterPersist = outMessagesAfterPersist
        ready.readStates = outReadStates
        ready.droppedReads = outDroppedReads
        ready.snapshot = outSnapshot
        outMessages = []
        outMessagesAfterPersist = []
        outReadStates = []
        outDroppedReads = []
        outSnapshot = nil
        let current = reportedHardState
        if current != handedOutHardState {
            var reported = current
            // Broken on purpose: the vote never reaches the disk, so a restart forgets it.
            if options.brokenProtocol.contains(.forgetVoteOnCrash) { reported.vote = nil }
            ready.hardState = reported
            if current.term != handedOutHardState.term || current.vote != handedOutHardState.vote {
                // Every message of this Ready speaks in a term (or after a vote) not yet durable:
                // a leader elected on its own vote alone must not send its appends before then,
                // or after a crash it could lead the same term again with other entries at the
                // same indexes (found in review: one voter with learners).
                ready.messagesAfterPersist = ready.messages + ready.messagesAfterPersist
                ready.messages = []
            }
            handedOutHardState = current
        }
        ready.entries = log.takeUnstable()
        // Entries applied before a snapshot's image is installed would be wiped by it: a Ready
        // with a snapshot hands out none (at start-up the commit index can pass the snapshot
        // before the image is installed; they follow in the next Ready).
        if ready.snapshot == nil { ready.committedEntries = log.takeCommitted(maxBytes: Self.applyBytesPerReady) }
        return ready
    }

    /// Bytes of committed entries handed out for applying in one ``Ready`` (more follow in the next).
    public static let applyBytesPerReady = 64 << 20

    /// Whether ``takeReady()`` would return something.
    public var hasReady: Bool {
        !outMessages.isEmpty || !outMessagesAfterPersist.isEmpty || !outReadStates.isEmpty || !outDroppedReads.isEmpty
            || outSnapshot != nil
            || reportedHardState != handedOutHardState || log.handedOut < log.lastIndex
            || log.handedOutForApply < min(log.committed, log.persisted) || (role == .leader && broadcastPending)
    }

    // MARK: Reports from the driver

    /// The driver made the log durable up to (`index`, `term`) (the last entry of a ``Ready``).
    public mutating func persisted(index: UInt64, term entryTerm: UInt64) {
        log.persisted(index: index, term: entryTerm)
        if role == .leader && maybeCommit() { broadcastPending = true }
        checkInvariants()
    }

    /// The driver applied the committed entries up to `index`.
    public mutating func applied(index: UInt64) {
        log.applied(index: index)
        checkInvariants()
    }

    /// The driver holds a durable snapshot (cluster checkpoint) covering the log up to `index`:
    /// entries up to it may go. The driver chooses `index` (see ``indexAllMembersHold``); a
    /// follower behind it later receives the snapshot.
    public mutating func compact(through index: UInt64) {
        guard index > log.snapshotIndex else { return }
        precondition(index <= log.applied, "only applied entries are compacted")
        for position in log.firstIndex...index { snapshotConfiguration = applyingChange(of: log.entry(at: position), to: snapshotConfiguration) }
        log.compact(through: index)
        checkInvariants()
    }

    /// The snapshot this replica would send: the log's compacted prefix.
    public var snapshotMetadata: SnapshotMetadata {
        SnapshotMetadata(index: log.snapshotIndex, term: log.snapshotTerm, configuration: snapshotConfiguration)
    }

    /// The transport finished (or failed) sending the snapshot at `index` to `node`: it arrived
    /// and the receiver made it durable, or it was lost. A report for another snapshot than the
    /// one pending (a late report of an earlier attempt) is ignored.
    public mutating func snapshotSent(to node: NodeID, index: UInt64, succeeded: Bool) {
        guard role == .leader, var follower = progress[node], follower.mode == .snapshot(index: index) else { return }
        // On success the follower's acknowledgement moves it on; until then probe from the snapshot.
        follower.becomeProbe(next: succeeded ? index + 1 : follower.match + 1)
        follower.probeSent = succeeded
        progress[node] = follower
        checkInvariants()
    }

    // MARK: Time

    /// One tick of logical time.
    public mutating func tick() {
        switch role {
        case .leader: tickLeader()
        case .follower, .preCandidate, .candidate: tickElection()
        }
        checkInvariants()
    }

    private mutating func tickElection() {
        electionElapsed += 1
        if isPromotable && electionElapsed >= randomizedElectionTimeout {
            electionElapsed = 0
            campaign(transfer: false)
        }
    }

    private mutating func tickLeader() {
        heartbeatElapsed += 1
        electionElapsed += 1
        if electionElapsed >= options.electionTicks {
            electionElapsed = 0
            if options.checkQuorum {
                let active = configuration.voters.filter { $0 == id || progress[$0]?.recentlyActive == true }.count
                if active < configuration.quorum {
                    becomeFollower(term: term, leader: nil)
                    return
                }
                for node in progress.keys { progress[node]?.recentlyActive = false }
            }
        }
        if transferee != nil {
            transferElapsed += 1
            if transferElapsed >= options.electionTicks { transferee = nil }
        }
        if heartbeatElapsed >= options.heartbeatTicks {
            heartbeatElapsed = 0
            broadcastHeartbeat(context: pendingReads.isEmpty ? 0 : readRound)
        }
    }

    mutating func resetElectionTimeout() {
        randomizedElectionTimeout = options.electionTicks + Int.random(in: 0..<options.electionTicks, using: &random)
    }

    // MARK: Proposals

    /// Appends a command to the log. Only a leader takes proposals; the driver forwards or refuses
    /// them elsewhere.
    /// - Returns: the entry's index, or why it was refused.
    public mutating func propose(_ payload: [UInt8]) -> Result<UInt64, ProposalRefusal> {
        defer { checkInvariants() }
        return appendProposal(kind: .command, payload: payload)
    }

    mutating func appendProposal(kind: RaftEntry.Kind, payload: [UInt8]) -> Result<UInt64, ProposalRefusal> {
        guard role == .leader else { return .failure(.notLeader(leader: leader)) }
        guard transferee == nil else { return .failure(.transferringLeadership) }
        let entry = RaftEntry(index: log.lastIndex + 1, term: term, kind: kind, payload: payload)
        // The limit lets one proposal through however large, so a large import still commits.
        guard uncommittedBytes == 0 || uncommittedBytes + entry.sizeForFlowControl <= options.maxUncommittedBytes else {
            return .failure(.uncommittedLimit)
        }
        uncommittedBytes += entry.sizeForFlowControl
        log.appendOwn(entry)
        broadcastPending = true
        // A single voter commits on its own persistence (reported later); nothing to send.
        return .success(entry.index)
    }

    // MARK: Sending

    mutating func emit(_ body: RaftMessage.Body, to node: NodeID, term messageTerm: UInt64? = nil) {
        precondition(node != id, "a replica never sends to itself")
        let message = RaftMessage(from: id, to: node, term: messageTerm ?? term, body: body)
        switch body {
        case .append, .heartbeat, .installSnapshot, .timeoutNow, .preVote, .preVoteResponse, .readIndex, .readIndexResponse, .commitHint:
            // A leader's messages may travel before its own write is durable (§10.2.1); a
            // pre-vote changes nothing; read requests and answers promise nothing about this log.
            outMessages.append(message)
        case .vote, .voteResponse, .appendResponse, .heartbeatResponse:
            // They promise a durable vote, term or log: sent once the Ready's state is durable.
            outMessagesAfterPersist.append(message)
        }
    }
}
