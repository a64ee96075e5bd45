#if canImport(Glibc)
import Glibc
#endif
import ClusDBModel
import ClusDBStore
import Crypto

/// A backup that passed ``BackupVerifier/verify(_:requireMarker:)``.
public struct VerifiedBackup: Sendable {
    /// The backup directory.
    public var directory: String
    /// Its manifest.
    public var manifest: BackupManifest
    /// The hive state recorded in the checkpoint image.
    public var checkpointState: HiveState

    /// Path of the checkpoint file.
    public var checkpointPath: String {
        guard let file = manifest.checkpointFile else { preconditionFailure("a verified manifest lists a checkpoint") }
        return FileSystem.join(directory, file.path)
    }

    /// Path of `quolog.log`.
    public var quorumLogPath: String { FileSystem.join(directory, BackupLayout.quorumLogName) }
}

/// Checks a backup directory completely, in the order a reader can trust:
///
/// 1. the completion marker `.clusbackup.dat` exists (a 0-byte file);
/// 2. `clusbackup.manifest` parses and follows its rules;
/// 3. nothing sits in the directory that the manifest does not list;
/// 4. every listed file exists with its size and SHA-256;
/// 5. the checkpoint passes SQLite's `integrity_check` and records the manifest's cluster and
///    checkpoint index;
/// 6. `quolog.log` holds exactly the records C + 1 ... L, framed, checksummed, contiguous, each
///    decoding to a command, ending with the manifest's term.
///
/// Any failure is `ERROR_DATABASE_BACKUP_CORRUPT` naming the first problem found.
public enum BackupVerifier {
    /// Bytes read per call while hashing.
    public static let hashChunkBytes = 1 << 20

    /// Verifies the backup in `directory`.
    /// - Parameter requireMarker: false only for the writer's own check before it writes the marker.
    public static func verify(_ directory: String, requireMarker: Bool = true) throws(ClusterError) -> VerifiedBackup {
        var path = directory
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        guard FileSystem.isDirectory(path) else {
            if FileSystem.exists(path) { throw corrupt("\(path) is a file, not a backup directory") }
            throw ClusterError(.pathNotFound, "there is no backup directory \(path)")
        }
        let marker = FileSystem.join(path, BackupLayout.markerName)
        if requireMarker {
            var info = stat()
            guard lstat(marker, &info) == 0 else {
                throw corrupt("the completion marker \(BackupLayout.markerName) is missing: the backup is incomplete")
            }
            guard (info.st_mode & S_IFMT) == S_IFREG, info.st_size == 0 else {
                throw corrupt("the completion marker \(BackupLayout.markerName) is not an empty file")
            }
        }
        let manifestPath = FileSystem.join(path, BackupLayout.manifestName)
        guard FileSystem.exists(manifestPath) else { throw corrupt("\(BackupLayout.manifestName) is missing") }
        var manifestBytes: [UInt8] = []
        do throws(ClusterError) {
            let file = try SystemFile(path: manifestPath, flags: O_RDONLY)
            let size = try file.size()
            manifestBytes = try file.read(count: min(size, Self.manifestMaxBytes + 1), at: 0)
        } catch {
            throw corrupt("\(BackupLayout.manifestName) cannot be read: \(error.message)")
        }
        guard manifestBytes.count <= Self.manifestMaxBytes else {
            throw corrupt("\(BackupLayout.manifestName) is over \(Self.manifestMaxBytes) bytes")
        }
        let manifest = try BackupManifest(jsonBytes: manifestBytes)
        try checkNothingUnlisted(path, manifest)
        for file in manifest.files { try checkFile(path, file) }
        let checkpointPath = FileSystem.join(path, manifest.checkpointFile!.path)
        let state = try checkCheckpoint(checkpointPath, manifest)
        try BackupQuorumLog.read(
            path: FileSystem.join(path, BackupLayout.quorumLogName), checkpointIndex: manifest.checkpointIndex,
            lastIndex: manifest.lastIndex, term: manifest.term)
        if manifest.lastIndex == manifest.checkpointIndex && manifest.term != state.appliedTerm {
            throw corrupt("\(BackupLayout.manifestName) says term \(manifest.term); the checkpoint records \(state.appliedTerm)")
        }
        return VerifiedBackup(directory: path, manifest: manifest, checkpointState: state)
    }

    /// Largest manifest read (a manifest lists a few files per resource).
    public static let manifestMaxBytes = 16 << 20

    private static func checkNothingUnlisted(_ path: String, _ manifest: BackupManifest) throws(ClusterError) {
        let listed = Set(manifest.files.map(\.path))
        for name in try FileSystem.list(path) where name != BackupLayout.manifestName && name != BackupLayout.markerName {
            let entry = FileSystem.join(path, name)
            if BackupLayout.isResourceFolderName(name) && FileSystem.isDirectory(entry) {
                for inner in try FileSystem.list(entry) where !listed.contains(name + "/" + inner) {
                    throw corrupt("\(name)/\(inner) is not listed in \(BackupLayout.manifestName)")
                }
                continue
            }
            if !listed.contains(name) { throw corrupt("\(name) is not listed in \(BackupLayout.manifestName)") }
        }
    }

    private static func checkFile(_ directory: String, _ entry: BackupManifest.File) throws(ClusterError) {
        let path = FileSystem.join(directory, entry.path)
        var info = stat()
        guard lstat(path, &info) == 0 else { throw corrupt("\(entry.path) is missing") }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw corrupt("\(entry.path) is not a regular file") }
        guard Int(info.st_size) == entry.size else {
            throw corrupt("\(entry.path) has \(info.st_size) bytes; the manifest says \(entry.size)")
        }
        let digest = try sha256(of: path)
        guard digest == entry.sha256 else { throw corrupt("\(entry.path) does not match its SHA-256 in the manifest") }
    }

    /// The SHA-256 of a file, as lower-case hex.
    public static func sha256(of path: String) throws(ClusterError) -> String {
        let file: SystemFile
        do {
            file = try SystemFile(path: path, flags: O_RDONLY)
        } catch {
            throw corrupt("\(path) cannot be read: \(error.message)")
        }
        var hasher = SHA256()
        var offset = 0
        while true {
            let chunk = try file.read(count: hashChunkBytes, at: offset)
            if chunk.isEmpty { break }
            hasher.update(data: chunk)
            offset += chunk.count
        }
        return Hex.encode(hasher.finalize())
    }

    private static func checkCheckpoint(_ path: String, _ manifest: BackupManifest) throws(ClusterError) -> HiveState {
        let name = manifest.checkpointFile!.path
        let state: HiveState
        do {
            state = try ClusterCheckpoints.validate(path: path, fullIntegrityCheck: true)
        } catch {
            throw corrupt("\(name) is not a valid hive image: \(error.message)")
        }
        guard state.appliedIndex == manifest.checkpointIndex else {
            throw corrupt("\(name) is at index \(state.appliedIndex); the manifest says \(manifest.checkpointIndex)")
        }
        guard state.clusterID == manifest.cluster.id else {
            throw corrupt("\(name) belongs to cluster \(state.clusterID); the manifest says \(manifest.cluster.id)")
        }
        return state
    }

    static func corrupt(_ message: String) -> ClusterError {
        ClusterError(.databaseBackupCorrupt, message)
    }
}
