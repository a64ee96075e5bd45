#if canImport(Glibc)
import Glibc
#endif
import ClusDBModel
import ClusDBStore

/// `quolog.log`: the quorum-log records (C, L] of a backup, in the segment format of the live log
/// (the 32-byte header with first index C + 1, then the framed records) and nothing after the
/// last record: no preallocated zeros, no trailing bytes.
public enum BackupQuorumLog {
    /// Reads every record of the file at `path` and checks it against the manifest: the header
    /// names C + 1, indexes run C + 1 ... L without a gap, terms never decrease and end at the
    /// manifest's term, every payload decodes, and the file ends right after L.
    ///
    /// - Parameters:
    ///   - through: stop after this index (point-in-time restore); the records before it are
    ///     checked as above, the rest is not read.
    ///   - body: called with the decoded entries in order, in chunks.
    /// - Returns: the file offset just past the last record read.
    /// - Throws: `ERROR_DATABASE_BACKUP_CORRUPT` naming the first problem; the body's errors.
    @discardableResult
    public static func read(
        path: String, checkpointIndex: UInt64, lastIndex: UInt64, term: UInt64, through: UInt64? = nil,
        _ body: ([Hive.Committed]) throws(ClusterError) -> Void = { _ in }
    ) throws(ClusterError) -> Int {
        let name = BackupLayout.quorumLogName
        let stop = min(through ?? lastIndex, lastIndex)
        let file: SystemFile
        do {
            file = try SystemFile(path: path, flags: O_RDONLY)
        } catch {
            throw corrupt("\(name) cannot be read: \(error.message)")
        }
        let header = try file.read(count: QuorumLog.segmentHeaderSize, at: 0)
        let format: LogRecord.Format
        switch QuorumLog.parseHeader(header) {
        case .failure(let problem): throw corrupt("\(name) \(problem.message)")
        case .success(let parsed):
            guard parsed.firstIndex == checkpointIndex &+ 1 else {
                throw corrupt("\(name) starts at index \(parsed.firstIndex), but the checkpoint is at \(checkpointIndex)")
            }
            format = parsed.format
        }
        var scanner = try LogRecordScanner(file: file, offset: QuorumLog.segmentHeaderSize, format: format)
        var expected = checkpointIndex &+ 1
        var lastTerm: UInt64 = 0
        var chunk: [Hive.Committed] = []
        while expected <= stop {
            switch try scanner.next() {
            case .endOfFile:
                throw corrupt("\(name) ends after index \(expected - 1); the manifest says \(lastIndex)")
            case .invalid(let offset, let reason):
                throw corrupt("\(name) offset \(offset): \(reason)")
            case .record(let entry, _):
                guard entry.index == expected else {
                    throw corrupt("\(name) offset \(scanner.offset): index \(entry.index) where \(expected) belongs")
                }
                guard entry.term >= lastTerm else {
                    throw corrupt("\(name): the term falls from \(lastTerm) to \(entry.term) at index \(entry.index)")
                }
                lastTerm = entry.term
                do throws(ClusterError) {
                    chunk.append(try Hive.Committed(entry: entry))
                } catch {
                    throw corrupt("\(name): \(error.message)")
                }
                if chunk.count >= chunkEntries {
                    try body(chunk)
                    chunk.removeAll(keepingCapacity: true)
                }
                expected += 1
            }
        }
        if !chunk.isEmpty { try body(chunk) }
        let end = scanner.offset
        guard stop == lastIndex else { return end }
        if lastIndex > checkpointIndex && lastTerm != term {
            throw corrupt("\(name) ends with term \(lastTerm); the manifest says \(term)")
        }
        switch try scanner.next() {
        case .endOfFile: return end
        case .record(let entry, _): throw corrupt("\(name) holds index \(entry.index) after the manifest's last index \(lastIndex)")
        case .invalid(let offset, _): throw corrupt("\(name) has stray bytes at offset \(offset), after its last record")
        }
    }

    /// Entries handed to the body at once (a restore applies them in one transaction).
    public static let chunkEntries = 4_096

    static func corrupt(_ message: String) -> ClusterError {
        ClusterError(.databaseBackupCorrupt, message)
    }
}
