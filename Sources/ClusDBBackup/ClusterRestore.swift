#if canImport(Glibc)
import Glibc
#endif
import ClusDBModel
import ClusDBStore
import Foundation

/// What to restore, and where (`RestoreClusterDatabase`, `clusdb restore`).
public struct RestoreRequest: Sendable {
    /// The backup directory.
    public var backupDirectory: String
    /// The stopped node's data directory to restore into (created when missing).
    public var dataDirectory: String
    /// Restore even when the data directory belongs to another cluster.
    public var force: Bool
    /// Put the restored checkpoint and quorum log in this directory (a replacement location)
    /// instead of `DATA/quorum`; it must be new or empty.
    public var quorumPath: String?
    /// Replay the backup's quorum log only up to this index (point-in-time restore).
    public var toIndex: UInt64?
    /// Report what would change and change nothing.
    public var dryRun: Bool

    /// Creates a request.
    public init(
        backupDirectory: String, dataDirectory: String, force: Bool = false, quorumPath: String? = nil,
        toIndex: UInt64? = nil, dryRun: Bool = false
    ) {
        self.backupDirectory = backupDirectory
        self.dataDirectory = dataDirectory
        self.force = force
        self.quorumPath = quorumPath
        self.toIndex = toIndex
        self.dryRun = dryRun
    }
}

/// What a restore did (or, for a dry run, would do).
public struct RestoreReport: Codable, Sendable, Equatable {
    /// True for a dry run: nothing was changed.
    public var dryRun: Bool
    /// The cluster restored.
    public var cluster: BackupManifest.Cluster
    /// The cluster the data directory belonged to before, when it had one.
    public var previousCluster: BackupManifest.Cluster?
    /// The applied index of the data directory's hive before (nil: it had none).
    public var previousIndex: UInt64?
    /// The index the restored hive is at.
    public var restoredIndex: UInt64
    /// The restore generation the data directory has (or would have) afterwards.
    public var restoreGeneration: UInt64
    /// Key and value counts of the restored hive.
    public var keys: Int
    /// Values in the restored hive.
    public var values: Int
    /// The differences (a dry run only).
    public var changes: HiveDifference?
}

