#if canImport(Glibc)
import Glibc
#endif
import ClusDBModel
import ClusDBRaft
import ClusDBStore
import Dispatch
import Foundation
import Logging
import Synchronization

/// A running cluster node: the write path and the hive it serves reads from.
///
/// Writes follow propose → append + fsync → commit → apply → answer, with group commit, in two
/// stages that each have one owner at a time:
///
/// - The **log stage** takes everything queued (up to ``Limits/groupCommitEntriesMax``),
///   proposes it to the Raft replica through its ``ReplicaDriver`` and carries out the driver's
///   persistence: the hard state when its term or vote changed, the entries with one write and
///   one fdatasync. The replica commits what a quorum of voters holds durably — with one voter,
///   its own fdatasync.
/// - The **apply stage** applies committed groups to the hive, in index order, one transaction
///   per group, and answers the proposers. A write whose outcome is known before it is applied
///   (``HiveCommand/outcomeKnownBeforeApply``) is answered at commit instead; ``read(_:)`` waits
///   for the apply stage, so reads still see every answered write.
///
/// Who does the work: proposers only queue. The commit thread takes the log stage and keeps it,
/// group after group, while the apply thread applies the previous groups: the fsync of one group
/// overlaps the SQLite work of the ones before. No request thread (a network event loop, a thread
/// of the cooperative pool) ever waits for the disk, so a slow disk delays writes and nothing
/// else. The apply thread lets answered groups gather briefly and applies them in one
/// transaction.
///
/// The replica decides; this class only carries out its driver's actions (docs/ARCHITECTURE.md,
/// "Consensus"). Today the cluster has one voter, elected at start-up; the network issue adds
/// the other members, the messages and the ticks.
public final class ClusterNode: Sendable {
    /// The hive. It may lag the commit index by the groups still in the apply stage (a write
    /// whose outcome is known is answered once committed), so linearizable reads go through
    /// ``read(_:)``, which waits for the apply stage first.
    public let hive: Hive
    /// The node's identity.
    public let identity: NodeIdentity
    /// The node's configuration.
    public let configuration: NodeConfiguration
    let shared: Mutex<Shared>
    let loop: CommitLoop
    /// Wakes the commit thread when the log stage passes to it (or it must exit).
    let commitWake = DispatchSemaphore(value: 0)
    /// Wakes the apply thread when a committed group waits for it (or it must exit).
    let applyWake = DispatchSemaphore(value: 0)
    /// Signalled by each of the two threads when it exits.
    let threadFinished = DispatchSemaphore(value: 0)
    let logger: Logger

    /// Receives a proposal's result, exactly once, on whichever thread learns it.
    public typealias ProposalAnswer = @Sendable (Result<CommitResult, ClusterError>) -> Void

    /// A proposal waiting for its result.
    struct Proposal: Sendable {
        var command: HiveCommand
        var payload: [UInt8]
        /// nil once answered (writes whose outcome is known are answered at commit).
        var answer: ProposalAnswer?
    }

    /// Committed entries that wait for the apply stage, each with the proposal waiting for it
    /// (none for the term's no-op and for entries committed by an earlier run).
    struct CommittedGroup {
        var entries: [RaftEntry]
        var proposals: [Proposal?]
        var firstIndex: UInt64 { entries[0].index }
    }

