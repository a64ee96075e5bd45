#if canImport(Glibc)
import Glibc
#endif
import ClusDBModel
import Foundation

/// Makes a restore all-or-nothing: the restored files are prepared in a staging directory inside
/// the data directory, a commit record is written atomically, and only then are the live files
/// replaced. Whoever next holds the data directory's lock (a restore, or a node starting) calls
/// ``recover(_:)`` first:
///
/// - staging without a commit record: the restore died before its commit point; the staging
///   directory is deleted and the data directory is the old one, untouched;
/// - a commit record: the restore is finished by moving what is left in staging into place
///   (every step can be repeated), so the data directory becomes the restored one.
///
/// ```
/// DIR/.restore-staging/hive.sqlite   the restored hive
/// DIR/.restore-staging/quorum/       the restored checkpoint and log (absent with a quorum path)
/// DIR/.restore-staging/node.json     the restored identity
/// DIR/RESTORE-COMMIT                 JSON {"quorumPath": PATH or null}: the commit point
/// ```
///
/// With a quorum path (`--quorum-path`) the checkpoint and log are written straight into that
/// directory, which holds `.clusdb-restore-pending` until the restore is finished; finishing
/// replaces `DIR/quorum` with a symbolic link to it.
public enum RestoreJournal {
    /// The staging directory's name inside the data directory.
    public static let stagingName = ".restore-staging"
    /// The commit record's name inside the data directory.
    public static let commitName = "RESTORE-COMMIT"
    /// Marks a quorum path that an unfinished restore is filling.
    public static let pendingName = ".clusdb-restore-pending"

    /// The commit record.
    public struct Commit: Codable, Sendable, Equatable {
        /// Where the restored quorum directory lives when it is not `DIR/quorum`.
        public var quorumPath: String?

        /// Creates a record.
        public init(quorumPath: String?) { self.quorumPath = quorumPath }
    }

    /// What ``recover(_:)`` did.
    public enum Outcome: Sendable, Equatable {
        /// There was no unfinished restore.
        case nothing
        /// An uncommitted restore was discarded: the old data directory stands.
        case rolledBack
        /// A committed restore was finished: the restored data directory stands.
        case rolledForward
    }

    /// The staging directory of `dataDirectory`.
    public static func stagingPath(_ dataDirectory: String) -> String { FileSystem.join(dataDirectory, stagingName) }

    /// Writes the commit record: the restore's point of no return.
    /// - Precondition: everything in staging (and in the quorum path) is written and fsynced.
    public static func commit(_ dataDirectory: String, _ record: Commit) throws(ClusterError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let bytes: [UInt8]
        do {
            bytes = Array(try encoder.encode(record))
        } catch {
            preconditionFailure("a commit record always encodes: \(error)")
        }
        try FileSystem.writeAtomically(bytes, to: FileSystem.join(dataDirectory, commitName), site: SyncSite("restore.journal"))
    }

    /// Finishes or discards an interrupted restore of `dataDirectory`, whose lock the caller holds.
    @discardableResult
    public static func recover(_ dataDirectory: String) throws(ClusterError) -> Outcome {
        let commitPath = FileSystem.join(dataDirectory, commitName)
        let staging = stagingPath(dataDirectory)
        guard FileSystem.exists(commitPath) else {
            guard FileSystem.exists(staging) else { return .nothing }
            try FileSystem.removeTree(staging)
            try FileSystem.syncDirectory(dataDirectory, site: SyncSite("restore.directory"))
            return .rolledBack
        }
        let record: Commit
        do {
            record = try JSONDecoder().decode(Commit.self, from: Data(try SystemFile(path: commitPath, flags: O_RDONLY).readAll()))
        } catch let error as ClusterError {
            throw error
        } catch {
            throw ClusterError(.invalidData, "\(commitPath) does not decode: \(error); the restore cannot be finished")
        }
        try rollForward(dataDirectory, record)
        return .rolledForward
    }

    /// Moves the staged files into place; each step is skipped when already done.
    public static func rollForward(_ dataDirectory: String, _ record: Commit) throws(ClusterError) {
        let staging = stagingPath(dataDirectory)
        let hive = FileSystem.join(dataDirectory, "hive.sqlite")
        let stagedHive = FileSystem.join(staging, "hive.sqlite")
        if FileSystem.exists(stagedHive) {
            // The old hive's WAL must not meet the new hive.
            try FileSystem.removeFile(hive + "-wal")
            try FileSystem.removeFile(hive + "-shm")
            try FileSystem.syncDirectory(dataDirectory, site: SyncSite("restore.directory"))
            Failpoint.hit("restore-during-swap")
            try FileSystem.renameFile(stagedHive, to: hive, site: SyncSite("restore.rename"))
        }
        let quorum = FileSystem.join(dataDirectory, "quorum")
        if let quorumPath = record.quorumPath {
            if readLink(quorum) != quorumPath {
                try FileSystem.removeTree(quorum)
                try FileSystem.removeTree(quorum + ".link")
                if symlink(quorumPath, quorum + ".link") != 0 { throw FileSystem.error(errno, "symlink", quorum + ".link") }
                try FileSystem.renameFile(quorum + ".link", to: quorum, site: SyncSite("restore.rename"))
            }
            try FileSystem.removeFile(FileSystem.join(quorumPath, pendingName))
            try FileSystem.syncDirectory(quorumPath, site: SyncSite("restore.directory"))
        } else {
            let stagedQuorum = FileSystem.join(staging, "quorum")
            if FileSystem.exists(stagedQuorum) {
                try FileSystem.removeTree(quorum)
                try FileSystem.syncDirectory(dataDirectory, site: SyncSite("restore.directory"))
                try FileSystem.renameFile(stagedQuorum, to: quorum, site: SyncSite("restore.rename"))
            }
        }
        let stagedIdentity = FileSystem.join(staging, "node.json")
        if FileSystem.exists(stagedIdentity) {
            try FileSystem.renameFile(stagedIdentity, to: FileSystem.join(dataDirectory, "node.json"), site: SyncSite("restore.rename"))
        }
        // The restored files are another history: the old node's Raft hard state (its term, vote
        // and commit index) does not describe them. Without it the next start derives one from
        // the restored files, every entry of which is committed (docs/FORMATS.md, raft.state).
        try FileSystem.removeFile(FileSystem.join(dataDirectory, RaftHardStateFile.fileName))
        Failpoint.hit("restore-before-cleanup")
        try FileSystem.removeTree(staging)
        try FileSystem.syncDirectory(dataDirectory, site: SyncSite("restore.directory"))
        try FileSystem.removeFile(FileSystem.join(dataDirectory, commitName))
        try FileSystem.syncDirectory(dataDirectory, site: SyncSite("restore.directory"))
    }

    /// The target of a symbolic link, nil when `path` is not one.
    static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink(path, &buffer, buffer.count - 1)
        guard count >= 0 else { return nil }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
