#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ClusDBModel

/// The quorum log: the durable, append-only sequence of log entries, in segment files.
///
/// - A segment `NNNNNNNNNNNNNNNNNNNN.seg` (the 20-digit index of its first entry) holds a 32-byte
///   header and ``LogRecord``s with consecutive indexes, followed by zeros: segments are created
///   preallocated (written with zeros to their target size), so an append overwrites blocks that
///   exist and its fdatasync need not update the file's size (measured here: p50 0.117 ms for an
///   overwrite, 0.165 ms for an append). Segments are created atomically (temporary name, fsync,
///   rename, directory fsync), so a segment always has a valid header.
/// - ``append(_:)`` writes a whole group of entries with one `pwrite` and one `fdatasync`: an entry
///   counts as persisted only after that returns.
/// - ``open(directory:segmentTargetBytes:)`` checks every record of every segment before it
///   changes anything. Damage in the last segment followed by no record of a *later* group is a
///   torn write of the last group (never acknowledged): it is cut off from the damage on.
///   Zeros after the last record are preallocated space, not damage. Damage followed by a later
///   group, in an earlier segment, or a gap in the indexes is corruption of acknowledged data
///   (`ERROR_CLUSTERLOG_CORRUPT`); a checksummed record this build cannot read is
///   `ERROR_REVISION_MISMATCH` or `ERROR_CLUSTERLOG_CORRUPT`. Either way nothing changes.
///
/// Not thread-safe: one owner (the node's commit loop) calls it.
public final class QuorumLog {
    /// One segment file.
    public struct Segment: Sendable, Equatable {
        /// Index of the first entry the segment holds (or will hold).
        public var firstIndex: UInt64
        /// Index of its last entry; `firstIndex - 1` while empty.
        public var lastIndex: UInt64
        /// The file's path.
        public var path: String
        /// The file's size in bytes, header included.
        public var size: Int
        /// The record format its header announces.
        public var format: LogRecord.Format
    }

    /// What a segment header says.
    public struct SegmentHeader: Sendable, Equatable {
        /// Index of the segment's first entry.
        public var firstIndex: UInt64
        /// The record format of the segment.
        public var format: LogRecord.Format
    }

    /// What recovery did on open.
    public struct Recovery: Sendable, Equatable {
        /// Bytes cut off the tail of the last segment (0 when the log was clean).
        public var truncatedBytes: Int
        /// Why the tail was cut, when it was.
        public var reason: String?
    }

    /// Size of a segment header.
    public static let segmentHeaderSize = 32
    /// The magic bytes that open every segment.
    public static let segmentMagic = Array("CLUSQLOG".utf8)
    /// The segment format version this build writes (the record format, ``LogRecord/Format``).
    public static let segmentFormatVersion: UInt32 = LogRecord.Format.current.rawValue
    /// Bytes of zeros written per call while preallocating a segment.
    static let preallocationChunkBytes = 256 << 10

    /// The directory holding the segments.
    public let directory: String
    /// The segments, oldest first.
    public private(set) var segments: [Segment]
    /// The term of the last entry (0 when empty).
    public private(set) var lastTerm: UInt64
    /// The terms of the entries held, run-length encoded: each run's first index and term,
    /// ascending. Kept in memory so that ``term(at:)`` reads no file (a few runs per term).
    private var termRuns: [TermRun]
    private var active: SystemFile?
    /// A segment is closed and a new one started once it passes this size. The node keeps it
    /// a fraction of `MaxQuorumLogSize`, so truncation behind a checkpoint can drop whole segments.
    public var segmentTargetBytes: Int {
        didSet { precondition(segmentTargetBytes > 0, "segments need a positive target size") }
    }

    /// Entries from `firstIndex` on have `term` (until the next run).
    struct TermRun: Sendable, Equatable {
        var firstIndex: UInt64
        var term: UInt64
    }

    private init(directory: String, segments: [Segment], lastTerm: UInt64, termRuns: [TermRun], segmentTargetBytes: Int) {
        self.directory = directory
        self.segments = segments
        self.lastTerm = lastTerm
        self.termRuns = termRuns
        self.segmentTargetBytes = segmentTargetBytes
    }

