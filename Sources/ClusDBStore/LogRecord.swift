import ClusDBModel

/// The on-disk framing of one log entry (see `docs/FORMATS.md`, "Quorum log record"):
///
/// ```
/// u32 bodyLength | u32 crc32c(body) | body | zero padding to a multiple of 8
/// format 2 body = u64 index | u64 term | u8 kind | u8 recordFormat | u16 0
///                 | u32 positionInGroup | u32 groupSize | payload
/// format 1 body = u64 index | u64 term | u8 kind | payload          (read, never written)
/// ```
///
/// Records are 8-byte aligned so that a recovery scan past damage only needs to look at aligned
/// offsets. Format 2 records say which group commit wrote them (the group's first index is
/// `index - positionInGroup`), so recovery can tell a torn last group — damage followed only by
/// records of the same group, which was never acknowledged — from damage to acknowledged data
/// (a later group follows), and say the format a record needs (``Format``).
public enum LogRecord {
    /// A record format: what a segment's header announces and how its bodies are laid out.
    public enum Format: UInt32, Sendable, CaseIterable {
        /// The first format: no group span, no per-record format (read only).
        case v1 = 1
        /// Group spans and a per-record format byte.
        case v2 = 2

        /// The format this build writes.
        public static let current = Format.v2

        /// Bytes of the body before the payload.
        public var bodyPrefixSize: Int {
            switch self {
            case .v1: return 17
            case .v2: return 28
            }
        }
    }

    /// The group commit a format-2 record was written in.
    public struct GroupSpan: Sendable, Equatable {
        /// The record's position in its group, from 0.
        public var position: UInt32
        /// Records in the group.
        public var size: UInt32

        /// A span; `position` must lie within `size`.
        public init(position: UInt32, size: UInt32) {
            precondition(position < size, "a record lies inside its group")
            self.position = position
            self.size = size
        }
    }

    /// The highest per-record format this build reads: 3 is format 2's layout with entry kind 3
    /// (a membership change). A record announces the format it needs, so a log without
    /// membership changes stays readable by a build that reads format 2.
    public static let recordFormatMax: UInt32 = 3

    /// Bytes before the body: length and checksum.
    public static let headerSize = 8
    /// The smallest body prefix of any format (a shorter length field is damage).
    public static let bodyPrefixMinSize = Format.v1.bodyPrefixSize
    /// Largest body accepted when reading (a larger length field is damage, not a record).
    public static let bodyMaxSize = Limits.commandEncodedMaxBytes + Format.v2.bodyPrefixSize

    /// The framed size of a body of `bodyLength` bytes.
    public static func framedSize(bodyLength: Int) -> Int {
        (headerSize + bodyLength + 7) & ~7
    }

    /// The framed size of an entry with `payloadCount` payload bytes in the current format.
    public static func framedSize(payloadCount: Int) -> Int {
        framedSize(bodyLength: Format.current.bodyPrefixSize + payloadCount)
    }

