/// Pieces of JSON string escapes that both readers share: ``FastJSON`` on the hot path and
/// ``JSONDocument`` with its error messages.
enum JSONEscapes {
    /// The value of four hex digits at `position` (a `\uXXXX` escape), nil when they are not.
    @inline(__always)
    static func hex4<Bytes: RandomAccessCollection>(_ bytes: Bytes, at position: Int) -> UInt16?
    where Bytes.Element == UInt8, Bytes.Index == Int {
        guard position >= bytes.startIndex, bytes.endIndex - position >= 4 else { return nil }
        var value: UInt16 = 0
        for index in position..<position + 4 {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case 0x30...0x39: digit = byte - 0x30
            case 0x61...0x66: digit = byte - 0x61 + 10
            case 0x41...0x46: digit = byte - 0x41 + 10
            default: return nil
            }
            value = value << 4 | UInt16(digit)
        }
        return value
    }
}
