#if canImport(Glibc)
import Glibc
#endif
import ClusDBBackup
import ClusDBModel
import ClusDBStore
import Foundation

/// Online backups (`BackupClusterDatabase`): a consistent image at one committed index, taken
/// without stopping writes.
///
/// A backup is the node's newest cluster checkpoint (index C) and the quorum-log records after
/// it up to L, where L is the applied index at the moment the backup starts, after every write
/// committed before it was applied. The checkpoint file and the segments are opened (pinned)
/// while no new checkpoint may start, so neither the file nor the log records it needs are
/// removed; writes go on appending after L and are not part of the backup.
///
/// Verification before the marker: the checkpoint file passed SQLite's full integrity check when
/// it was written (or by the first backup after a restart), every log record is checked (length,
/// CRC32C, index order) as it is copied, and every file's SHA-256 is computed on the bytes
/// written. Re-reading the copy right after writing it would read the page cache, not the disk,
/// and double the cost; `clusdb backup verify` is that independent full check.
extension ClusterNode {
    /// Milliseconds between looks while a backup waits for a running checkpoint to finish.
    static let backupCheckpointPollMilliseconds: UInt64 = 10

    /// Pins the content of a backup of the current state. Close the source when done: until
    /// then no cluster checkpoint starts (the log grows past `MaxQuorumLogSize` meanwhile).
    /// - Throws: `ERROR_BUSY` while another backup runs, `ERROR_CLUSTER_SHUTTING_DOWN`, I/O errors.
    public func openBackup() async throws(ClusterError) -> BackupSource {
        try await claimBackup()
        do throws(ClusterError) {
            return try await pinBackup()
        } catch {
            releaseBackup()
            throw error
        }
    }

    /// Writes a backup into `path` on this node's machine (`--on-quorum-owner`): the layout of
    /// `DESIGN.md` §6, verified before its completion marker is written.
    /// - Returns: the manifest written.
    /// - Throws: the path errors of ``BackupDirectoryWriter``, `ERROR_DISK_FULL`, `ERROR_BUSY`.
    public func backup(to path: String) async throws(ClusterError) -> BackupManifest {
        // The path is checked before anything is pinned, so a bad path fails fast.
        let writer = UncheckedBox(try BackupDirectoryWriter(path: path))
        let source = UncheckedBox(try await openBackup())
        defer { source.value.close() }
        return try await BlockingThread.run(named: "clusdb-backup") { () throws(ClusterError) -> BackupManifest in
            // Below the write path's priority, like the checkpoint thread: the copy must not take
            // CPU from acknowledging writes.
            setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, Self.checkpointThreadNice)
            return try source.value.write(to: writer.value)
        }
    }

    private func claimBackup() async throws(ClusterError) {
        while true {
            let claimed = try shared.withLock { (state) throws(ClusterError) -> Bool in
                if state.stopping { throw ClusterError(.clusterShuttingDown, "the node is stopping") }
                if let failure = state.failure { throw failure }
                if state.backupRunning { throw ClusterError(.busy, "a backup is already running on this node; retry when it ends") }
                if state.checkpointRunning { return false }
                state.backupRunning = true
                return true
            }
            if claimed { return }
            try? await Task.sleep(nanoseconds: Self.backupCheckpointPollMilliseconds * 1_000_000)
        }
    }

    func releaseBackup() {
        shared.withLock { $0.backupRunning = false }
    }

    private func pinBackup() async throws(ClusterError) -> BackupSource {
        let quorumDirectory = loop.storage.directory.quorumDirectory
        var newest = try ClusterCheckpoints.list(in: quorumDirectory).last
        if newest == nil {
            // A young cluster has no checkpoint yet: write one now (the hive is small, since the
            // log has not yet passed MaxQuorumLogSize).
            let checkpoint = try ClusterCheckpoints.write(from: hive, to: quorumDirectory)
            try verifyCheckpoint(checkpoint.path, justWritten: true)
            shared.withLock { $0.status.checkpointIndex = checkpoint.state.appliedIndex }
            newest = (checkpoint.sequence, checkpoint.path)
        }
        guard let (sequence, checkpointPath) = newest else { preconditionFailure("a checkpoint exists now") }
        // Checked once per checkpoint file (the checkpoint thread checks each one it writes; one
        // from before a restart is checked here, by the first backup that copies it).
        do throws(ClusterError) {
            // Off the task threads: on a large hive the check takes about a second.
            try await BlockingThread.run(named: "clusdb-ckptchk") { [self] () throws(ClusterError) in
                try verifyCheckpoint(checkpointPath)
            }
        } catch {
            throw ClusterError(error.code, "the node's newest cluster checkpoint is damaged, so no backup was taken: \(error.message)")
        }
        let checkpointFile = try SystemFile(path: checkpointPath, flags: O_RDONLY)
        let checkpointState = try ClusterCheckpoints.state(path: checkpointPath)
        // Every write answered before this call is at or below the commit index; once it is
        // applied, the hive's state names an index L that covers them all.
        try await waitUntilApplied(shared.withLock { $0.status.commitIndex })
        let summary = try hive.summary()
        let last = summary.state.appliedIndex
        // Read from a file: checked, not assumed.
        guard checkpointState.appliedIndex <= last else {
            throw ClusterError(
                .clusterLogCorrupt,
                "checkpoint \(checkpointPath) is at index \(checkpointState.appliedIndex), ahead of the hive at \(last); no backup was taken")
        }
        var segments: [BackupSource.Segment] = []
        if last > checkpointState.appliedIndex {
            let logDirectory = loop.storage.directory.logDirectory
            let starts = try FileSystem.list(logDirectory).compactMap { name -> UInt64? in
                name.hasSuffix(".seg") ? UInt64(name.dropLast(4)) : nil
            }.sorted()
            // Segments that may hold (C, L]: from the last one starting at or before C + 1 through
            // the last one starting at or before L.
            let from = starts.lastIndex { $0 <= checkpointState.appliedIndex + 1 } ?? 0
            for start in starts[from...] where start <= last {
                let name = String(repeating: "0", count: max(0, 20 - String(start).count)) + String(start) + ".seg"
                segments.append(
                    BackupSource.Segment(
                        firstIndex: start, file: try SystemFile(path: FileSystem.join(logDirectory, name), flags: O_RDONLY)))
            }
        }
        let identity = status.identity
        let manifest = BackupManifest(
            cluster: .init(name: identity.clusterName, id: identity.clusterID),
            checkpointIndex: checkpointState.appliedIndex, lastIndex: last, term: summary.state.appliedTerm,
            createdAt: BackupManifest.timestamp(), restoreGeneration: identity.restoreGeneration, node: identity.nodeName,
            keys: summary.keys, values: summary.values, files: [])
        return BackupSource(
            checkpoint: checkpointFile, checkpointSequence: sequence, segments: segments, manifest: manifest
        ) { [self] in releaseBackup() }
    }
}

/// Carries a value that is used by one thread at a time across an isolation boundary.
struct UncheckedBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
