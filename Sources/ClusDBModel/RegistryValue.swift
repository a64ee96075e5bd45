/// A typed registry value.
///
/// Each case holds its payload in Swift form. Two byte forms exist:
/// - ``storedBytes``: ClusDB's own compact form, used in the quorum log and the hive (strings as
///   UTF-8; see `docs/FORMATS.md`).
/// - ``win32Bytes``: the Win32 form the C library hands out (UTF-16LE with terminating NULs).
/// Both round-trip, and both decoders refuse malformed bytes rather than guess.
public enum RegistryValue: Sendable, Hashable {
    /// `REG_NONE`.
    case none([UInt8])
    /// `REG_SZ`; must not contain U+0000.
    case string(String)
    /// `REG_EXPAND_SZ`; must not contain U+0000.
    case expandString(String)
    /// `REG_BINARY`.
    case binary([UInt8])
    /// `REG_DWORD`.
    case dword(UInt32)
    /// `REG_MULTI_SZ`; each string non-empty and without U+0000 (an empty one would end the list).
    case multiString([String])
    /// `REG_QWORD`.
    case qword(UInt64)

    /// The value's type.
    public var type: ValueType {
        switch self {
        case .none: return .none
        case .string: return .string
        case .expandString: return .expandString
        case .binary: return .binary
        case .dword: return .dword
        case .multiString: return .multiString
        case .qword: return .qword
        }
    }

    /// The size of the Win32 form in bytes (what `ClusterRegQueryValue` reports).
    public var win32Size: Int {
        switch self {
        case .none(let bytes), .binary(let bytes): return bytes.count
        case .string(let text), .expandString(let text): return (text.utf16.count + 1) * 2
        case .dword: return 4
        case .qword: return 8
        case .multiString(let list):
            return (list.reduce(0) { $0 + $1.utf16.count + 1 } + 1) * 2
        }
    }

    /// Checks the payload rules and the size limit.
    /// - Throws: `ERROR_INVALID_PARAMETER` for a NUL inside a string, an empty string in a
    ///   `REG_MULTI_SZ`, or a Win32 size above ``Limits/valueDataMaxBytes``.
    public func validate() throws(ClusterError) {
        switch self {
        case .string(let text), .expandString(let text):
            if Self.containsNUL(text) {
                throw ClusterError(.invalidParameter, "\(type.name) data must not contain a NUL character")
            }
        case .multiString(let list):
            for (index, item) in list.enumerated() {
                if item.isEmpty {
                    throw ClusterError(.invalidParameter, "REG_MULTI_SZ string \(index) is empty; it would end the list")
                }
                if Self.containsNUL(item) {
                    throw ClusterError(.invalidParameter, "REG_MULTI_SZ string \(index) contains a NUL character")
                }
            }
        case .none, .binary, .dword, .qword:
            break
        }
        let size = win32Size
        if size > Limits.valueDataMaxBytes {
            throw ClusterError(
                .invalidParameter, "value data is \(size) bytes; the limit is \(Limits.valueDataMaxBytes)")
        }
    }

    /// Whether `text` holds U+0000. UTF-8 encodes it as the byte 0, which no other scalar uses,
    /// so a scan of the contiguous UTF-8 bytes answers it (the scalar view took 3% of an event
    /// loop at 64 clients: every write's data is checked).
    static func containsNUL(_ text: String) -> Bool {
        text.utf8.withContiguousStorageIfAvailable { $0.contains(0) } ?? text.utf8.contains(0)
    }

    // MARK: Stored form

    /// The compact stored form: UTF-8 for strings, each `REG_MULTI_SZ` string followed by one
    /// 0x00, little-endian numbers, raw bytes for `REG_BINARY` and `REG_NONE`.
    public var storedBytes: [UInt8] {
        switch self {
        case .none(let bytes), .binary(let bytes): return bytes
        case .string(let text), .expandString(let text): return Array(text.utf8)
        case .dword(let number): return withUnsafeBytes(of: number.littleEndian) { Array($0) }
        case .qword(let number): return withUnsafeBytes(of: number.littleEndian) { Array($0) }
        case .multiString(let list):
            var bytes: [UInt8] = []
            bytes.reserveCapacity(list.reduce(0) { $0 + $1.utf8.count + 1 })
            for item in list {
                bytes.append(contentsOf: item.utf8)
                bytes.append(0)
            }
            return bytes
        }
    }