/// Restores a backup into a stopped node's data directory (`DESIGN.md` §4).
///
/// The order makes it safe: the backup is verified completely before anything is touched (a
/// damaged or incomplete backup is `ERROR_DATABASE_BACKUP_CORRUPT` and changes nothing); the data
/// directory's lock is taken (a running node's is `ERROR_SHARING_VIOLATION`); a data directory of
/// another cluster is refused with `ERROR_QUORUM_DISK_NOT_FOUND` unless forced; the restored hive
/// (checkpoint plus the backup's log replayed to the target index), checkpoint, log and identity
/// are built in staging; and ``RestoreJournal`` swaps them in behind one commit record, so a
/// restore killed at any point leaves the old data directory or the restored one.
///
/// The restored node has a new, higher restore generation and term; it forms the cluster alone.
public enum ClusterRestore {
    /// Runs a restore (or a dry run).
    public static func run(_ request: RestoreRequest) throws(ClusterError) -> RestoreReport {
        let backup = try BackupVerifier.verify(request.backupDirectory)
        let manifest = backup.manifest
        let target = request.toIndex ?? manifest.lastIndex
        guard target >= manifest.checkpointIndex && target <= manifest.lastIndex else {
            throw ClusterError(
                .invalidParameter,
                "--to-index \(target) is outside the backup, which covers indexes \(manifest.checkpointIndex) through \(manifest.lastIndex)")
        }
        let dataDirectory = try checkDataDirectory(request.dataDirectory)
        let quorumPath = try request.quorumPath.map { (path) throws(ClusterError) in try checkQuorumPath(path, dataDirectory: dataDirectory) }
        if request.dryRun { return try dryRun(backup, target: target, dataDirectory: dataDirectory, force: request.force) }

        let directory = try DataDirectory(path: dataDirectory)
        defer { directory.unlock() }
        try RestoreJournal.recover(directory.path)
        let previous = try directory.readIdentity()
        try checkCluster(previous, manifest, directory.path, force: request.force)
        let previousIndex = try currentHiveState(directory.path)?.appliedIndex
        let staging = RestoreJournal.stagingPath(directory.path)
        try FileSystem.removeTree(staging)
        try FileSystem.makeDirectory(staging)
        let built = try buildHive(backup, target: target, at: FileSystem.join(staging, "hive.sqlite"))
        let quorumDirectory = quorumPath ?? FileSystem.join(staging, "quorum")
        if let quorumPath { try prepareQuorumPath(quorumPath) }
        try writeQuorumDirectory(backup, target: target, logBytes: built.logEnd, into: quorumDirectory)
        let sameCluster = previous?.clusterID == manifest.cluster.id
        // The node's current term is in raft.state (node.json's is a floor a restore sets): the
        // restored node starts past it, so its term never goes back. The file goes in the swap.
        let previousTerm = max(previous?.currentTerm ?? 0, (try? RaftHardStateFile.read(in: directory.path))??.term ?? 0)
        let identity = NodeIdentity(
            clusterName: manifest.cluster.name, clusterID: manifest.cluster.id,
            nodeName: previous?.nodeName ?? manifest.node,
            nodeID: previous?.nodeID ?? UUID().uuidString.lowercased(),
            restoreGeneration: max(manifest.restoreGeneration, previous?.restoreGeneration ?? 0) + 1,
            currentTerm: max(built.state.appliedTerm, manifest.term, sameCluster ? previousTerm : 0) + 1)
        try FileSystem.writeAtomically(identity.jsonBytes(), to: FileSystem.join(staging, "node.json"), site: SyncSite("restore.identity"))
        try FileSystem.syncDirectory(staging, site: SyncSite("restore.directory"))
        Failpoint.hit("restore-before-commit")
        let record = RestoreJournal.Commit(quorumPath: quorumPath)
        try RestoreJournal.commit(directory.path, record)
        Failpoint.hit("restore-after-commit")
        try RestoreJournal.rollForward(directory.path, record)
        return RestoreReport(
            dryRun: false, cluster: manifest.cluster,
            previousCluster: previous.map { BackupManifest.Cluster(name: $0.clusterName, id: $0.clusterID) },
            previousIndex: previousIndex, restoredIndex: target, restoreGeneration: identity.restoreGeneration,
            keys: built.keys, values: built.values, changes: nil)
    }

    // MARK: Checks

    private static func checkCluster(
        _ previous: NodeIdentity?, _ manifest: BackupManifest, _ path: String, force: Bool
    ) throws(ClusterError) {
        guard let previous, previous.clusterID != manifest.cluster.id, !force else { return }
        throw ClusterError(
            .quorumDiskNotFound,
            "\(path) belongs to cluster \"\(previous.clusterName)\" (\(previous.clusterID)), the backup to "
                + "\"\(manifest.cluster.name)\" (\(manifest.cluster.id)); --force replaces it")
    }

    private static func checkDataDirectory(_ path: String) throws(ClusterError) -> String {
        var trimmed = path
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        guard !trimmed.isEmpty else { throw ClusterError(.invalidParameter, "the data directory path is empty") }
        if FileSystem.exists(trimmed) {
            guard FileSystem.isDirectory(trimmed) else { throw ClusterError(.directory, "data directory \(trimmed) is a file") }
        } else if !FileSystem.isDirectory(FileSystem.parent(of: trimmed)) {
            throw ClusterError(.pathNotFound, "the parent directory of data directory \(trimmed) does not exist")
        }
        return trimmed
    }

