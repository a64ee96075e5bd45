import ClusDBModel
import ClusDBStore
import Dispatch
import Foundation
import Logging
import Synchronization

/// A running cluster node: the write path and the hive it serves reads from.
///
/// Writes follow propose → append + fsync → commit → apply → answer. Proposals from any task are
/// queued; one commit thread takes everything queued (up to ``Limits/groupCommitEntriesMax``),
/// appends it to the quorum log with one write and one fdatasync (group commit), marks it
/// committed, applies it to the hive in one transaction, and only then resumes the proposers.
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
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private let loop: CommitLoop
    private let logger: Logger

    struct Proposal {
        var command: HiveCommand
        var payload: [UInt8]
        var continuation: CheckedContinuation<CommitResult, any Error>
    }

    struct Shared {
        var pending: [Proposal] = []
        var stopping = false
        var stopped = false
        var failure: ClusterError?
        var status: NodeStatus
        var checkpointRunning = false
        var truncateThrough: UInt64?
    }

    /// Recovers the data directory and starts the commit thread.
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
        let thread = Thread { [self] in runLoop() }
        thread.name = "clusdb-commit"
        thread.start()
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
    public func propose(_ command: HiveCommand) async throws(ClusterError) -> CommitResult {
        try command.validate()
        let payload = command.encoded()
        if payload.count > Limits.commandEncodedMaxBytes {
            throw ClusterError(
                .invalidParameter,
                "the change encodes to \(payload.count) bytes; the limit is \(Limits.commandEncodedMaxBytes)",
                failedCommand: command.isBatch ? -1 : nil)
        }
        do {
            return try await withCheckedThrowingContinuation { continuation in
                let proposal = Proposal(command: command, payload: payload, continuation: continuation)
                let (refusal, wasEmpty): (ClusterError?, Bool) = shared.withLock { state in
                    if state.stopping { return (ClusterError(.clusterShuttingDown, "the node is stopping"), false) }
                    if let failure = state.failure { return (failure, false) }
                    if state.pending.count >= Limits.pendingProposalsMax {
                        return (ClusterError(.busy, "\(Limits.pendingProposalsMax) writes are already waiting; retry"), false)
                    }
                    state.pending.append(proposal)
                    return (nil, state.pending.count == 1)
                }
                if let refusal {
                    continuation.resume(throwing: refusal)
                } else if wasEmpty {
                    wake.signal()
                }
            }
        } catch let error as ClusterError {
            throw error
        } catch {
            throw ClusterError(.invalidData, "\(error)")
        }
    }

    /// Stops accepting writes, finishes the ones already queued, and waits for the commit thread.
    public func stop() {
        let alreadyStopping = shared.withLock { state in
            defer { state.stopping = true }
            return state.stopping
        }
        if alreadyStopping { return }
        wake.signal()
        finished.wait()
        while shared.withLock({ $0.checkpointRunning }) { usleep(10_000) }
        loop.storage.close()
        logger.info("node stopped")
    }

    // MARK: The commit thread

    private func runLoop() {
        while true {
            wake.wait()
            while true {
                let (batch, stopping, truncate) = shared.withLock { state -> ([Proposal], Bool, UInt64?) in
                    let batch = Self.takeBatch(from: &state.pending)
                    let truncate = state.truncateThrough
                    state.truncateThrough = nil
                    return (batch, state.stopping, truncate)
                }
                if let truncate { removeLog(through: truncate) }
                if batch.isEmpty {
                    if stopping {
                        shared.withLock { $0.stopped = true }
                        finished.signal()
                        return
                    }
                    break
                }
                process(batch)
            }
        }
    }

    private static func takeBatch(from pending: inout [Proposal]) -> [Proposal] {
        var count = 0
        var bytes = 0
        while count < pending.count && count < Limits.groupCommitEntriesMax {
            let size = pending[count].payload.count
            if count > 0 && bytes + size > Limits.groupCommitBytesMax { break }
            bytes += size
            count += 1
        }
        let batch = Array(pending.prefix(count))
        pending.removeFirst(count)
        return batch
    }

    private func process(_ batch: [Proposal]) {
        let first = loop.storage.lastIndex + 1
        let entries = batch.enumerated().map { offset, proposal in
            LogEntry(index: first + UInt64(offset), term: loop.term, kind: .command, payload: proposal.payload)
        }
        do {
            try loop.storage.log.append(entries)
        } catch {
            logger.error("quorum log append failed", metadata: ["error": "\(error)"])
            for proposal in batch { proposal.continuation.resume(throwing: error) }
            return
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
            for proposal in batch { proposal.continuation.resume(throwing: failure) }
            return
        }
        precondition(outcomes.count == batch.count, "one outcome per committed command")
        let logBytes = loop.storage.log.totalBytes
        let logFirst = loop.storage.log.firstIndex
        shared.withLock {
            $0.status.appliedIndex = last
            $0.status.logBytes = logBytes
            $0.status.logFirstIndex = logFirst
        }
        for (offset, proposal) in batch.enumerated() {
            proposal.continuation.resume(returning: CommitResult(index: first + UInt64(offset), outcome: outcomes[offset]))
        }
        maybeStartCheckpoint(logBytes: logBytes)
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
                shared.withLock {
                    $0.truncateThrough = checkpoint.state.appliedIndex
                    $0.status.checkpointIndex = checkpoint.state.appliedIndex
                    $0.checkpointRunning = false
                }
                wake.signal()
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

/// State owned by the commit thread alone: the log, the storage positions and the term.
///
/// `@unchecked Sendable` because it crosses into the commit thread once, at start, and is touched
/// by no other thread afterwards (the checkpoint thread reads only the hive and the directory).
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