    /// Decodes the stored form and checks the payload rules.
    /// - Throws: `ERROR_INVALID_DATA` for bytes that are not a valid stored form of `type`.
    public init(type: ValueType, storedBytes bytes: some BidirectionalCollection<UInt8>) throws(ClusterError) {
        switch type {
        case .none: self = .none(Array(bytes))
        case .binary: self = .binary(Array(bytes))
        case .string, .expandString:
            guard let text = String(validating: bytes, as: UTF8.self) else {
                throw ClusterError(.invalidData, "\(type.name) data is not valid UTF-8")
            }
            self = type == .string ? .string(text) : .expandString(text)
        case .dword:
            guard bytes.count == 4 else {
                throw ClusterError(.invalidData, "REG_DWORD data is \(bytes.count) bytes, not 4")
            }
            var number: UInt32 = 0
            for (shift, byte) in bytes.enumerated() { number |= UInt32(byte) << (8 * UInt32(shift)) }
            self = .dword(number)
        case .qword:
            guard bytes.count == 8 else {
                throw ClusterError(.invalidData, "REG_QWORD data is \(bytes.count) bytes, not 8")
            }
            var number: UInt64 = 0
            for (shift, byte) in bytes.enumerated() { number |= UInt64(byte) << (8 * UInt64(shift)) }
            self = .qword(number)
        case .multiString:
            if bytes.isEmpty {
                self = .multiString([])
                break
            }
            guard bytes.last == 0 else {
                throw ClusterError(.invalidData, "REG_MULTI_SZ data does not end with a NUL")
            }
            var list: [String] = []
            for part in bytes.dropLast().split(separator: 0, omittingEmptySubsequences: false) {
                guard !part.isEmpty, let text = String(validating: part, as: UTF8.self) else {
                    throw ClusterError(.invalidData, "REG_MULTI_SZ data holds an empty or non-UTF-8 string")
                }
                list.append(text)
            }
            self = .multiString(list)
        }
        do throws(ClusterError) {
            try validate()
        } catch {
            throw ClusterError(.invalidData, error.message)
        }
    }

    // MARK: Win32 form

    /// The Win32 form: UTF-16LE strings with their terminating NUL(s), little-endian numbers.
    public var win32Bytes: [UInt8] {
        func utf16LE(_ units: some Sequence<UInt16>, into bytes: inout [UInt8]) {
            for unit in units {
                bytes.append(UInt8(unit & 0xFF))
                bytes.append(UInt8(unit >> 8))
            }
        }
        switch self {
        case .none(let bytes), .binary(let bytes): return bytes
        case .dword, .qword: return storedBytes
        case .string(let text), .expandString(let text):
            var bytes: [UInt8] = []
            bytes.reserveCapacity(win32Size)
            utf16LE(text.utf16, into: &bytes)
            bytes.append(contentsOf: [0, 0])
            return bytes
        case .multiString(let list):
            var bytes: [UInt8] = []
            bytes.reserveCapacity(win32Size)
            for item in list {
                utf16LE(item.utf16, into: &bytes)
                bytes.append(contentsOf: [0, 0])
            }
            bytes.append(contentsOf: [0, 0])
            return bytes
        }
    }

    /// Decodes the Win32 form, as `ClusterRegSetValue` receives it.
    ///
    /// Strings must have an even length, valid UTF-16 and a terminating NUL (an `lpData` without
    /// one is refused rather than silently extended); `REG_MULTI_SZ` must end with an empty string.
    /// - Throws: `ERROR_INVALID_PARAMETER` for malformed data.
    public init(type: ValueType, win32Bytes bytes: [UInt8]) throws(ClusterError) {
        func units(_ bytes: ArraySlice<UInt8>) throws(ClusterError) -> [UInt16] {
            guard bytes.count % 2 == 0 else {
                throw ClusterError(.invalidParameter, "\(type.name) data has an odd number of bytes")
            }
            var result: [UInt16] = []
            result.reserveCapacity(bytes.count / 2)
            var index = bytes.startIndex
            while index < bytes.endIndex {
                result.append(UInt16(bytes[index]) | UInt16(bytes[index + 1]) << 8)
                index += 2
            }
            return result
        }
        func decode(_ units: ArraySlice<UInt16>) throws(ClusterError) -> String {
            guard let text = String(validating: units, as: UTF16.self) else {
                throw ClusterError(.invalidParameter, "\(type.name) data is not valid UTF-16")
            }
            return text
        }
        switch type {
        case .none: self = .none(bytes)
        case .binary: self = .binary(bytes)
        case .dword, .qword:
            let expected = type == .dword ? 4 : 8
            guard bytes.count == expected else {
                throw ClusterError(.invalidParameter, "\(type.name) data is \(bytes.count) bytes, not \(expected)")
            }
            do {
                self = try RegistryValue(type: type, storedBytes: bytes)
            } catch {
                throw ClusterError(.invalidParameter, error.message)
            }
        case .string, .expandString:
            let all = try units(bytes[...])
            guard let last = all.last, last == 0 else {
                throw ClusterError(.invalidParameter, "\(type.name) data does not end with a NUL character")
            }
            let text = try decode(all.dropLast())
            self = type == .string ? .string(text) : .expandString(text)
        case .multiString:
            // `a\0b\0\0`: every string ends with a NUL and one more NUL closes the list.
            // `\0` and `\0\0` are the empty list.
            let all = try units(bytes[...])
            var list: [String] = []
            if all != [0] && all != [0, 0] {
                guard all.count >= 3, all[all.count - 1] == 0, all[all.count - 2] == 0 else {
                    throw ClusterError(.invalidParameter, "REG_MULTI_SZ data does not end with two NUL characters")
                }
                for part in all.dropLast(2).split(separator: 0, omittingEmptySubsequences: false) {
                    if part.isEmpty {
                        throw ClusterError(.invalidParameter, "REG_MULTI_SZ data holds an empty string")
                    }
                    list.append(try decode(part))
                }
            }
            self = .multiString(list)
        }
        try validate()
    }
}
