#if canImport(Glibc)
import Glibc
#endif
import ClusDBModel
import GRDB

/// A cluster checkpoint file: a consistent SQLite image of the hive at an applied index.
public struct ClusterCheckpoint: Sendable, Equatable {
    /// The growing sequence number NNNN of `chk<NNNN>.tmp`.
    public var sequence: Int
    /// The file's path.
    public var path: String
    /// The hive state recorded inside the image (its applied index and term, the cluster).
    public var state: HiveState
}

/// Writing, finding and checking cluster checkpoints (`chk<NNNN>.tmp`) in a directory.
///
/// A checkpoint is written under a temporary name (`.chk<NNNN>.tmp.new`), fsynced, renamed, and
/// its directory fsynced: a crash leaves either no checkpoint or a complete one.
public enum ClusterCheckpoints {
    /// `chk<NNNN>.tmp`, at least four digits.
    public static func fileName(sequence: Int) -> String { BackupLayout.checkpointFileName(sequence: sequence) }

    /// The sequence number of a checkpoint file name, nil for other names.
    public static func sequence(ofFileName name: String) -> Int? { BackupLayout.checkpointSequence(ofFileName: name) }

    /// The checkpoint files in `directory` as (sequence, path), oldest first.
    public static func list(in directory: String) throws(ClusterError) -> [(sequence: Int, path: String)] {
        guard FileSystem.isDirectory(directory) else { return [] }
        return try FileSystem.list(directory).compactMap { name in
            sequence(ofFileName: name).map { ($0, FileSystem.join(directory, name)) }
        }.sorted { $0.sequence < $1.sequence }
    }

    /// Writes a checkpoint of `hive` at its current applied index with the next sequence number.
    ///
    /// Runs in one read transaction, so concurrent writes to the hive go on and the image is the
    /// state at exactly the index it records.
    public static func write(from hive: Hive, to directory: String) throws(ClusterError) -> ClusterCheckpoint {
        try FileSystem.makeDirectories(directory)
        let sequence = (try list(in: directory).last?.sequence ?? 0) + 1
        let path = FileSystem.join(directory, fileName(sequence: sequence))
        let temporary = FileSystem.join(directory, "." + fileName(sequence: sequence) + ".new")
        try FileSystem.removeFile(temporary)
        let state = try writeImage(of: hive, to: temporary)
        try FileSystem.renameFile(temporary, to: path)
        return ClusterCheckpoint(sequence: sequence, path: path, state: state)
    }

    /// Writes a consistent image of `hive` to `path` (fsynced, mode 0600) and returns the state
    /// it records. Used for checkpoints and backups.
    public static func writeImage(of hive: Hive, to path: String) throws(ClusterError) -> HiveState {
        let state: HiveState = try Hive.storage {
            try hive.database.read { db in
                let state = try Hive.state(db)
                let image = try DatabaseQueue(path: path)
                try image.writeWithoutTransaction { imageDB in
                    try db.backup(to: imageDB)
                    try imageDB.execute(sql: "PRAGMA journal_mode = DELETE")
                }
                try image.close()
                return state
            }
        }
        chmod(path, 0o600)
        let file = try SystemFile(path: path, flags: O_RDONLY)
        file.sync()
        return state
    }

    /// Checks a checkpoint image: SQLite's `quick_check` (or the full `integrity_check`) passes
    /// and the state row reads.
    /// - Throws: `ERROR_INVALID_DATA` naming the problem.
    public static func validate(path: String, fullIntegrityCheck: Bool = false) throws(ClusterError) -> HiveState {
        let hive = try Hive.openReadOnly(path: path)
        return try Hive.storage {
            try hive.database.read { db in
                let pragma = fullIntegrityCheck ? "PRAGMA integrity_check" : "PRAGMA quick_check"
                let result = try String.fetchAll(db, sql: pragma)
                guard result == ["ok"] else {
                    throw ClusterError(.invalidData, "\(path) fails SQLite's check: \(result.prefix(3).joined(separator: "; "))")
                }
                return try Hive.state(db)
            }
        }
    }

    /// The state recorded in a checkpoint image, read without checking the whole file.
    public static func state(path: String) throws(ClusterError) -> HiveState {
        let hive = try Hive.openReadOnly(path: path)
        defer { hive.close() }
        return try hive.state()
    }

    /// The newest checkpoint in `directory` that validates; damaged newer ones are skipped.
    public static func newestValid(in directory: String) throws(ClusterError) -> (ClusterCheckpoint?, skipped: [String]) {
        var skipped: [String] = []
        for (sequence, path) in try list(in: directory).reversed() {
            do throws(ClusterError) {
                let state = try validate(path: path)
                return (ClusterCheckpoint(sequence: sequence, path: path, state: state), skipped)
            } catch {
                skipped.append("\(path): \(error.message)")
            }
        }
        return (nil, skipped)
    }

    /// Removes all but the newest `keep` checkpoints and any leftover temporary files.
    public static func prune(in directory: String, keep: Int = Limits.clusterCheckpointsKept) throws(ClusterError) {
        precondition(keep >= 1, "at least one checkpoint is kept")
        let all = try list(in: directory)
        var removed = false
        for (_, path) in all.dropLast(keep) {
            try FileSystem.removeFile(path)
            removed = true
        }
        for name in try FileSystem.list(directory) where name.hasPrefix(".chk") && name.hasSuffix(".new") {
            try FileSystem.removeFile(FileSystem.join(directory, name))
            removed = true
        }
        if removed { try FileSystem.syncDirectory(directory) }
    }
}