    /// The term of the entry at `index`, nil when the log does not hold it.
    public func term(at index: UInt64) -> UInt64? {
        guard let first = firstIndex, let last = lastIndex, index >= first, index <= last else { return nil }
        // The last run that starts at or before `index`.
        var low = 0
        var high = termRuns.count - 1
        while low < high {
            let middle = (low + high + 1) / 2
            if termRuns[middle].firstIndex <= index { low = middle } else { high = middle - 1 }
        }
        precondition(termRuns[low].firstIndex <= index, "term runs cover every entry held")
        return termRuns[low].term
    }

    private func recordTerms(of entries: [LogEntry]) {
        for entry in entries where termRuns.last?.term != entry.term {
            termRuns.append(TermRun(firstIndex: entry.index, term: entry.term))
        }
    }

    /// Index of the first entry held, nil when the log holds none.
    public var firstIndex: UInt64? {
        guard let first = segments.first(where: { $0.lastIndex >= $0.firstIndex }) else { return nil }
        return first.firstIndex
    }

    /// Index of the last entry held, nil when the log holds none.
    public var lastIndex: UInt64? {
        guard let last = segments.last, last.lastIndex >= last.firstIndex || segments.count > 1 else {
            return nil
        }
        return segments.last(where: { $0.lastIndex >= $0.firstIndex })?.lastIndex
    }

    /// Bytes in all segments.
    public var totalBytes: Int { segments.reduce(0) { $0 + $1.size } }

    // MARK: Opening and recovery

    /// Opens (creating if needed) the log in `directory`, recovering as the type describes.
    /// - Parameter segmentTargetBytes: a segment is closed once it passes this size.
    /// - Throws: `ERROR_CLUSTERLOG_CORRUPT` for damage before the tail; I/O errors.
    public static func open(
        directory: String, segmentTargetBytes: Int = Limits.quorumLogSegmentTargetBytes
    ) throws(ClusterError) -> (QuorumLog, Recovery) {
        try FileSystem.makeDirectories(directory)
        var segments: [Segment] = []
        var recovery = Recovery(truncatedBytes: 0, reason: nil)
        var lastTerm: UInt64 = 0
        var termRuns: [TermRun] = []
        let names = try FileSystem.list(directory)
        let segmentNames = names.filter { $0.hasSuffix(".seg") }
        // Every segment is checked before anything changes: damage or a record this build cannot
        // read anywhere leaves every file as it was.
        var tornTail: (file: SystemFile, scan: Scan, bytes: Int)?
        for (position, name) in segmentNames.enumerated() {
            let path = FileSystem.join(directory, name)
            let isLast = position == segmentNames.count - 1
            let file = try SystemFile(path: path, flags: O_RDWR)
            let bytes = try file.readAll()
            let header = try readHeader(bytes, path: path)
            if let previous = segments.last, header.firstIndex != previous.lastIndex &+ 1 {
                throw corrupt("segment \(name) starts at index \(header.firstIndex) but the one before ends at \(previous.lastIndex)")
            }
            let scan = try scanRecords(bytes, header: header, path: path, isLast: isLast)
            if scan.tornReason != nil {
                precondition(isLast, "only the last segment may have a torn tail")
                tornTail = (file, scan, bytes.count)
            }
            if !isLast && scan.lastIndex < header.firstIndex {
                throw corrupt("segment \(name) is empty but is not the last one")
            }
            if scan.lastIndex >= header.firstIndex { lastTerm = scan.lastTerm }
            for run in scan.termRuns where termRuns.last?.term != run.term { termRuns.append(run) }
            segments.append(
                Segment(firstIndex: header.firstIndex, lastIndex: scan.lastIndex, path: path, size: scan.validLength, format: header.format))
        }
        if let tornTail {
            try tornTail.file.truncate(to: tornTail.scan.validLength)
            tornTail.file.sync(.logTornTail)
            recovery = Recovery(truncatedBytes: tornTail.bytes - tornTail.scan.validLength, reason: tornTail.scan.tornReason)
        }
        var leftovers = false
        for name in names where name.hasSuffix(".seg.new") {
            try FileSystem.removeFile(FileSystem.join(directory, name))
            leftovers = true
        }
        if leftovers { try FileSystem.syncDirectory(directory, site: SyncSite("log.leftovers")) }
        let log = QuorumLog(
            directory: directory, segments: segments, lastTerm: lastTerm, termRuns: termRuns, segmentTargetBytes: segmentTargetBytes)
        if let last = segments.last { log.active = try SystemFile(path: last.path, flags: O_RDWR) }
        return (log, recovery)
    }

