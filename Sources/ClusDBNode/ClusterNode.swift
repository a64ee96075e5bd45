import ClusDBModel
import ClusDBStore
import Dispatch
import Foundation
import Logging
import Synchronization

/// A running cluster node: the write path and the hive it serves reads from.
///
/// Writes follow propose → append + fsync → commit → apply → answer, with group commit in the
/// leader/follower form (as LevelDB's writer queue): the proposer that finds no commit in
/// progress becomes the *leader* and does the I/O on its own thread — it takes everything queued
/// behind it (up to ``Limits/groupCommitEntriesMax``), appends it with one write and one
/// fdatasync, marks it committed, applies it to the hive in one transaction, answers the
/// followers, and hands leadership to the first proposer that queued meanwhile. An uncontended
/// write therefore crosses no thread; 64 concurrent writers share one fsync per group.
///
/// With one member the durable append on the only member is the commit; the replication issue
/// puts the Raft replica between append and commit without changing this interface.
public final class ClusterNode: Sendable {
    /// The hive; reads go straight to it (each read sees one applied index, and every write was
    /// applied before it was answered).
    public let hive: Hive
    /// The node's identity.
    public let identity: NodeIdentity
    /// The node's configuration.
    public let configuration: NodeConfiguration
    private let shared: Mutex<Shared>
    private let loop: CommitLoop
    private let logger: Logger

    /// What a queued proposer is told when it resumes.
    enum Turn {
        /// A leader committed the proposal: here is its result.
        case done(Result<CommitResult, ClusterError>)
        /// Leadership passed to this proposer: it commits its own proposal and those queued behind it.
        case lead
    }

    struct Proposal {
        var command: HiveCommand
        var payload: [UInt8]
        /// nil for the leader's own proposal, which it answers by returning.
        var continuation: CheckedContinuation<Turn, Never>?
    }

    struct Shared {
        var pending: [Proposal] = []
        /// True while some thread holds leadership: only that thread touches ``CommitLoop``.
        var leading = false
        var stopping = false
        var failure: ClusterError?
        var status: NodeStatus
        var checkpointRunning = false
        var truncateThrough: UInt64?
    }

    private enum Admission {
        /// Nobody leads: this proposer leads.
        case lead
        /// Someone leads: the proposer must queue (answered only on the fast path).
        case mustQueue
        /// Queued behind the leader.
        case queued
        /// Not accepted.
        case refused(ClusterError)
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
        let applied = try storage.hive.state().appliedIndex
        let status = NodeStatus(
            identity: NodeIdentityView(
                clusterName: identity.clusterName, clusterID: identity.clusterID, nodeName: identity.nodeName,
                nodeID: identity.nodeID, restoreGeneration: identity.restoreGeneration),
            term: identity.currentTerm, commitIndex: storage.lastIndex, appliedIndex: applied,
            checkpointIndex: storage.checkpointIndex, logFirstIndex: storage.log.firstIndex, logBytes: storage.log.totalBytes)
        shared = Mutex(Shared(status: status))
        loop = CommitLoop(storage: storage, term: max(identity.currentTerm, storage.lastTerm))
        loop.setMaxLogBytes(try storage.hive.maxQuorumLogSize())
        logger.info(
            "node ready",
            metadata: ["cluster": "\(identity.clusterName)", "node": "\(identity.nodeName)", "index": "\(storage.lastIndex)"])
    }

    /// Where the node stands now.
    public var status: NodeStatus { shared.withLock { $0.status } }

    /// Proposes a change and waits until it is committed and applied.
    ///
    /// - Returns: the log index and what applying did (a registry error such as
    ///   `ERROR_FILE_NOT_FOUND` is an outcome, committed like any other).
    /// - Throws: `ERROR_INVALID_PARAMETER` for invalid input (nothing is logged), `ERROR_BUSY` when
    ///   the queue is full, `ERROR_CLUSTER_SHUTTING_DOWN` while stopping, I/O errors.
    /// - Important: the leader does blocking file I/O (write, fdatasync, SQLite) on the calling
    ///   thread; at most one proposer leads at a time.
    public func propose(_ command: HiveCommand) async throws(ClusterError) -> CommitResult {
        try command.validate()
        let payload = command.encoded()
        if payload.count > Limits.commandEncodedMaxBytes {
            throw ClusterError(
                .invalidParameter,
                "the change encodes to \(payload.count) bytes; the limit is \(Limits.commandEncodedMaxBytes)",
                failedCommand: command.isBatch ? -1 : nil)
        }
        let mine = Proposal(command: command, payload: payload, continuation: nil)
        // Fast path: nobody leads, so this proposer leads without suspending.
        var admission = shared.withLock { state in admit(&state, queueing: nil) }
        if case .mustQueue = admission {
            let turn = await withCheckedContinuation { (continuation: CheckedContinuation<Turn, Never>) in
                var queued = mine
                queued.continuation = continuation
                let decision = shared.withLock { state in admit(&state, queueing: queued) }
                switch decision {
                case .lead: continuation.resume(returning: .lead)
                case .refused(let error): continuation.resume(returning: .done(.failure(error)))
                case .queued: break
                case .mustQueue: preconditionFailure("admission with a continuation queues or refuses")
                }
            }
            switch turn {
            case .done(let result): return try result.get()
            case .lead: admission = .lead
            }
        }
        switch admission {
        case .lead: return try lead(mine).get()
        case .refused(let error): throw error
        case .queued, .mustQueue: preconditionFailure("a queued proposer resumes as leader or with its result")
        }
    }

