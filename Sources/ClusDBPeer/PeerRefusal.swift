import ClusDBModel

/// Why a node refuses a peer connection, sent in a ``PeerFrame/Kind/refusal`` frame before it
/// closes: the Win32 code (u32, little-endian) and the message (a u32 byte count and UTF-8), so
/// the refused side can log the same line the refusing side logged.
public enum PeerRefusal {
    /// Longest message sent, in bytes; longer ones are cut at a character boundary.
    public static let messageBytesMax = 4_096

    /// The frame body for `error`.
    public static func encode(_ error: ClusterError) -> [UInt8] {
        var message = error.message
        while message.utf8.count > messageBytesMax { message.removeLast() }
        var writer = ByteWriter()
        writer.u32(error.code.rawValue)
        writer.string(message)
        return writer.bytes
    }

    /// The error a refusal frame's body carries.
    /// - Throws: `ERROR_INVALID_DATA` for a malformed body.
    public static func decode(_ body: [UInt8]) throws(ClusterError) -> ClusterError {
        var reader = ByteReader(body)
        let code = try reader.u32()
        let message = try reader.string()
        try reader.expectEnd()
        guard message.utf8.count <= messageBytesMax else {
            throw ClusterError(.invalidData, "a peer refusal's message is over \(messageBytesMax) bytes")
        }
        return ClusterError(Win32Error(rawValue: code), message)
    }
}
