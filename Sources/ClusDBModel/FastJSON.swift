/// A small, strict JSON reader for the hottest request bodies.
///
/// It parses RFC 8259 JSON into ``Value`` and is used only as a fast path: callers fall back to
/// Foundation's `JSONDecoder` whenever it returns nil, so it may decline anything unusual
/// (numbers with fractions or exponents, duplicate members, invalid escapes, nesting deeper than
/// ``depthMax``) and never needs its own error messages. Why: `JSONDecoder` was about a tenth of
/// the request threads' CPU per write.
public enum FastJSON {
    /// A parsed JSON value; numbers are kept only when they are integers.
    public enum Value: Equatable {
        /// A string.
        case string(String)
        /// A non-negative integer that fits 64 bits.
        case unsigned(UInt64)
        /// `true` or `false`.
        case bool(Bool)
        /// `null`.
        case null
        /// An array.
        case array([Value])
        /// An object (member names are unique).
        case object([String: Value])
    }

    /// Deepest nesting accepted.
    public static let depthMax = 64

    /// Parses a whole document; nil for anything it declines.
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> Value? {
        var reader = Reader(bytes: bytes)
        guard let value = reader.value(depth: 0) else { return nil }
        reader.skipSpace()
        return reader.offset == bytes.count ? value : nil
    }

    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        var offset = 0

        mutating func skipSpace() {
            while offset < bytes.count {
                switch bytes[offset] {
                case 0x20, 0x09, 0x0A, 0x0D: offset += 1
                default: return
                }
            }
        }

        mutating func value(depth: Int) -> Value? {
            guard depth <= FastJSON.depthMax else { return nil }
            skipSpace()
            guard offset < bytes.count else { return nil }
            switch bytes[offset] {
            case 0x22: return string().map(Value.string)
            case 0x7B: return object(depth: depth)
            case 0x5B: return array(depth: depth)
            case 0x74: return literal("true", .bool(true))
            case 0x66: return literal("false", .bool(false))
            case 0x6E: return literal("null", .null)
            case 0x30...0x39: return number()
            default: return nil
            }
        }

        mutating func literal(_ text: StaticString, _ value: Value) -> Value? {
            let count = text.utf8CodeUnitCount
            guard bytes.count - offset >= count else { return nil }
            for index in 0..<count where bytes[offset + index] != text.utf8Start[index] { return nil }
            offset += count
            return value
        }

        /// Integers only, without a leading zero (as JSON requires); fractions and exponents decline.
        mutating func number() -> Value? {
            let start = offset
            var result: UInt64 = 0
            while offset < bytes.count, (0x30...0x39).contains(bytes[offset]) {
                let (times, overflow1) = result.multipliedReportingOverflow(by: 10)
                let (sum, overflow2) = times.addingReportingOverflow(UInt64(bytes[offset] - 0x30))
                if overflow1 || overflow2 { return nil }
                result = sum
                offset += 1
            }
            if offset - start > 1 && bytes[start] == 0x30 { return nil }
            if offset < bytes.count, [0x2E, 0x65, 0x45].contains(bytes[offset]) { return nil }
            return .unsigned(result)
        }

        mutating func string() -> String? {
            precondition(bytes[offset] == 0x22, "strings start with a quote")
            offset += 1
            var out: [UInt8] = []
            var plainStart = offset
            while offset < bytes.count {
                let byte = bytes[offset]
                if byte == 0x22 {
                    defer { offset += 1 }
                    let plain = UnsafeRawBufferPointer(rebasing: bytes[plainStart..<offset])
                    // Without escapes (nearly every string) the text is made from the body's
                    // bytes directly, without the copy into `out`.
                    if out.isEmpty { return String(validating: plain.assumingMemoryBound(to: UInt8.self), as: UTF8.self) }
                    out.append(contentsOf: plain)
                    return String(validating: out, as: UTF8.self)
                }
                if byte < 0x20 { return nil }
                if byte != 0x5C {
                    offset += 1
                    continue
                }
                out.append(contentsOf: bytes[plainStart..<offset])
                offset += 1
                guard offset < bytes.count else { return nil }
                switch bytes[offset] {
                case 0x22: out.append(0x22)
                case 0x5C: out.append(0x5C)
                case 0x2F: out.append(0x2F)
                case 0x62: out.append(0x08)
                case 0x66: out.append(0x0C)
                case 0x6E: out.append(0x0A)
                case 0x72: out.append(0x0D)
                case 0x74: out.append(0x09)
                case 0x75:
                    guard let high = hex4(at: offset + 1) else { return nil }
                    offset += 4
                    var scalarValue = UInt32(high)
                    if (0xD800...0xDBFF).contains(high) {
                        guard bytes.count - offset > 6, bytes[offset + 1] == 0x5C, bytes[offset + 2] == 0x75,
                            let low = hex4(at: offset + 3), (0xDC00...0xDFFF).contains(low)
                        else { return nil }
                        scalarValue = 0x10000 + ((UInt32(high) - 0xD800) << 10) + (UInt32(low) - 0xDC00)
                        offset += 6
                    } else if (0xDC00...0xDFFF).contains(high) {
                        return nil
                    }
                    guard let scalar = Unicode.Scalar(scalarValue) else { return nil }
                    out.append(contentsOf: String(Character(scalar)).utf8)
                default:
                    return nil
                }
                offset += 1
                plainStart = offset
            }
            return nil
        }