    static func corrupt(_ message: String) -> ClusterError {
        ClusterError(.clusterLogCorrupt, "quorum log is damaged before its tail: \(message)")
    }

    private static func readHeader(_ bytes: [UInt8], path: String) throws(ClusterError) -> SegmentHeader {
        switch parseHeader(bytes) {
        case .success(let header): return header
        case .failure(let problem) where problem.code == .revisionMismatch:
            throw ClusterError(.revisionMismatch, "\(path) \(problem.message)")
        case .failure(let problem): throw corrupt("\(path) \(problem.message)")
        }
    }

    /// The 32-byte header of a segment (or of a backup's `quolog.log`) whose first entry is
    /// `firstIndex`.
    public static func header(firstIndex: UInt64, format: LogRecord.Format = .current) -> [UInt8] {
        precondition(firstIndex > 0, "log indexes start at 1")
        var header = ByteWriter(capacity: segmentHeaderSize)
        for byte in segmentMagic { header.u8(byte) }
        header.u32(format.rawValue)
        header.u32(0)
        header.u64(firstIndex)
        header.u32(CRC32C.checksum(header.bytes))
        header.u32(0)
        precondition(header.bytes.count == segmentHeaderSize, "segment header size")
        return header.bytes
    }

    /// Reads a header: the index of the first entry and the format, or what is wrong (a
    /// ``ClusterError`` whose message completes "FILE ..."; `ERROR_REVISION_MISMATCH` for a
    /// format this build does not read).
    public static func parseHeader(_ bytes: [UInt8]) -> Result<SegmentHeader, ClusterError> {
        func problem(_ text: String) -> Result<SegmentHeader, ClusterError> { .failure(ClusterError(.invalidData, text)) }
        guard bytes.count >= segmentHeaderSize, Array(bytes[0..<8]) == segmentMagic else {
            return problem("has no valid log header")
        }
        var reader = ByteReader(Array(bytes[0..<segmentHeaderSize]), offset: 8)
        guard let version = try? reader.u32(), (try? reader.u32()) != nil, let firstIndex = try? reader.u64(),
            let storedCRC = try? reader.u32()
        else { return problem("has no valid log header") }
        guard CRC32C.checksum(bytes[0..<24]) == storedCRC else { return problem("header checksum mismatch") }
        guard let format = LogRecord.Format(rawValue: version) else {
            let known = LogRecord.Format.allCases.map { String($0.rawValue) }.joined(separator: " and ")
            return .failure(ClusterError(
                .revisionMismatch, "needs log format \(version); this build reads formats \(known): start it with a build that reads format \(version)"))
        }
        guard firstIndex > 0, firstIndex < UInt64.max else { return problem("starts at index \(firstIndex), which is out of range") }
        return .success(SegmentHeader(firstIndex: firstIndex, format: format))
    }

    private struct Scan {
        var validLength: Int
        var lastIndex: UInt64
        var lastTerm: UInt64
        var tornReason: String?
        var termRuns: [TermRun] = []
    }

