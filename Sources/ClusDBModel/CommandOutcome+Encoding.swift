/// The stored form of a ``CommandOutcome``, kept with a client session so that a retried write is
/// answered with its first outcome (docs/FORMATS.md, "Client sessions").
extension CommandOutcome {
    /// A tag byte (0 done, 1 key created, 2 key opened, 3 failed); a failure adds its u32 code,
    /// its message (u32 length + UTF-8), a flag byte and, when set, the failed command's index as
    /// a u64 (two's complement, for -1).
    public func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: 16)
        switch self {
        case .done: writer.u8(0)
        case .keyCreated: writer.u8(1)
        case .keyOpened: writer.u8(2)
        case .failed(let error):
            writer.u8(3)
            writer.u32(error.code.rawValue)
            writer.string(error.message)
            if let failed = error.failedCommand {
                writer.u8(1)
                writer.u64(UInt64(bitPattern: Int64(failed)))
            } else {
                writer.u8(0)
            }
        }
        return writer.bytes
    }

    /// Decodes ``encoded()``.
    /// - Throws: `ERROR_INVALID_DATA` for other bytes.
    public init(encoded bytes: [UInt8]) throws(ClusterError) {
        var reader = ByteReader(bytes)
        switch try reader.u8() {
        case 0: self = .done
        case 1: self = .keyCreated
        case 2: self = .keyOpened
        case 3:
            let code = Win32Error(rawValue: try reader.u32())
            let message = try reader.string()
            var failed: Int?
            switch try reader.u8() {
            case 0: break
            case 1: failed = Int(Int64(bitPattern: try reader.u64()))
            default: throw ClusterError(.invalidData, "a stored outcome's flag byte is not 0 or 1")
            }
            self = .failed(ClusterError(code, message, failedCommand: failed))
        default:
            throw ClusterError(.invalidData, "a stored outcome's tag is not 0 to 3")
        }
        try reader.expectEnd()
    }
}