    /// A quorum path must be absolute (the data directory links to it), outside the data
    /// directory, and new, empty, or left by an unfinished restore into it.
    private static func checkQuorumPath(_ path: String, dataDirectory: String) throws(ClusterError) -> String {
        var trimmed = path
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        guard trimmed.hasPrefix("/") else { throw ClusterError(.invalidParameter, "--quorum-path must be an absolute path") }
        let absoluteData = dataDirectory.hasPrefix("/") ? dataDirectory : FileManager.default.currentDirectoryPath + "/" + dataDirectory
        if trimmed == absoluteData || trimmed.hasPrefix(absoluteData + "/") {
            throw ClusterError(.invalidParameter, "--quorum-path must lie outside the data directory")
        }
        if FileSystem.exists(trimmed) {
            guard FileSystem.isDirectory(trimmed) else { throw ClusterError(.directory, "--quorum-path \(trimmed) is a file") }
            let names = try FileSystem.list(trimmed)
            if !names.isEmpty && !names.contains(RestoreJournal.pendingName) {
                throw ClusterError(.alreadyExists, "--quorum-path \(trimmed) is not empty; give a new or empty directory")
            }
        } else if !FileSystem.isDirectory(FileSystem.parent(of: trimmed)) {
            throw ClusterError(.pathNotFound, "the parent directory of --quorum-path \(trimmed) does not exist")
        }
        return trimmed
    }

    /// Empties a quorum path (new, empty, or an unfinished restore's) and marks it pending.
    private static func prepareQuorumPath(_ path: String) throws(ClusterError) {
        try FileSystem.makeDirectories(path)
        let pending = FileSystem.join(path, RestoreJournal.pendingName)
        try FileSystem.writeAtomically([], to: pending, site: SyncSite("restore.journal"))
        for name in try FileSystem.list(path) where name != RestoreJournal.pendingName {
            try FileSystem.removeTree(FileSystem.join(path, name))
        }
        try FileSystem.syncDirectory(path, site: SyncSite("restore.directory"))
    }

    // MARK: Building

    /// Copies the checkpoint to `path` and replays the backup's log onto it up to `target`.
    /// - Returns: the restored state, its counts, and the byte length of `quolog.log` through
    ///   `target` (the prefix that becomes the restored log segment).
    static func buildHive(
        _ backup: VerifiedBackup, target: UInt64, at path: String
    ) throws(ClusterError) -> (state: HiveState, keys: Int, values: Int, logEnd: Int) {
        for suffix in ["", "-wal", "-shm"] { try FileSystem.removeFile(path + suffix) }
        try FileSystem.copyFile(backup.checkpointPath, to: path, site: SyncSite("restore.copy"))
        let hive = try Hive.open(path: path)
        let manifest = backup.manifest
        let logEnd: Int
        let summary: (state: HiveState, keys: Int, values: Int)
        do {
            logEnd = try BackupQuorumLog.read(
                path: backup.quorumLogPath, checkpointIndex: manifest.checkpointIndex, lastIndex: manifest.lastIndex,
                term: manifest.term, through: target
            ) { (chunk) throws(ClusterError) in
                _ = try hive.apply(chunk)
            }
            try hive.checkpointWALCompletely()
            summary = try hive.summary()
        } catch {
            hive.close()
            throw error
        }
        hive.close()
        // Closing the last connection folds the WAL into the file; nothing may remain beside it.
        if let wal = try? SystemFile(path: path + "-wal", flags: O_RDONLY), (try? wal.size()) ?? 0 > 0 {
            throw ClusterError(.invalidData, "the restored hive \(path) kept a non-empty WAL after closing")
        }
        try FileSystem.removeFile(path + "-wal")
        try FileSystem.removeFile(path + "-shm")
        try SystemFile(path: path, flags: O_RDONLY).syncOrThrow(SyncSite("restore.file"))
        try FileSystem.syncDirectory(FileSystem.parent(of: path), site: SyncSite("restore.directory"))
        guard summary.state.appliedIndex == target else {
            throw ClusterError(
                .databaseBackupCorrupt, "replaying the backup ended at index \(summary.state.appliedIndex), not \(target)")
        }
        return (summary.state, summary.keys, summary.values, logEnd)
    }