    /// Checks every record of a segment. A valid record of the wrong index or a falling term is
    /// corruption; a checksummed record this build cannot read stops everything
    /// (``LogRecord/ReadResult/unreadable(reason:neededFormat:)``). Damage is a torn tail only in
    /// the last segment and only when no record of a *later* group follows it (format 2; in
    /// format 1, when no valid record follows at all): a later group was written only after this
    /// one was synced and acknowledged.
    private static func scanRecords(
        _ bytes: [UInt8], header: SegmentHeader, path: String, isLast: Bool
    ) throws(ClusterError) -> Scan {
        let firstIndex = header.firstIndex
        var scan = Scan(validLength: segmentHeaderSize, lastIndex: firstIndex - 1, lastTerm: 0, tornReason: nil)
        var failure: ClusterError?
        bytes.withUnsafeBytes { buffer in
            var offset = segmentHeaderSize
            while offset < buffer.count {
                switch LogRecord.read(buffer, at: offset, format: header.format) {
                case .record(let entry, _, let next):
                    if entry.index != scan.lastIndex + 1 {
                        failure = corrupt("\(path) offset \(offset) holds index \(entry.index), expected \(scan.lastIndex + 1)")
                        return
                    }
                    if entry.term < scan.lastTerm {
                        failure = corrupt("\(path) offset \(offset): term \(entry.term) is lower than \(scan.lastTerm) before it")
                        return
                    }
                    if scan.termRuns.last?.term != entry.term { scan.termRuns.append(TermRun(firstIndex: entry.index, term: entry.term)) }
                    scan.lastIndex = entry.index
                    scan.lastTerm = entry.term
                    offset = next
                    scan.validLength = next
                case .unreadable(let reason, let needed):
                    failure = unreadable(path: path, offset: offset, reason: reason, needed: needed)
                    return
                case .invalid(let reason):
                    if buffer[offset...].allSatisfy({ $0 == 0 }) {
                        // Preallocated space that no append has reached yet.
                        return
                    }
                    if !isLast {
                        failure = corrupt("\(path) offset \(offset): \(reason)")
                        return
                    }
                    if let problem = laterGroup(after: offset, in: buffer, format: header.format, damagedIndex: scan.lastIndex + 1) {
                        failure = problem.code == .revisionMismatch
                            ? problem : corrupt("\(path) offset \(offset): \(reason), yet \(problem.message)")
                        return
                    }
                    scan.tornReason = "torn tail at \(path) offset \(offset): \(reason)"
                    return
                }
            }
        }
        if let failure { throw failure }
        return scan
    }

    /// The error for a checksummed record this build cannot read.
    private static func unreadable(path: String, offset: Int, reason: String, needed: UInt32?) -> ClusterError {
        if let needed {
            return ClusterError(
                .revisionMismatch,
                "\(path) offset \(offset): \(reason); start this data directory with a build that reads log format \(needed) "
                    + "(nothing was changed)")
        }
        return corrupt("\(path) offset \(offset): \(reason) (nothing was changed)")
    }

    /// Looks past damage at `offset` for a valid record that shows the damage is not a torn last
    /// group: in format 2, a record of a group that starts after `damagedIndex` (so the damaged
    /// group was complete and acknowledged before it was written); in format 1, any valid record
    /// beyond the damage. Records of the damaged index's own group are what a torn write leaves.
    /// - Returns: nil when nothing contradicts a torn tail, else what does.
    private static func laterGroup(
        after offset: Int, in buffer: UnsafeRawBufferPointer, format: LogRecord.Format, damagedIndex: UInt64
    ) -> ClusterError? {
        var candidate = offset + 8
        while candidate < buffer.count {
            if let index = LogRecord.peekIndex(buffer, at: candidate), index >= damagedIndex {
                switch LogRecord.read(buffer, at: candidate, format: format) {
                case .record(let entry, let group, _):
                    guard let group else {
                        return ClusterError(.clusterLogCorrupt, "a valid record of index \(entry.index) follows")
                    }
                    let groupFirst = entry.index - UInt64(group.position)
                    if groupFirst > damagedIndex {
                        return ClusterError(
                            .clusterLogCorrupt, "a valid record of index \(entry.index) from a later group (starting at \(groupFirst)) follows")
                    }
                case .unreadable(let reason, let needed) where needed != nil:
                    return ClusterError(.revisionMismatch, reason)
                case .unreadable, .invalid:
                    break
                }
            }
            candidate += 8
        }
        return nil
    }

    // MARK: Appending