    /// Decides under the lock: lead, queue (when `proposal` carries a continuation), or refuse.
    private func admit(_ state: inout Shared, queueing proposal: Proposal?) -> Admission {
        if state.stopping { return .refused(ClusterError(.clusterShuttingDown, "the node is stopping")) }
        if let failure = state.failure { return .refused(failure) }
        if !state.leading && state.pending.isEmpty {
            state.leading = true
            return .lead
        }
        guard let proposal else { return .mustQueue }
        if state.pending.count >= Limits.pendingProposalsMax {
            return .refused(ClusterError(.busy, "\(Limits.pendingProposalsMax) writes are already waiting; retry"))
        }
        state.pending.append(proposal)
        return .queued
    }

    /// Stops accepting writes, lets the queued ones commit, and closes the storage.
    public func stop() {
        let alreadyStopping = shared.withLock { state in
            defer { state.stopping = true }
            return state.stopping
        }
        if alreadyStopping { return }
        while shared.withLock({ $0.leading || !$0.pending.isEmpty || $0.checkpointRunning }) { usleep(1_000) }
        loop.storage.close()
        logger.info("node stopped")
    }

    // MARK: Leading a group commit

    /// Commits `mine` and everything queued behind it, answers the followers, hands leadership on.
    private func lead(_ mine: Proposal) -> Result<CommitResult, ClusterError> {
        let (queued, truncate) = shared.withLock { state -> ([Proposal], UInt64?) in
            precondition(state.leading, "only the leader commits")
            let truncate = state.truncateThrough
            state.truncateThrough = nil
            return (Self.takeBatch(from: &state.pending, reserving: mine.payload.count), truncate)
        }
        if let truncate { removeLog(through: truncate) }
        let batch = [mine] + queued
        let results = process(batch)
        precondition(results.count == batch.count, "one result per proposal")
        for (proposal, result) in zip(batch.dropFirst(), results.dropFirst()) {
            proposal.continuation?.resume(returning: .done(result))
        }
        handOver()
        return results[0]
    }

    /// Passes leadership to the first queued proposer, or releases it.
    private func handOver() {
        let next = shared.withLock { state -> Proposal? in
            precondition(state.leading, "only the leader hands over")
            if state.pending.isEmpty {
                state.leading = false
                return nil
            }
            return state.pending.removeFirst()
        }
        next?.continuation?.resume(returning: .lead)
    }

    private static func takeBatch(from pending: inout [Proposal], reserving reserved: Int) -> [Proposal] {
        var count = 0
        var bytes = reserved
        while count < pending.count && count + 1 < Limits.groupCommitEntriesMax {
            let size = pending[count].payload.count
            if bytes + size > Limits.groupCommitBytesMax { break }
            bytes += size
            count += 1
        }
        let batch = Array(pending.prefix(count))
        pending.removeFirst(count)
        return batch
    }

    private func process(_ batch: [Proposal]) -> [Result<CommitResult, ClusterError>] {
        let first = loop.storage.lastIndex + 1
        let entries = batch.enumerated().map { offset, proposal in
            LogEntry(index: first + UInt64(offset), term: loop.term, kind: .command, payload: proposal.payload)
        }
        do {
            try loop.storage.log.append(entries)
        } catch {
            logger.error("quorum log append failed", metadata: ["error": "\(error)"])
            return batch.map { _ in .failure(error) }
        }
        let last = first + UInt64(batch.count - 1)
        loop.storage.lastIndex = last
        loop.storage.lastTerm = loop.term
        // One member: durable on the only member is committed.
        shared.withLock { $0.status.commitIndex = last }
        let committed = batch.enumerated().map { offset, proposal in
            Hive.Committed(index: first + UInt64(offset), term: loop.term, command: proposal.command)
        }
        let outcomes: [CommandOutcome]
        do {
            outcomes = try hive.apply(committed)
        } catch {
            let failure = ClusterError(
                error.code, "entries \(first)...\(last) are committed but the hive could not apply them (\(error.message)); restart the node")
            logger.critical("hive apply failed; refusing further writes", metadata: ["error": "\(failure)"])
            shared.withLock { $0.failure = failure }
            return batch.map { _ in .failure(failure) }
        }
        precondition(outcomes.count == batch.count, "one outcome per committed command")
        let logBytes = loop.storage.log.totalBytes
        let logFirst = loop.storage.log.firstIndex
        shared.withLock {
            $0.status.appliedIndex = last
            $0.status.logBytes = logBytes
            $0.status.logFirstIndex = logFirst
        }
        maybeStartCheckpoint(logBytes: logBytes)
        return outcomes.enumerated().map { offset, outcome in
            .success(CommitResult(index: first + UInt64(offset), outcome: outcome))
        }
    }