    /// Writes the restored quorum directory: the backup's checkpoint and, when the target is past
    /// it, one log segment with the backup's records through the target (the backup's log file
    /// uses the segment format, so the segment is a prefix of it).
    private static func writeQuorumDirectory(
        _ backup: VerifiedBackup, target: UInt64, logBytes: Int, into directory: String
    ) throws(ClusterError) {
        try FileSystem.makeDirectories(directory)
        let checkpointName = backup.manifest.checkpointFile!.path
        try FileSystem.copyFile(backup.checkpointPath, to: FileSystem.join(directory, checkpointName), site: SyncSite("restore.copy"))
        let logDirectory = FileSystem.join(directory, "log")
        try FileSystem.makeDirectory(logDirectory)
        if target > backup.manifest.checkpointIndex {
            let first = backup.manifest.checkpointIndex + 1
            let name = String(repeating: "0", count: max(0, 20 - String(first).count)) + String(first) + ".seg"
            let source = try SystemFile(path: backup.quorumLogPath, flags: O_RDONLY)
            let segment = try SystemFile(path: FileSystem.join(logDirectory, name), flags: O_WRONLY | O_CREAT | O_TRUNC)
            var offset = 0
            while offset < logBytes {
                let chunk = try source.read(count: min(BackupSource.chunkBytes, logBytes - offset), at: offset)
                // The file was verified moments ago; if it shrank since, it changed under us.
                guard !chunk.isEmpty else {
                    throw ClusterError(.databaseBackupCorrupt, "\(backup.quorumLogPath) changed while it was being restored")
                }
                try segment.write(chunk, at: offset)
                offset += chunk.count
            }
            try segment.syncOrThrow(SyncSite("restore.file"))
        }
        try FileSystem.syncDirectory(logDirectory, site: SyncSite("restore.directory"))
        try FileSystem.syncDirectory(directory, site: SyncSite("restore.directory"))
    }

    /// The state of the data directory's hive, nil when it has none.
    private static func currentHiveState(_ dataDirectory: String) throws(ClusterError) -> HiveState? {
        let path = FileSystem.join(dataDirectory, "hive.sqlite")
        guard FileSystem.exists(path) else { return nil }
        return try? ClusterCheckpoints.state(path: path)
    }

    // MARK: Dry run

    private static func dryRun(
        _ backup: VerifiedBackup, target: UInt64, dataDirectory: String, force: Bool
    ) throws(ClusterError) -> RestoreReport {
        let lock = FileSystem.isDirectory(dataDirectory) ? try DataDirectory.lockExisting(path: dataDirectory) : nil
        defer { lock?.unlock() }
        let manifest = backup.manifest
        let identityPath = FileSystem.join(dataDirectory, "node.json")
        var previous: NodeIdentity?
        if FileSystem.exists(identityPath) {
            previous = try? JSONDecoder().decode(NodeIdentity.self, from: Data(try SystemFile(path: identityPath, flags: O_RDONLY).readAll()))
        }
        try checkCluster(previous, manifest, dataDirectory, force: force)
        let scratch = FileSystem.join(NSTemporaryDirectory(), "clusdb-dry-run-\(UUID().uuidString.lowercased())")
        try FileSystem.makeDirectories(scratch)
        defer { try? FileSystem.removeTree(scratch) }
        let restoredPath = FileSystem.join(scratch, "hive.sqlite")
        let built = try buildHive(backup, target: target, at: restoredPath)
        // SQLite would create -wal and -shm files beside a WAL database even to read it, so the
        // dry run reads a copy and the data directory is not touched at all.
        let livePath = FileSystem.join(dataDirectory, "hive.sqlite")
        var current: Hive?
        if FileSystem.exists(livePath) {
            let copyPath = FileSystem.join(scratch, "current.sqlite")
            try FileSystem.copyFile(livePath, to: copyPath, site: SyncSite("restore.copy"))
            if FileSystem.exists(livePath + "-wal") { try FileSystem.copyFile(livePath + "-wal", to: copyPath + "-wal", site: SyncSite("restore.copy")) }
            current = try Hive.openReadOnly(path: copyPath)
        }
        defer { current?.close() }
        let restored = try Hive.openReadOnly(path: restoredPath)
        defer { restored.close() }
        let changes = try HiveDifference.between(current: current, restored: restored)
        return RestoreReport(
            dryRun: true, cluster: manifest.cluster,
            previousCluster: previous.map { BackupManifest.Cluster(name: $0.clusterName, id: $0.clusterID) },
            previousIndex: try current?.state().appliedIndex, restoredIndex: target,
            restoreGeneration: max(manifest.restoreGeneration, previous?.restoreGeneration ?? 0) + 1,
            keys: built.keys, values: built.values, changes: changes)
    }
}