    /// Appends the framed record of `entry`, written as part of `group`, to `out` (current format).
    public static func append(_ entry: LogEntry, group: GroupSpan, to out: inout [UInt8]) {
        precondition(entry.payload.count <= Limits.commandEncodedMaxBytes, "payload over the record limit")
        let start = out.count
        let bodyLength = Format.current.bodyPrefixSize + entry.payload.count
        out.append(contentsOf: repeatElement(0, count: headerSize))
        withUnsafeBytes(of: entry.index.littleEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: entry.term.littleEndian) { out.append(contentsOf: $0) }
        out.append(entry.kind.rawValue)
        out.append(entry.kind.recordFormat)
        out.append(contentsOf: [0, 0])
        withUnsafeBytes(of: group.position.littleEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: group.size.littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: entry.payload)
        let crc = out.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[(start + headerSize)...])) }
        store(UInt32(bodyLength), into: &out, at: start)
        store(crc, into: &out, at: start + 4)
        let padded = framedSize(bodyLength: bodyLength)
        out.append(contentsOf: repeatElement(0, count: padded - (out.count - start)))
        precondition(out.count - start == padded, "record framing is not aligned")
    }

    private static func store(_ value: UInt32, into out: inout [UInt8], at offset: Int) {
        out[offset] = UInt8(value & 0xFF)
        out[offset + 1] = UInt8((value >> 8) & 0xFF)
        out[offset + 2] = UInt8((value >> 16) & 0xFF)
        out[offset + 3] = UInt8(value >> 24)
    }

    /// What reading at an offset found.
    public enum ReadResult: Equatable {
        /// A valid record, the group it was written in (nil in format 1) and the offset just
        /// past it (padding included).
        case record(LogEntry, group: GroupSpan?, next: Int)
        /// Not a valid record: too short, a bad length or a bad checksum — what a torn write
        /// leaves.
        case invalid(reason: String)
        /// A record whose checksum is right but which this build cannot read: written by a newer
        /// build (``neededFormat`` says which format), or nonsense that no build writes. Never
        /// a torn write: recovery stops and changes nothing.
        case unreadable(reason: String, neededFormat: UInt32?)
    }

    /// Reads the record at `offset` of `bytes`, in a segment of `format`.
    public static func read(_ bytes: UnsafeRawBufferPointer, at offset: Int, format: Format) -> ReadResult {
        precondition(offset >= 0 && offset % 8 == 0, "records start at aligned offsets")
        guard bytes.count - offset >= headerSize else { return .invalid(reason: "record header cut short") }
        let length = Int(bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self).littleEndian)
        let storedCRC = bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self).littleEndian
        guard length >= bodyPrefixMinSize, length <= bodyMaxSize else {
            return .invalid(reason: "record length \(length) is out of range")
        }
        // The padding is written with the record in one write, so a record without it was torn.
        let framed = framedSize(bodyLength: length)
        guard bytes.count - offset >= framed else { return .invalid(reason: "record cut short") }
        let body = UnsafeRawBufferPointer(rebasing: bytes[(offset + headerSize)..<(offset + headerSize + length)])
        guard CRC32C.checksum(body) == storedCRC else { return .invalid(reason: "record checksum mismatch") }
        let index = body.loadUnaligned(fromByteOffset: 0, as: UInt64.self).littleEndian
        let term = body.loadUnaligned(fromByteOffset: 8, as: UInt64.self).littleEndian
        var group: GroupSpan?
        if format != .v1 {
            guard length >= Format.v2.bodyPrefixSize else {
                return .unreadable(reason: "a checksummed record of \(length) bytes is shorter than format 2 allows", neededFormat: nil)
            }
            let recordFormat = UInt32(body[17])
            guard recordFormat <= recordFormatMax else {
                return .unreadable(
                    reason: "record \(index) needs log format \(recordFormat); this build reads formats up to \(recordFormatMax)",
                    neededFormat: recordFormat)
            }
            let position = body.loadUnaligned(fromByteOffset: 20, as: UInt32.self).littleEndian
            let size = body.loadUnaligned(fromByteOffset: 24, as: UInt32.self).littleEndian
            let kindFormat = LogEntry.Kind(rawValue: body[16]).map { UInt32($0.recordFormat) }
            guard recordFormat == (kindFormat ?? recordFormat), recordFormat >= format.rawValue, position < size, UInt64(position) < index else {
                return .unreadable(
                    reason: "record \(index) has format \(recordFormat) and group position \(position) of \(size), which no build writes",
                    neededFormat: nil)
            }
            group = GroupSpan(position: position, size: size)
        }
        // Index UInt64.max is never written (the log would end there); refusing it keeps every
        // `index + 1` in the readers from overflowing on a crafted file.
        guard index > 0, index < UInt64.max else {
            return .unreadable(reason: "a checksummed record has index \(index), which is out of range", neededFormat: nil)
        }
        guard let kind = LogEntry.Kind(rawValue: body[16]), format != .v1 || kind != .configurationChange else {
            return .unreadable(
                reason: "record \(index) has entry kind \(body[16]), which log format \(format.rawValue) does not define",
                neededFormat: nil)
        }
        // The body limit above allows for the longest prefix; a format-1 record could carry a few
        // bytes more payload than any build writes, which re-encoding (a backup) would trap on.
        guard length - format.bodyPrefixSize <= Limits.commandEncodedMaxBytes else {
            return .unreadable(reason: "record \(index) holds more payload than any build writes", neededFormat: nil)
        }
        let entry = LogEntry(index: index, term: term, kind: kind, payload: Array(body[format.bodyPrefixSize...]))
        return .record(entry, group: group, next: offset + framed)
    }

    /// Reads only the index field of a record candidate at `offset` if its framing is plausible;
    /// used to skip candidates cheaply before checking a checksum.
    public static func peekIndex(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> UInt64? {
        guard bytes.count - offset >= headerSize + bodyPrefixMinSize else { return nil }
        let length = Int(bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self).littleEndian)
        guard length >= bodyPrefixMinSize, length <= bodyMaxSize, bytes.count - offset >= framedSize(bodyLength: length) else {
            return nil
        }
        return bytes.loadUnaligned(fromByteOffset: offset + headerSize, as: UInt64.self).littleEndian
    }
}
