import ClusDBModel

/// The on-disk framing of one log entry (see `docs/FORMATS.md`, "Quorum log record"):
///
/// ```
/// u32 bodyLength | u32 crc32c(body) | body | zero padding to a multiple of 8
/// body = u64 index | u64 term | u8 kind | payload
/// ```
///
/// Records are 8-byte aligned so that a recovery scan past damage only needs to look at aligned
/// offsets.
public enum LogRecord {
    /// Bytes before the body: length and checksum.
    public static let headerSize = 8
    /// Bytes of the body before the payload: index, term, kind.
    public static let bodyPrefixSize = 17
    /// Largest body accepted when reading (a larger length field is damage, not a record).
    public static let bodyMaxSize = Limits.commandEncodedMaxBytes + bodyPrefixSize

    /// The framed size of an entry with `payloadCount` payload bytes.
    public static func framedSize(payloadCount: Int) -> Int {
        let raw = headerSize + bodyPrefixSize + payloadCount
        return (raw + 7) & ~7
    }

    /// Appends the framed record of `entry` to `out`.
    public static func append(_ entry: LogEntry, to out: inout [UInt8]) {
        precondition(entry.payload.count <= Limits.commandEncodedMaxBytes, "payload over the record limit")
        let start = out.count
        let bodyLength = bodyPrefixSize + entry.payload.count
        out.append(contentsOf: repeatElement(0, count: headerSize))
        withUnsafeBytes(of: entry.index.littleEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: entry.term.littleEndian) { out.append(contentsOf: $0) }
        out.append(entry.kind.rawValue)
        out.append(contentsOf: entry.payload)
        let crc = out.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[(start + headerSize)...])) }
        store(UInt32(bodyLength), into: &out, at: start)
        store(crc, into: &out, at: start + 4)
        let padded = framedSize(payloadCount: entry.payload.count)
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
        /// A valid record and the offset just past it (padding included).
        case record(LogEntry, next: Int)
        /// Not a valid record: too short, a bad length, a bad checksum or a bad kind.
        case invalid(reason: String)
    }

    /// Reads the record at `offset` of `bytes`.
    public static func read(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> ReadResult {
        precondition(offset >= 0 && offset % 8 == 0, "records start at aligned offsets")
        guard bytes.count - offset >= headerSize else { return .invalid(reason: "record header cut short") }
        let length = Int(bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self).littleEndian)
        let storedCRC = bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self).littleEndian
        guard length >= bodyPrefixSize, length <= bodyMaxSize else {
            return .invalid(reason: "record length \(length) is out of range")
        }
        // The padding is written with the record in one write, so a record without it was torn.
        let framed = framedSize(payloadCount: length - bodyPrefixSize)
        guard bytes.count - offset >= framed else { return .invalid(reason: "record cut short") }
        let body = UnsafeRawBufferPointer(rebasing: bytes[(offset + headerSize)..<(offset + headerSize + length)])
        guard CRC32C.checksum(body) == storedCRC else { return .invalid(reason: "record checksum mismatch") }
        let index = body.loadUnaligned(fromByteOffset: 0, as: UInt64.self).littleEndian
        let term = body.loadUnaligned(fromByteOffset: 8, as: UInt64.self).littleEndian
        guard let kind = LogEntry.Kind(rawValue: body[16]), index > 0 else {
            return .invalid(reason: "record has an unknown kind or index 0")
        }
        let entry = LogEntry(index: index, term: term, kind: kind, payload: Array(body[bodyPrefixSize...]))
        return .record(entry, next: offset + framed)
    }

    /// Reads only the index field of a record candidate at `offset` if its framing is plausible;
    /// used to skip candidates cheaply before checking a checksum.
    public static func peekIndex(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> UInt64? {
        guard bytes.count - offset >= headerSize + bodyPrefixSize else { return nil }
        let length = Int(bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self).littleEndian)
        guard length >= bodyPrefixSize, length <= bodyMaxSize, bytes.count - offset >= framedSize(payloadCount: length - bodyPrefixSize) else {
            return nil
        }
        return bytes.loadUnaligned(fromByteOffset: offset + headerSize, as: UInt64.self).littleEndian
    }
}
