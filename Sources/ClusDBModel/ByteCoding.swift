/// Appends little-endian integers, length-prefixed strings and bytes to a buffer: the building
/// block of every binary format in `docs/FORMATS.md`.
public struct ByteWriter: Sendable {
    /// The bytes written so far.
    public private(set) var bytes: [UInt8]

    /// Creates an empty writer.
    public init(capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    /// Appends one byte.
    public mutating func u8(_ value: UInt8) { bytes.append(value) }

    /// Appends a 32-bit little-endian integer.
    public mutating func u32(_ value: UInt32) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// Appends a 64-bit little-endian integer.
    public mutating func u64(_ value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// Appends a u32 byte count and the bytes.
    public mutating func lengthPrefixed(_ data: some Collection<UInt8>) {
        precondition(data.count <= Int(UInt32.max), "a length-prefixed field is limited to 4 GiB")
        u32(UInt32(data.count))
        bytes.append(contentsOf: data)
    }

    /// Appends a string as a u32 byte count and its UTF-8 bytes.
    public mutating func string(_ text: String) { lengthPrefixed(text.utf8) }
}

/// Reads what ``ByteWriter`` wrote, checking every bound: malformed input throws
/// `ERROR_INVALID_DATA` and never traps.
public struct ByteReader {
    private let bytes: [UInt8]
    /// The read position.
    public private(set) var offset: Int

    /// Reads `bytes` from `offset`.
    public init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    /// True when every byte has been read.
    public var isAtEnd: Bool { offset == bytes.count }

    private mutating func take(_ count: Int) throws(ClusterError) -> ArraySlice<UInt8> {
        guard count >= 0, count <= bytes.count - offset else {
            throw ClusterError(.invalidData, "record ends early: needs \(count) bytes at offset \(offset) of \(bytes.count)")
        }
        defer { offset += count }
        return bytes[offset..<offset + count]
    }

    /// Reads one byte.
    public mutating func u8() throws(ClusterError) -> UInt8 {
        let slice = try take(1)
        return slice[slice.startIndex]
    }

    /// Reads a 32-bit little-endian integer.
    public mutating func u32() throws(ClusterError) -> UInt32 {
        var value: UInt32 = 0
        for (shift, byte) in try take(4).enumerated() { value |= UInt32(byte) << (8 * UInt32(shift)) }
        return value
    }

    /// Reads a 64-bit little-endian integer.
    public mutating func u64() throws(ClusterError) -> UInt64 {
        var value: UInt64 = 0
        for (shift, byte) in try take(8).enumerated() { value |= UInt64(byte) << (8 * UInt64(shift)) }
        return value
    }

    /// Reads a u32 byte count and that many bytes.
    public mutating func lengthPrefixed() throws(ClusterError) -> ArraySlice<UInt8> {
        try take(Int(try u32()))
    }

    /// Reads a u32 byte count and that many bytes of valid UTF-8.
    public mutating func string() throws(ClusterError) -> String {
        let raw = try lengthPrefixed()
        guard let text = String(validating: raw, as: UTF8.self) else {
            throw ClusterError(.invalidData, "a string field is not valid UTF-8")
        }
        return text
    }

    /// Throws unless every byte has been read.
    public func expectEnd() throws(ClusterError) {
        if !isAtEnd {
            throw ClusterError(.invalidData, "\(bytes.count - offset) unexpected bytes after the record")
        }
    }
}