    // MARK: Checkpoints and log truncation

    private func maybeStartCheckpoint(logBytes: Int) {
        guard logBytes > Limits.maxQuorumLogSizeMin else { return }
        loop.batchesSinceLimitRead += 1
        if logBytes > loop.maxLogBytes || loop.batchesSinceLimitRead >= CommitLoop.limitRereadBatches {
            loop.batchesSinceLimitRead = 0
            loop.setMaxLogBytes((try? hive.maxQuorumLogSize()) ?? Limits.maxQuorumLogSizeDefault)
        }
        guard logBytes > loop.maxLogBytes else { return }
        let start = shared.withLock { state -> Bool in
            if state.checkpointRunning || state.stopping { return false }
            state.checkpointRunning = true
            return true
        }
        guard start else { return }
        let hive = self.hive
        let quorumDirectory = loop.storage.directory.quorumDirectory
        let thread = Thread { [self] in
            do throws(ClusterError) {
                let checkpoint = try ClusterCheckpoints.write(from: hive, to: quorumDirectory)
                try ClusterCheckpoints.prune(in: quorumDirectory)
                logger.info("wrote a cluster checkpoint", metadata: ["path": "\(checkpoint.path)", "index": "\(checkpoint.state.appliedIndex)"])
                // Truncate now if nobody leads; otherwise the next leader does it.
                let leadNow = shared.withLock { state -> Bool in
                    state.status.checkpointIndex = checkpoint.state.appliedIndex
                    if state.leading || state.stopping {
                        state.truncateThrough = checkpoint.state.appliedIndex
                        return false
                    }
                    state.leading = true
                    return true
                }
                if leadNow {
                    removeLog(through: checkpoint.state.appliedIndex)
                    handOver()
                }
                shared.withLock { $0.checkpointRunning = false }
            } catch {
                logger.error("cluster checkpoint failed; the log keeps growing", metadata: ["error": "\(error)"])
                shared.withLock { $0.checkpointRunning = false }
            }
        }
        thread.name = "clusdb-checkpoint"
        thread.start()
    }

    private func removeLog(through index: UInt64) {
        do {
            let removed = try loop.storage.log.removeSegments(through: index)
            loop.storage.checkpointIndex = index
            let logBytes = loop.storage.log.totalBytes
            let logFirst = loop.storage.log.firstIndex
            shared.withLock {
                $0.status.logBytes = logBytes
                $0.status.logFirstIndex = logFirst
            }
            if removed > 0 { logger.info("truncated the quorum log", metadata: ["through": "\(index)", "segments": "\(removed)"]) }
        } catch {
            logger.error("quorum log truncation failed", metadata: ["error": "\(error)"])
        }
    }
}

/// State only the current leader touches: the log, the storage positions and the term.
///
/// `@unchecked Sendable` because exclusive access is guaranteed by the `leading` flag under the
/// node's mutex (acquiring and releasing it orders every leader's accesses after the previous
/// one's), not by the type system. The checkpoint thread reads only the hive and the directory.
final class CommitLoop: @unchecked Sendable {
    let storage: NodeStorage
    let term: UInt64
    var maxLogBytes = Limits.maxQuorumLogSizeDefault
    var batchesSinceLimitRead = 0
    /// Batches between re-reads of `Quorum\MaxQuorumLogSize` (a point read; cheap at this rate).
    static let limitRereadBatches = 64

    /// Segments per `MaxQuorumLogSize`: the log is cut in quarters so that truncation behind a
    /// checkpoint frees most of it.
    static let segmentsPerMaxLogSize = 4

    init(storage: NodeStorage, term: UInt64) {
        self.storage = storage
        self.term = term
    }

    /// Records the configured log limit and sizes segments to a fraction of it.
    func setMaxLogBytes(_ bytes: Int) {
        maxLogBytes = bytes
        storage.log.segmentTargetBytes = min(Limits.quorumLogSegmentTargetBytes, max(1, bytes / Self.segmentsPerMaxLogSize))
    }
}