    struct Shared {
        /// Writes admitted and not yet proposed to the replica (the log stage proposes them a
        /// group at a time).
        var pending: [Proposal] = []
        /// The replica and the node's decisions around it. Every call happens under this lock;
        /// the threads carry out the actions (``ClusterNode/absorb(_:into:)``).
        var driver: ReplicaDriver<Proposal>
        /// A Ready whose persistence the driver asked for and the log stage has not started.
        var readyToPersist: Ready?
        /// True while some thread holds the log stage: only it touches ``CommitLoop``.
        var logStageHeld = false
        /// Set when the log stage passed to the commit thread.
        var commitThreadHoldsLogStage = false
        /// Committed groups the apply thread has not applied yet, oldest first.
        var committed: [CommittedGroup] = []
        /// True while the apply thread works through ``committed`` (gathering included).
        var applying = false
        /// Entries in ``committed``.
        var committedEntries = 0
        /// Proposers in ``committed`` who wait for their answer until applied.
        var committedAnswersPending = 0
        /// True while the apply thread lets answered writes gather (``Limits/applyGatherMicroseconds``).
        var applyGathering = false
        /// True while a checkpoint waits for the apply stage to reach its index.
        var checkpointAwaitsApply = false
        /// Tells both threads to exit (after stop).
        var threadsExit = false
        var stopping = false
        /// Set when the hive could not apply a committed entry: fail-stop, reads and writes refused.
        var failure: ClusterError?
        /// Set when the log stage could not make a Ready durable: writes refused until a restart
        /// (the replica's memory may no longer match the disk); reads of the applied hive go on.
        var persistFailure: ClusterError?
        var status: NodeStatus
        var checkpointRunning = false
        /// True while a backup pins a checkpoint and log segments: no checkpoint starts meanwhile.
        var backupRunning = false
        /// The checkpoint file that last passed SQLite's full integrity check (files are
        /// immutable once written, so a backup copying it needs no second check).
        var verifiedCheckpointPath: String?
        var truncateThrough: UInt64?
        /// Size of the newest checkpoint image, for amortizing the next one.
        var lastCheckpointBytes = 0
        /// Reads waiting for the applied index to reach theirs.
        var applyWaiters: [(index: UInt64, continuation: CheckedContinuation<ClusterError?, Never>)] = []
    }

    /// Recovers the data directory and makes the node ready for writes.
    /// - Throws: `ERROR_SHARING_VIOLATION` for a data directory in use, `ERROR_CLUSTERLOG_CORRUPT`
    ///   for a damaged log, I/O errors.
    public init(configuration: NodeConfiguration, logger: Logger) throws(ClusterError) {
        let storage = try NodeStorage.recover(configuration, logger: logger)
        let identity = storage.identity
        self.configuration = configuration
        self.identity = identity
        self.hive = storage.hive
        self.logger = logger
        var seed = SystemRandomNumberGenerator()
        let replica = try RaftReplica(
            id: NodeStorage.singleNodeID, durable: try storage.durableState(), random: RandomSource(seed: seed.next()))
        let driver = ReplicaDriver<Proposal>(
            replica: replica, readNonce: seed.next(), maxWaitingRequests: Limits.groupCommitEntriesMax + Limits.committedEntriesMax)
        let status = NodeStatus(
            identity: NodeIdentityView(
                clusterName: identity.clusterName, clusterID: identity.clusterID, nodeName: identity.nodeName,
                nodeID: identity.nodeID, restoreGeneration: identity.restoreGeneration),
            term: replica.term, commitIndex: replica.commitIndex, appliedIndex: replica.appliedIndex,
            checkpointIndex: storage.checkpointIndex, logFirstIndex: storage.log.firstIndex, logBytes: storage.log.totalBytes)
        shared = Mutex(Shared(driver: driver, status: status))
        loop = CommitLoop(storage: storage)
        loop.setMaxLogBytes(try storage.hive.maxQuorumLogSize())
        try elect()
        // Decided from disk, not from this start's fallback alone: a start that set a damaged
        // checkpoint aside and then failed to write the fresh one leaves it to the next start.
        let newestKept = try ClusterCheckpoints.list(in: storage.directory.quorumDirectory).last?.sequence ?? 0
        if try ClusterCheckpoints.newestSetAsideSequence(in: storage.directory.quorumDirectory) > newestKept {
            // Only one valid checkpoint is left: write a fresh one before serving, so that the
            // fallback is there again for the next damage.
            let fresh = try ClusterCheckpoints.write(from: storage.hive, to: storage.directory.quorumDirectory)
            try verifyCheckpoint(fresh.path, justWritten: true)
            try ClusterCheckpoints.prune(in: storage.directory.quorumDirectory)
            shared.withLock { $0.status.checkpointIndex = fresh.state.appliedIndex }
            logger.notice("wrote a fresh cluster checkpoint after passing over a damaged one", metadata: ["path": "\(fresh.path)"])
        }
        Self.startThread(named: "clusdb-commit") { [self] in runCommitThread() }
        Self.startThread(named: "clusdb-apply") { [self] in runApplyThread() }
        Self.startThread(named: "clusdb-walckpt") { [self] in runWALCheckpointThread() }
        logger.info(
            "node ready",
            metadata: [
                "cluster": "\(identity.clusterName)", "node": "\(identity.nodeName)", "index": "\(storage.lastIndex)",
                "term": "\(shared.withLock { $0.status.term })",
            ])
    }

