#if canImport(Glibc)
import Glibc
#endif
import ClusDBModel
import ClusDBStore

/// What `backup inspect` shows: the manifest's members (the `--json` shape of `DESIGN.md` §3)
/// plus whether the completion marker is present and the total size. It reads the manifest only;
/// `backup verify` checks the content.
public struct BackupInspection: Encodable, Sendable {
    /// The manifest.
    public var manifest: BackupManifest
    /// True when the completion marker exists.
    public var complete: Bool

    /// Reads the manifest of the backup in `directory`.
    /// - Throws: `ERROR_PATH_NOT_FOUND` for a missing directory, `ERROR_DATABASE_BACKUP_CORRUPT`
    ///   for a missing or unreadable manifest.
    public init(directory: String) throws(ClusterError) {
        guard FileSystem.isDirectory(directory) else {
            throw ClusterError(FileSystem.exists(directory) ? .directory : .pathNotFound, "\(directory) is not a backup directory")
        }
        let manifestPath = FileSystem.join(directory, BackupLayout.manifestName)
        guard FileSystem.exists(manifestPath) else {
            throw ClusterError(.databaseBackupCorrupt, "\(directory) has no \(BackupLayout.manifestName): it is not a complete backup")
        }
        let file = try SystemFile(path: manifestPath, flags: O_RDONLY)
        guard try file.size() <= BackupVerifier.manifestMaxBytes else {
            throw ClusterError(.databaseBackupCorrupt, "\(BackupLayout.manifestName) is over \(BackupVerifier.manifestMaxBytes) bytes")
        }
        manifest = try BackupManifest(jsonBytes: try file.readAll())
        complete = FileSystem.exists(FileSystem.join(directory, BackupLayout.markerName))
    }

    enum ExtraKeys: String, CodingKey { case complete, totalBytes }

    /// Encodes the manifest's members and `complete`, `totalBytes` beside them.
    public func encode(to encoder: any Encoder) throws {
        try manifest.encode(to: encoder)
        var container = encoder.container(keyedBy: ExtraKeys.self)
        try container.encode(complete, forKey: .complete)
        try container.encode(manifest.totalBytes, forKey: .totalBytes)
    }
}