        func hex4(at position: Int) -> UInt16? { JSONEscapes.hex4(bytes, at: position) }

        mutating func array(depth: Int) -> Value? {
            offset += 1
            var items: [Value] = []
            skipSpace()
            if offset < bytes.count && bytes[offset] == 0x5D {
                offset += 1
                return .array(items)
            }
            while true {
                guard let item = value(depth: depth + 1) else { return nil }
                items.append(item)
                skipSpace()
                guard offset < bytes.count else { return nil }
                if bytes[offset] == 0x2C {
                    offset += 1
                    continue
                }
                guard bytes[offset] == 0x5D else { return nil }
                offset += 1
                return .array(items)
            }
        }

        mutating func object(depth: Int) -> Value? {
            offset += 1
            var members: [String: Value] = [:]
            skipSpace()
            if offset < bytes.count && bytes[offset] == 0x7D {
                offset += 1
                return .object(members)
            }
            while true {
                skipSpace()
                guard offset < bytes.count, bytes[offset] == 0x22, let name = string() else { return nil }
                skipSpace()
                guard offset < bytes.count, bytes[offset] == 0x3A else { return nil }
                offset += 1
                guard let item = value(depth: depth + 1) else { return nil }
                // Duplicate names: decline, and let JSONDecoder's rule apply.
                guard members.updateValue(item, forKey: name) == nil else { return nil }
                skipSpace()
                guard offset < bytes.count else { return nil }
                if bytes[offset] == 0x2C {
                    offset += 1
                    continue
                }
                guard bytes[offset] == 0x7D else { return nil }
                offset += 1
                return .object(members)
            }
        }
    }
}

extension ClientProtocol.SetValueRequest {
    /// The fast path for the hottest request: nil (use `JSONDecoder`) for anything but a plain,
    /// valid set-value body with exactly the known members.
    public init?(fastJSON bytes: UnsafeRawBufferPointer) {
        guard case .object(let members)? = FastJSON.parse(bytes),
            case .string(let key)? = members["key"], case .string(let name)? = members["name"],
            case .string(let typeName)? = members["type"], let type = ValueType(name: typeName),
            let data = members["data"]
        else { return nil }
        var known = 4
        var createKey = false
        if let flag = members["createKey"] {
            guard case .bool(let value) = flag else { return nil }
            createKey = value
            known += 1
        }
        guard members.count == known else { return nil }
        let value: RegistryValue
        switch (type, data) {
        case (.string, .string(let text)): value = .string(text)
        case (.expandString, .string(let text)): value = .expandString(text)
        case (.dword, .unsigned(let number)):
            guard let small = UInt32(exactly: number) else { return nil }
            value = .dword(small)
        case (.qword, .unsigned(let number)): value = .qword(number)
        case (.binary, .string(let hex)), (.none, .string(let hex)):
            guard let bytes = Hex.decode(hex) else { return nil }
            value = type == .binary ? .binary(bytes) : .none(bytes)
        case (.multiString, .array(let items)):
            var list: [String] = []
            for item in items {
                guard case .string(let text) = item else { return nil }
                list.append(text)
            }
            value = .multiString(list)
        default:
            return nil
        }
        guard (try? value.validate()) != nil else { return nil }
        self.init(key: key, name: name, value: value, createKey: createKey)
    }
}
