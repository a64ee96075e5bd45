#if canImport(Glibc)
import Glibc
#endif
import ClusDBModel
import ClusDBRaft
import ClusDBStore
import Foundation

/// Cluster checkpoints and log truncation, driven from the log stage.
extension ClusterNode {
    /// The checkpoint thread's nice value (higher is lower priority).
    static let checkpointThreadNice: Int32 = 10
    /// Microseconds between looks while a checkpoint waits for the apply stage.
    static let checkpointApplyPollMicroseconds = 1_000

    /// Whether a checkpoint may start for a log of `logBytes` past its limit: none running, no
    /// backup pinning the current one, not stopping, and — amortization: a checkpoint copies the
    /// whole hive, so a large hive is checkpointed only after the log has grown by a fixed
    /// fraction of it (see Limits).
    static func checkpointMayStart(_ state: Shared, logBytes: Int) -> Bool {
        !state.checkpointRunning && !state.backupRunning && !state.stopping
            && logBytes >= state.lastCheckpointBytes / Limits.checkpointImageBytesPerLogByte
    }

    /// Reads `Quorum\MaxQuorumLogSize` from the hive (the default when unreadable).
    private func rereadMaxLogBytes() {
        loop.batchesSinceLimitRead = 0
        loop.setMaxLogBytes((try? hive.maxQuorumLogSize()) ?? Limits.maxQuorumLogSizeDefault)
    }