    /// Starts a thread whose name shows in `top -H`, `perf` and `/proc`. The name is set from
    /// inside the thread: on Linux only that reaches the kernel (15 characters at most), and
    /// otherwise a new thread keeps its creator's name.
    static func startThread(named name: String, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread {
            Thread.current.name = String(name.prefix(15))
            body()
        }
        thread.start()
    }

    /// Checkpoints the hive's WAL every ``Limits/hiveWALCheckpointIntervalMilliseconds`` until
    /// the node stops, so the apply stage never runs SQLite's checkpoint (and its fsync) itself.
    func runWALCheckpointThread() {
        while !shared.withLock({ $0.threadsExit }) {
            usleep(useconds_t(Limits.hiveWALCheckpointIntervalMilliseconds * 1_000))
            do {
                try hive.checkpointWAL()
            } catch {
                logger.warning("hive WAL checkpoint failed; SQLite's own threshold still bounds the WAL", metadata: ["error": "\(error)"])
            }
        }
        threadFinished.signal()
    }

    /// Where the node stands now.
    public var status: NodeStatus {
        shared.withLock { state in
            var status = state.status
            status.pendingProposals = state.pending.count
            return status
        }
    }

    /// Runs a read on the hive once every write committed before this call is applied (ReadIndex
    /// on one node): a read that starts after a write was answered sees it.
    /// - Throws: the body's error, or the node's failure when the apply stage stopped.
    public func read<T: Sendable>(_ body: (Hive) async throws(ClusterError) -> T) async throws(ClusterError) -> T {
        try await waitUntilApplied(shared.withLock { $0.status.commitIndex })
        return try await body(hive)
    }

    /// Waits until the applied index reaches `index`.
    /// - Throws: the node's failure when the apply stage stopped; `ERROR_BUSY` when
    ///   ``Limits/applyWaitersMax`` reads already wait.
    public func waitUntilApplied(_ index: UInt64) async throws(ClusterError) {
        switch shared.withLock({ Self.applyProgress(of: $0, toward: index) }) {
        case .reached: return
        case .failed(let error): throw error
        case .pending: break
        }
        let failure = await withCheckedContinuation { (continuation: CheckedContinuation<ClusterError?, Never>) in
            let (progress, wakeApply) = shared.withLock { state in
                let progress = Self.applyProgress(of: state, toward: index)
                guard case .pending = progress else { return (progress, false) }
                guard state.applyWaiters.count < Limits.applyWaitersMax else {
                    return (.failed(ClusterError(.busy, "\(Limits.applyWaitersMax) reads are already waiting; retry")), false)
                }
                state.applyWaiters.append((index, continuation))
                return (progress, Self.hurryApply(&state))
            }
            if wakeApply { applyWake.signal() }
            switch progress {
            case .reached: continuation.resume(returning: nil)
            case .failed(let error): continuation.resume(returning: error)
            case .pending: break
            }
        }
        if let failure { throw failure }
    }

    /// Whether the apply stage may let committed writes gather: only while nobody waits for it
    /// (no read, no proposer answered once applied, no checkpoint, no stop) and not many wait.
    static func applyMayGather(_ state: Shared) -> Bool {
        state.applyWaiters.isEmpty && state.committedAnswersPending == 0 && !state.checkpointAwaitsApply
            && !state.stopping && state.committedEntries < Limits.applyGatherEntriesTarget
    }

