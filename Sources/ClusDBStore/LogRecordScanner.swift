import ClusDBModel

/// Reads ``LogRecord``s one after another from a file, through a bounded window, so that a log of
/// any size is read in constant memory (plus the largest record).
///
/// It never trusts a length field beyond ``LogRecord/bodyMaxSize``, so damaged input costs at most
/// one window of that size and cannot make it read without end.
public struct LogRecordScanner {
    /// What the next read found.
    public enum Step {
        /// A valid record: the entry and its framed bytes (padding included).
        case record(LogEntry, framed: ArraySlice<UInt8>)
        /// The file ends exactly here.
        case endOfFile
        /// No valid record at `offset`, or one this build cannot read; `reason` says why.
        case invalid(offset: Int, reason: String)
    }

    /// Bytes read from the file per refill.
    public static let windowBytes = 8 << 20

    private let file: SystemFile
    /// The record format of the file.
    public let format: LogRecord.Format
    private let fileSize: Int
    private var buffer: [UInt8] = []
    /// File offset of `buffer[0]`.
    private var bufferStart: Int
    /// Read position within `buffer`.
    private var position = 0

    /// Starts reading `file`, whose records are in `format`, at `offset` (which must be 8-byte
    /// aligned).
    public init(file: SystemFile, offset: Int, format: LogRecord.Format) throws(ClusterError) {
        precondition(offset >= 0 && offset % 8 == 0, "records start at aligned offsets")
        self.file = file
        self.format = format
        fileSize = try file.size()
        bufferStart = offset
    }

    /// The file offset of the next record.
    public var offset: Int { bufferStart + position }

    /// Reads the next record.
    public mutating func next() throws(ClusterError) -> Step {
        if offset >= fileSize { return .endOfFile }
        guard try ensure(LogRecord.headerSize) else { return .invalid(offset: offset, reason: "record header cut short") }
        let length = Int(UInt32(buffer[position]) | UInt32(buffer[position + 1]) << 8 | UInt32(buffer[position + 2]) << 16
            | UInt32(buffer[position + 3]) << 24)
        if length >= LogRecord.bodyPrefixMinSize && length <= LogRecord.bodyMaxSize {
            // Make the whole framed record visible before LogRecord.read checks it.
            _ = try ensure(LogRecord.framedSize(bodyLength: length))
        }
        let start = position
        let result = buffer.withUnsafeBytes { bytes in
            LogRecord.read(UnsafeRawBufferPointer(rebasing: bytes[start...]), at: 0, format: format)
        }
        switch result {
        case .record(let entry, _, let next):
            position += next
            return .record(entry, framed: buffer[start..<start + next])
        case .invalid(let reason), .unreadable(let reason, _):
            return .invalid(offset: offset, reason: reason)
        }
    }

    /// Makes at least `count` bytes from `position` available when the file has them.
    /// - Returns: false when the file ends first.
    private mutating func ensure(_ count: Int) throws(ClusterError) -> Bool {
        if buffer.count - position >= count { return true }
        // Drop what was consumed, then read a window (or the rest of the record) more.
        bufferStart += position
        buffer.removeFirst(position)
        position = 0
        let wanted = max(count - buffer.count, Self.windowBytes)
        let more = try file.read(count: min(wanted, max(0, fileSize - bufferStart - buffer.count)), at: bufferStart + buffer.count)
        buffer.append(contentsOf: more)
        return buffer.count >= count
    }
}