    /// Appends entries durably: one write and one fdatasync for the whole group.
    ///
    /// - Important: the entries count as persisted only when this returns. A failed write is cut
    ///   back off the file and thrown (`ERROR_DISK_FULL` for ENOSPC); a failed fdatasync stops
    ///   the process.
    public func append(_ entries: [LogEntry]) throws(ClusterError) {
        guard let first = entries.first else { return }
        if let lastIndex {
            precondition(first.index == lastIndex + 1, "append must continue the log: \(first.index) after \(lastIndex)")
        }
        for (offset, entry) in entries.enumerated() {
            precondition(entry.index == first.index + UInt64(offset), "appended entries must be consecutive")
            precondition(entry.term >= lastTerm, "terms never decrease along the log")
        }
        if let last = segments.last, last.lastIndex < last.firstIndex, last.format != .current || last.firstIndex != first.index {
            // An empty last segment that cannot take this group (an older format, or another
            // first index than the log's next): it holds no entry, so it goes, durably before the
            // new segment appears (directory entries need not reach the disk in the order they
            // changed: the new segment without the removal would leave an empty segment that is
            // not the last, which start-up refuses).
            try FileSystem.removeFile(last.path)
            try FileSystem.syncDirectory(directory, site: .logSuffix.directory)
            segments.removeLast()
            active = nil
        }
        if segments.isEmpty || segments[segments.count - 1].size >= segmentTargetBytes
            || segments[segments.count - 1].lastIndex + 1 != first.index
            || segments[segments.count - 1].format != .current
        {
            try startSegment(firstIndex: first.index)
        }
        var buffer: [UInt8] = []
        buffer.reserveCapacity(entries.reduce(0) { $0 + LogRecord.framedSize(payloadCount: $1.payload.count) })
        let groupSize = UInt32(entries.count)
        for (position, entry) in entries.enumerated() {
            LogRecord.append(entry, group: LogRecord.GroupSpan(position: UInt32(position), size: groupSize), to: &buffer)
        }
        let position = segments.count - 1
        let offset = segments[position].size
        if active == nil {
            // A suffix replacement that failed part-way left no segment open: reopen the last.
            active = try SystemFile(path: segments[position].path, flags: O_RDWR)
        }
        guard let file = active else { preconditionFailure("an active segment exists after startSegment") }
        do {
            try file.write(buffer, at: offset)
        } catch {
            // Cut the partial write off so the file ends at the last good record again.
            try? file.truncate(to: offset)
            throw error
        }
        file.sync(.logAppend)
        segments[position].size = offset + buffer.count
        segments[position].lastIndex = entries[entries.count - 1].index
        lastTerm = entries[entries.count - 1].term
        recordTerms(of: entries)
    }

    private func startSegment(firstIndex: UInt64) throws(ClusterError) {
        let name = String(repeating: "0", count: max(0, 20 - String(firstIndex).count)) + String(firstIndex) + ".seg"
        let path = FileSystem.join(directory, name)
        precondition(!segments.contains { $0.path == path }, "a segment for index \(firstIndex) exists already")
        let header = Self.header(firstIndex: firstIndex)
        let temporary = path + ".new"
        do {
            let file = try SystemFile(path: temporary, flags: O_WRONLY | O_CREAT | O_TRUNC)
            try file.write(header, at: 0)
            // Written zeros, not fallocate: an unwritten extent would still need a metadata
            // update on the first write into it.
            let size = (max(segmentTargetBytes, Self.segmentHeaderSize) + 4095) & ~4095
            let zeros = [UInt8](repeating: 0, count: min(Self.preallocationChunkBytes, size))
            var offset = Self.segmentHeaderSize
            while offset < size {
                let count = min(zeros.count, size - offset)
                try file.write(count == zeros.count ? zeros : Array(zeros.prefix(count)), at: offset)
                offset += count
            }
            file.sync(SyncSite.logSegment.file)
        }
        try FileSystem.renameFile(temporary, to: path, site: .logSegment)
        active = try SystemFile(path: path, flags: O_RDWR)
        segments.append(
            Segment(firstIndex: firstIndex, lastIndex: firstIndex - 1, path: path, size: Self.segmentHeaderSize, format: .current))
    }

    // MARK: Reading