    /// Called under the lock by whoever just made the apply stage urgent; true when the caller
    /// must wake the apply thread from its gathering wait (only the first to find it gathering).
    static func hurryApply(_ state: inout Shared) -> Bool {
        defer { state.applyGathering = false }
        return state.applyGathering
    }

    /// Where the apply stage stands relative to a read's index.
    private enum ApplyProgress {
        case reached
        case pending
        case failed(ClusterError)
    }

    private static func applyProgress(of state: Shared, toward index: UInt64) -> ApplyProgress {
        if let failure = state.failure { return .failed(failure) }
        return state.status.appliedIndex >= index ? .reached : .pending
    }

    /// Proposes a change and waits until it is committed and applied.
    ///
    /// - Returns: the log index and what applying did (a registry error such as
    ///   `ERROR_FILE_NOT_FOUND` is an outcome, committed like any other).
    /// - Throws: `ERROR_INVALID_PARAMETER` for invalid input (nothing is logged), `ERROR_BUSY` when
    ///   the queue is full, `ERROR_CLUSTER_SHUTTING_DOWN` while stopping, I/O errors.
    /// The caller's thread never does the write's file I/O: it suspends until the commit or
    /// apply thread answers.
    public func propose(_ command: HiveCommand) async throws(ClusterError) -> CommitResult {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<CommitResult, ClusterError>, Never>) in
            propose(command) { continuation.resume(returning: $0) }
        }
        return try result.get()
    }

    /// Proposes a change and calls `answer` once with the outcome ``propose(_:)`` would return or
    /// throw: for callers that must not suspend, such as a handler on a network event loop.
    ///
    /// - Important: `answer` runs on the node's commit or apply thread (or, for a refusal, before
    ///   this returns) and must only hand the result on, never block.
    public func propose(_ command: HiveCommand, answer: @escaping ProposalAnswer) {
        let payload: [UInt8]
        do {
            payload = try Self.encodedProposal(command)
        } catch {
            answer(.failure(error))
            return
        }
        let queued = Proposal(command: command, payload: payload, answer: answer)
        let admission = shared.withLock { state in admit(&state, queued) }
        switch admission {
        case .refused(let error): queued.answer?(.failure(error))
        case .queued(let wakeCommitThread): if wakeCommitThread { commitWake.signal() }
        }
    }

    /// Validates and encodes a command for the log.
    /// - Throws: `ERROR_INVALID_PARAMETER` for invalid input or an encoding over the entry limit.
    private static func encodedProposal(_ command: HiveCommand) throws(ClusterError) -> [UInt8] {
        try command.validate()
        let payload = command.encoded()
        if payload.count > Limits.commandEncodedMaxBytes {
            throw ClusterError(
                .invalidParameter,
                "the change encodes to \(payload.count) bytes; the limit is \(Limits.commandEncodedMaxBytes)",
                failedCommand: command.isBatch ? -1 : nil)
        }
        return payload
    }

    /// Stops accepting writes, lets the queued ones commit and apply, stops the threads, and
    /// closes the storage.
    public func stop() {
        let alreadyStopping = shared.withLock { state in
            defer { state.stopping = true }
            return state.stopping
        }
        if alreadyStopping { return }
        if shared.withLock({ Self.hurryApply(&$0) }) { applyWake.signal() }
        while shared.withLock({ state in
            state.logStageHeld || !state.pending.isEmpty || state.readyToPersist != nil || state.applying || !state.committed.isEmpty
                || state.checkpointRunning
        }) {
            usleep(1_000)
        }
        shared.withLock { $0.threadsExit = true }
        commitWake.signal()
        applyWake.signal()
        threadFinished.wait()
        threadFinished.wait()
        threadFinished.wait()
        loop.storage.close()
        logger.info("node stopped")
    }
}
