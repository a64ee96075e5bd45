#if canImport(Glibc)
import Glibc
#endif
import ClusDBModel
import ClusDBRaft
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
        // Damaged checkpoints set aside keep their numbers: the sequence only grows.
        let sequence = max(try list(in: directory).last?.sequence ?? 0, try newestSetAsideSequence(in: directory)) + 1
        let path = FileSystem.join(directory, fileName(sequence: sequence))
        let temporary = FileSystem.join(directory, "." + fileName(sequence: sequence) + ".new")
        try FileSystem.removeFile(temporary)
        let state = try writeImage(of: hive, to: temporary)
        // The sum first: a checkpoint in place always has one (SQLite's own checks pass files
        // with a flipped byte inside a page or a few bytes cut off the end).
        try FileSystem.writeAtomically(try checksumRecord(of: temporary), to: path + checksumSuffix, site: SyncSite("checkpoint.sum"))
        try FileSystem.renameFile(temporary, to: path, site: .checkpoint)
        return ClusterCheckpoint(sequence: sequence, path: path, state: state)
    }

    /// The suffix of a checkpoint's checksum file: `chk<NNNN>.tmp.sum` holds
    /// `"crc32c <8 hex digits> size <decimal>\n"` of the image.
    public static let checksumSuffix = ".sum"

    /// Bytes read per call while summing an image.
    static let checksumChunkBytes = 4 << 20

    /// The checksum record of the file at `path`.
    static func checksumRecord(of path: String) throws(ClusterError) -> [UInt8] {
        let (crc, size) = try checksum(of: path)
        return Array("crc32c \(Hex.encode(withUnsafeBytes(of: crc.bigEndian) { Array($0) })) size \(size)\n".utf8)
    }

    private static func checksum(of path: String) throws(ClusterError) -> (UInt32, Int) {
        let file = try SystemFile(path: path, flags: O_RDONLY)
        let size = try file.size()
        var crc: UInt32 = 0
        var offset = 0
        while offset < size {
            let chunk = try file.read(count: min(checksumChunkBytes, size - offset), at: offset)
            if chunk.isEmpty { break }
            crc = chunk.withUnsafeBytes { CRC32C.checksum($0, continuing: crc) }
            offset += chunk.count
        }
        return (crc, offset)
    }

    /// Checks a checkpoint against its checksum file, when it has one (a checkpoint restored from
    /// a backup, whose manifest carried its SHA-256, or written by an earlier build, has none).
    /// - Throws: `ERROR_INVALID_DATA` naming the mismatch.
    static func checkSum(path: String) throws(ClusterError) {
        let sumPath = path + checksumSuffix
        guard FileSystem.exists(sumPath) else { return }
        let recorded = try SystemFile(path: sumPath, flags: O_RDONLY).readAll()
        let actual = try checksumRecord(of: path)
        guard recorded == actual else {
            throw ClusterError(
                .invalidData,
                "\(path) does not match its checksum file: recorded \(String(decoding: recorded, as: UTF8.self).trimmingSuffixNewline), "
                    + "found \(String(decoding: actual, as: UTF8.self).trimmingSuffixNewline)")
        }
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
        file.sync(SyncSite.checkpoint.file)
        return state
    }

    /// Checks a checkpoint image: it matches its checksum file (unless `checkingSum` is false: the
    /// caller just summed the same bytes), SQLite's `quick_check` (or the full `integrity_check`)
    /// passes and the state row reads.
    /// - Throws: `ERROR_INVALID_DATA` naming the problem.
    public static func validate(path: String, fullIntegrityCheck: Bool = false, checkingSum: Bool = true) throws(ClusterError) -> HiveState {
        if checkingSum { try checkSum(path: path) }
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

    /// The membership a checkpoint image records (nil for an image of a build before
    /// `hive_membership`), read without checking the whole file.
    public static func configuration(path: String) throws(ClusterError) -> RaftConfiguration? {
        let hive = try Hive.openReadOnly(path: path)
        defer { hive.close() }
        return try hive.configuration()
    }

    /// The newest checkpoint in `directory` that validates; damaged newer ones are skipped and
    /// returned with what is wrong with them.
    ///
    /// Each candidate is checked against its checksum file first (``checksumSuffix``): SQLite's
    /// own checks pass a file cut short by a few bytes or with a byte flipped inside a page.
    public static func newestValid(
        in directory: String, fullIntegrityCheck: Bool = false
    ) throws(ClusterError) -> (ClusterCheckpoint?, skipped: [(path: String, problem: String)]) {
        var skipped: [(path: String, problem: String)] = []
        for (sequence, path) in try list(in: directory).reversed() {
            do throws(ClusterError) {
                let state = try validate(path: path, fullIntegrityCheck: fullIntegrityCheck)
                return (ClusterCheckpoint(sequence: sequence, path: path, state: state), skipped)
            } catch {
                skipped.append((path, error.message))
            }
        }
        return (nil, skipped)
    }

    /// The applied index of the older of the kept checkpoints (the second newest on disk), nil
    /// when fewer than two are kept: the log may be truncated only through it.
    public static func olderKeptIndex(in directory: String) throws(ClusterError) -> UInt64? {
        let kept = try list(in: directory)
        guard kept.count >= 2 else { return nil }
        return try state(path: kept[kept.count - 2].path).appliedIndex
    }

    /// The highest sequence number of a checkpoint set aside as damaged, 0 when there is none.
    public static func newestSetAsideSequence(in directory: String) throws(ClusterError) -> Int {
        guard FileSystem.isDirectory(directory) else { return 0 }
        return try FileSystem.list(directory).compactMap { name -> Int? in
            guard name.hasSuffix(damagedSuffix) else { return nil }
            return ClusterCheckpoints.sequence(ofFileName: String(name.dropLast(damagedSuffix.count)))
        }.max() ?? 0
    }

    /// Removes a checkpoint and its checksum file (no directory fsync; callers batch that).
    public static func removeWithoutSync(_ path: String) throws(ClusterError) {
        try FileSystem.removeFile(path)
        try FileSystem.removeFile(path + checksumSuffix)
    }

    /// The suffix a damaged checkpoint is renamed to once start-up passed over it: out of the
    /// way of the sequence and of pruning, kept for an operator to look at.
    public static let damagedSuffix = ".damaged"

    /// Sets damaged checkpoints a start-up passed over aside: each is renamed
    /// `chk<NNNN>.tmp.damaged` (its sum `chk<NNNN>.tmp.damaged.sum`), out of the way of the
    /// sequence and of pruning, kept for an operator to look at; then `directory` is synced.
    /// Start-up calls it only once its storage checks and replay succeeded, so a start refused by
    /// them changes nothing.
    public static func setAside(_ paths: [String], in directory: String) throws(ClusterError) {
        guard !paths.isEmpty else { return }
        for path in paths {
            try FileSystem.renameWithoutSync(path, to: path + damagedSuffix)
            if FileSystem.exists(path + checksumSuffix) {
                try FileSystem.renameWithoutSync(path + checksumSuffix, to: path + damagedSuffix + checksumSuffix)
            }
        }
        try FileSystem.syncDirectory(directory, site: SyncSite("checkpoint.passed-over"))
    }

    /// Removes all but the newest `keep` checkpoints and any leftover temporary files.
    public static func prune(in directory: String, keep: Int = Limits.clusterCheckpointsKept) throws(ClusterError) {
        precondition(keep >= 1, "at least one checkpoint is kept")
        let all = try list(in: directory)
        var removed = false
        for (_, path) in all.dropLast(keep) {
            try removeWithoutSync(path)
            removed = true
        }
        // Leftovers of a checkpoint or checksum file whose writing was cut short.
        for name in try FileSystem.list(directory)
        where (name.hasPrefix(".chk") || name.hasSuffix(checksumSuffix + ".new")) && name.hasSuffix(".new") {
            try FileSystem.removeFile(FileSystem.join(directory, name))
            removed = true
        }
        if removed { try FileSystem.syncDirectory(directory, site: .checkpointPrune) }
    }
}

extension String {
    /// The string without one trailing newline.
    fileprivate var trimmingSuffixNewline: String { hasSuffix("\n") ? String(dropLast()) : self }
}