    /// Calls `body` with the entries from `start` through `end`, in order, one segment at a time.
    /// - Throws: `ERROR_CLUSTERLOG_CORRUPT` when a record that was valid at open no longer is.
    public func readEntries(
        from start: UInt64, through end: UInt64, _ body: ([LogEntry]) throws(ClusterError) -> Void
    ) throws(ClusterError) {
        guard start <= end else { return }
        for segment in segments where segment.lastIndex >= start && segment.firstIndex <= end {
            let file = try SystemFile(path: segment.path, flags: O_RDONLY)
            let bytes = try file.read(count: segment.size, at: 0)
            var batch: [LogEntry] = []
            var failure: ClusterError?
            bytes.withUnsafeBytes { buffer in
                var offset = Self.segmentHeaderSize
                while offset < buffer.count {
                    guard case .record(let entry, _, let next) = LogRecord.read(buffer, at: offset, format: segment.format) else {
                        failure = Self.corrupt("\(segment.path) offset \(offset) changed after the log was opened")
                        return
                    }
                    if entry.index >= start && entry.index <= end { batch.append(entry) }
                    offset = next
                }
            }
            if let failure { throw failure }
            try body(batch)
        }
    }

    /// Closes the active segment; the log must not be used afterwards.
    public func close() { active = nil }

    // MARK: Truncation

    /// Deletes every segment whose entries all lie at or before `index` (a cluster checkpoint
    /// covers them), except the last segment, which stays to receive appends.
    /// - Returns: the number of segments removed.
    @discardableResult
    public func removeSegments(through index: UInt64) throws(ClusterError) -> Int {
        var removed = 0
        while segments.count > 1, segments[0].lastIndex <= index {
            try FileSystem.removeFile(segments[0].path)
            segments.removeFirst()
            removed += 1
        }
        if removed > 0 { try FileSystem.syncDirectory(directory, site: .logTruncation) }
        if let first = firstIndex {
            // Runs wholly before the first entry held are dropped; the one covering it stays.
            while termRuns.count > 1, termRuns[1].firstIndex <= first { termRuns.removeFirst() }
        }
        return removed
    }

    /// Removes the entries from `index` on, so that a leader's entries can replace a conflicting
    /// suffix. Crash-safe: later segments go first, newest first, each removal synced on its own
    /// (directory entries need not reach the disk in the order they changed), then the segment
    /// holding `index` is cut before its record and synced. A power loss at any point leaves a
    /// prefix of the old log — never a gap, and never old entries after new ones, since appends
    /// come only after this returns. Dropping entries is safe here: Raft replaces only entries
    /// that are not committed, and every entry after one that is not committed is not either.
    /// - Throws: I/O errors (the log is then as far cut as the failure let it get, still a
    ///   prefix of the old one).
    public func truncateSuffix(from index: UInt64) throws(ClusterError) {
        guard let last = lastIndex, index <= last else { return }
        precondition(index >= (firstIndex ?? index), "the suffix starts within the log")
        precondition(index > 0, "log indexes start at 1")
        while let newest = segments.last, newest.firstIndex > index || (newest.firstIndex == index && segments.count > 1) {
            try FileSystem.removeFile(newest.path)
            segments.removeLast()
            active = nil
            try FileSystem.syncDirectory(directory, site: .logSuffix.directory)
        }
        let position = segments.count - 1
        let segment = segments[position]
        let cut = try offset(of: index, in: segment)
        let file = try SystemFile(path: segment.path, flags: O_RDWR)
        try file.truncate(to: cut)
        file.sync(.logSuffix.file)
        active = file
        segments[position].size = cut
        segments[position].lastIndex = index - 1
        while let run = termRuns.last, run.firstIndex >= index { termRuns.removeLast() }
        lastTerm = index > segments[0].firstIndex ? (termRuns.last?.term ?? 0) : 0
    }

    /// The file offset of the record of `index` in `segment` (its size when `index` follows it).
    private func offset(of index: UInt64, in segment: Segment) throws(ClusterError) -> Int {
        let file = try SystemFile(path: segment.path, flags: O_RDONLY)
        let bytes = try file.read(count: segment.size, at: 0)
        var found: Int?
        bytes.withUnsafeBytes { buffer in
            var offset = Self.segmentHeaderSize
            while offset < buffer.count {
                guard case .record(let entry, _, let next) = LogRecord.read(buffer, at: offset, format: segment.format) else { return }
                if entry.index == index {
                    found = offset
                    return
                }
                offset = next
            }
            if segment.lastIndex + 1 == index { found = offset }
        }
        guard let found else { throw Self.corrupt("\(segment.path): record \(index) changed after the log was opened") }
        return found
    }
}