    func maybeStartCheckpoint(logBytes: Int) {
        guard logBytes > Limits.maxQuorumLogSizeMin else { return }
        loop.batchesSinceLimitRead += 1
        if loop.batchesSinceLimitRead >= CommitLoop.limitRereadBatches { rereadMaxLogBytes() }
        guard logBytes > loop.maxLogBytes, shared.withLock({ Self.checkpointMayStart($0, logBytes: logBytes) }) else { return }
        // The limit may have been raised since it was last read: read it again before copying
        // the hive (not on every write past it, which amortization can make a long stretch).
        if loop.batchesSinceLimitRead > 0 {
            rereadMaxLogBytes()
            guard logBytes > loop.maxLogBytes else { return }
        }
        let start = shared.withLock { state -> Bool in
            guard Self.checkpointMayStart(state, logBytes: logBytes) else { return false }
            state.checkpointRunning = true
            return true
        }
        guard start else { return }
        // The group that crossed the limit is committed but may not be applied yet; the image
        // must include it, or a single large write (an import) would leave the log uncovered
        // until some later write triggered another checkpoint.
        let target = shared.withLock { $0.status.commitIndex }
        let hive = self.hive
        let quorumDirectory = loop.storage.directory.quorumDirectory
        Self.startThread(named: "clusdb-checkpt") { [self] in
            // Below the write path's priority: the copy must not take CPU from acknowledging writes.
            // On Linux the nice value is per thread, and who = 0 names the calling thread.
            setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, Self.checkpointThreadNice)
            let wakeApply = shared.withLock { state -> Bool in
                state.checkpointAwaitsApply = true
                return Self.hurryApply(&state)
            }
            if wakeApply { applyWake.signal() }
            while shared.withLock({ $0.status.appliedIndex < target && $0.failure == nil }) {
                usleep(useconds_t(Self.checkpointApplyPollMicroseconds))
            }
            shared.withLock { $0.checkpointAwaitsApply = false }
            do throws(ClusterError) {
                let checkpoint = try ClusterCheckpoints.write(from: hive, to: quorumDirectory)
                try verifyCheckpoint(checkpoint.path, justWritten: true)
                let imageBytes = (try? SystemFile(path: checkpoint.path, flags: O_RDONLY).size()) ?? 0
                try ClusterCheckpoints.prune(in: quorumDirectory)
                // The older kept checkpoint as it is on disk, not as remembered: a backup may have
                // found the one remembered damaged and removed it.
                let olderKept = try ClusterCheckpoints.olderKeptIndex(in: quorumDirectory)
                logger.info("wrote a cluster checkpoint", metadata: ["path": "\(checkpoint.path)", "index": "\(checkpoint.state.appliedIndex)"])
                // The log is kept from the older of the two kept checkpoints on, so that a newest
                // checkpoint found damaged at start-up can be passed over for the older one plus
                // the log (see "Start-up" in docs/ARCHITECTURE.md). Truncate now if nobody holds
                // the log stage; otherwise its holder does it. The replica's memory needs nothing
                // the newest checkpoint covers: it becomes the replica's snapshot (bounded by
                // what the replica has been told is applied: the image may have been copied in
                // the moment between the hive's commit and that report).
                let truncateNow = shared.withLock { state -> Bool in
                    state.status.checkpointIndex = checkpoint.state.appliedIndex
                    state.lastCheckpointBytes = imageBytes
                    state.driver.compact(through: min(checkpoint.state.appliedIndex, state.driver.replica.appliedIndex))
                    guard let olderKept else { return false }
                    if state.logStageHeld || state.stopping {
                        state.truncateThrough = olderKept
                        return false
                    }
                    state.logStageHeld = true
                    return true
                }
                if truncateNow, let olderKept {
                    removeLog(through: olderKept)
                    handOver()
                }
                shared.withLock { $0.checkpointRunning = false }
            } catch {
                logger.error("cluster checkpoint failed; the log keeps growing", metadata: ["error": "\(error)"])
                shared.withLock { $0.checkpointRunning = false }
            }
        }
    }

    /// Runs SQLite's full integrity check on a checkpoint file and remembers that it passed, so
    /// backups that copy it can rely on it. A file that fails is removed before anything (log
    /// truncation, pruning of older checkpoints) relies on it.
    /// - Throws: `ERROR_INVALID_DATA` naming the problem.
    /// - Parameter justWritten: the file was summed a moment ago by ``ClusterCheckpoints/write(from:to:)``,
    ///   so its checksum is not read a second time.
    func verifyCheckpoint(_ path: String, justWritten: Bool = false) throws(ClusterError) {
        if shared.withLock({ $0.verifiedCheckpointPath == path }) { return }
        do throws(ClusterError) {
            _ = try ClusterCheckpoints.validate(path: path, fullIntegrityCheck: true, checkingSum: !justWritten)
        } catch {
            try? ClusterCheckpoints.removeWithoutSync(path)
            try? FileSystem.syncDirectory(FileSystem.parent(of: path), site: SyncSite("checkpoint.discard"))
            throw error
        }
        shared.withLock { $0.verifiedCheckpointPath = path }
    }

    func removeLog(through index: UInt64) {
        do {
            let removed = try loop.storage.log.removeSegments(through: index)
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
/// State only the holder of the log stage touches: the log, the hard-state file, the storage
/// positions.
///
/// `@unchecked Sendable` because exclusive access is guaranteed by the `logStageHeld` flag under
/// the node's mutex (acquiring and releasing it orders every holder's accesses after the previous
/// one's), not by the type system. The checkpoint thread reads only the hive and the directory.
final class CommitLoop: @unchecked Sendable {
    let storage: NodeStorage
    var maxLogBytes = Limits.maxQuorumLogSizeDefault
    var batchesSinceLimitRead = 0
    /// Batches between re-reads of `Quorum\MaxQuorumLogSize` (a point read; cheap at this rate).
    static let limitRereadBatches = 64

    /// Segments per `MaxQuorumLogSize`: the log is cut in quarters so that truncation behind a
    /// checkpoint frees most of it.
    static let segmentsPerMaxLogSize = 4

    init(storage: NodeStorage) {
        self.storage = storage
    }

    /// Records the configured log limit and sizes segments to a fraction of it.
    func setMaxLogBytes(_ bytes: Int) {
        maxLogBytes = bytes
        storage.log.segmentTargetBytes = min(Limits.quorumLogSegmentTargetBytes, max(1, bytes / Self.segmentsPerMaxLogSize))
    }
}
