/// A strict RFC 8259 JSON reader whose errors are written for people: each names the member
/// (`keys.Web.values.Port.data`) and the line and column, never a Swift type or a coding path dump.
///
/// Why not `JSONDecoder`: it stores invalid UTF-8 as U+FFFD without a word, answers a negative
/// `REG_DWORD` with "not valid JSON", and its messages name Swift types. Import files and the
/// clusters file are read with this reader; ``FastJSON`` stays the quiet fast path for request bodies.
public enum JSONDocument {
    /// A parsed JSON value.
    public indirect enum Value: Sendable, Equatable {
        /// A string (valid Unicode: invalid UTF-8 and lone surrogate escapes are refused).
        case string(String)
        /// A number, as its exact text (`-5`, `1.5e3`), so the reader of a member decides what fits.
        case number(String)
        /// `true` or `false`.
        case bool(Bool)
        /// `null`.
        case null
        /// An array.
        case array([Value])
        /// An object, members in document order (names are unique: a repeated name is refused).
        case object([(name: String, value: Value)])

        /// Compares member by member, in order.
        public static func == (lhs: Value, rhs: Value) -> Bool {
            switch (lhs, rhs) {
            case (.string(let a), .string(let b)): return a == b
            case (.number(let a), .number(let b)): return a == b
            case (.bool(let a), .bool(let b)): return a == b
            case (.null, .null): return true
            case (.array(let a), .array(let b)): return a == b
            case (.object(let a), .object(let b)):
                return a.count == b.count && zip(a, b).allSatisfy { $0.name == $1.name && $0.value == $1.value }
            default: return false
            }
        }

        /// What kind of value this is, for messages ("a string", "an array", ...).
        public var kind: String {
            switch self {
            case .string: return "a string"
            case .number(let text): return "the number \(text)"
            case .bool(let flag): return flag ? "true" : "false"
            case .null: return "null"
            case .array: return "an array"
            case .object: return "an object"
            }
        }
    }

    /// What is wrong with a document, and where.
    public struct Problem: Error, Sendable, Equatable {
        /// The member's path (`keys.Web.values.Port.data`); empty for the document itself.
        public var path: String
        /// What is wrong, without the place.
        public var message: String
        /// 1-based line and column of the offending byte, when the problem is in the text itself.
        public var position: (line: Int, column: Int)?
        /// True when the problem is bytes that are not UTF-8 (or escapes that are no character).
        public var isEncoding: Bool

        /// Creates a problem at `path`.
        public init(path: String, message: String, position: (line: Int, column: Int)? = nil, isEncoding: Bool = false) {
            self.path = path
            self.message = message
            self.position = position
            self.isEncoding = isEncoding
        }

        /// Compares every part.
        public static func == (lhs: Problem, rhs: Problem) -> Bool {
            lhs.path == rhs.path && lhs.message == rhs.message && lhs.position?.line == rhs.position?.line
                && lhs.position?.column == rhs.position?.column && lhs.isEncoding == rhs.isEncoding
        }

        /// The one-line message for `source` (e.g. `import file x.json`): the place, then the problem.
        public func describe(in source: String) -> String {
            var text = source
            if !path.isEmpty { text += ", member \(path)" }
            if let position { text += " (line \(position.line), column \(position.column))" }
            return text + ": " + message
        }

        /// The problem as `ERROR_INVALID_PARAMETER`, described for `source`.
        public func error(in source: String) -> ClusterError {
            ClusterError(.invalidParameter, describe(in: source))
        }
    }

    /// Deepest nesting accepted: an export nests two levels per key (`keys`, then the name).
    public static let depthMax = 2 * Limits.keyDepthMax + 8

    /// Parses a whole document.
    /// - Throws: ``Problem`` for anything that is not one valid JSON value with valid UTF-8.
    public static func parse(_ bytes: some Collection<UInt8>) throws(Problem) -> Value {
        let array = Array(bytes)
        var reader = Reader(bytes: array)
        reader.skipSpace()
        let value = try reader.value(path: "", depth: 0)
        reader.skipSpace()
        if reader.offset != array.count {
            throw reader.problem("", "unexpected text after the JSON value")
        }
        return value
    }

    /// `path.name`, or `path["name"]` when the name has characters that would make the path ambiguous.
    public static func path(_ path: String, member name: String) -> String {
        let plain = !name.isEmpty && name.unicodeScalars.allSatisfy { scalar in
            scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || scalar == "_" || scalar == "-"
                || scalar == "{" || scalar == "}"
        }
        if plain { return path.isEmpty ? name : "\(path).\(name)" }
        var quoted: [UInt8] = []
        JSONText.appendString(name, to: &quoted)
        return "\(path)[\(String(decoding: quoted, as: UTF8.self))]"
    }

    /// `path[index]`.
    public static func path(_ path: String, element index: Int) -> String {
        "\(path)[\(index)]"
    }

    /// The byte offset of the first byte that does not belong to a valid UTF-8 sequence; nil when all is valid.
    public static func firstInvalidUTF8(in bytes: some Collection<UInt8>) -> Int? {
        let array = Array(bytes)
        var index = 0
        while index < array.count {
            let lead = array[index]
            let length: Int
            var low: UInt8 = 0x80
            var high: UInt8 = 0xBF
            switch lead {
            case 0x00...0x7F:
                index += 1
                continue
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; low = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; high = 0x9F  // no UTF-16 surrogates
            case 0xF0: length = 4; low = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; high = 0x8F  // nothing above U+10FFFF
            default: return index
            }
            guard index + length <= array.count else { return index }
            guard (low...high).contains(array[index + 1]) else { return index }
            for next in index + 2..<index + length where !(0x80...0xBF).contains(array[next]) { return index }
            index += length
        }
        return nil
    }

    /// Checks that the strings of a document are real text: valid UTF-8 and no lone surrogate
    /// escape. Cheap when they are (one pass over the bytes); only a suspect document is parsed,
    /// to name the member. Why: `JSONDecoder` turns both into U+FFFD without a word.
    /// - Throws: ``Problem`` (with ``Problem/isEncoding``) naming the member, or the byte offset
    ///   when the bad bytes are outside any string.
    public static func checkEncoding(_ bytes: some Collection<UInt8>) throws(Problem) {
        let array = Array(bytes)
        let invalid = firstInvalidUTF8(in: array)
        if invalid == nil && !mayHoldSurrogateEscape(array) { return }
        do throws(Problem) {
            _ = try parse(array)
        } catch where error.isEncoding {
            throw error
        } catch {
            // Another problem came first; the caller's decoder reports it. Bytes outside any
            // string that are not UTF-8 are still named here.
        }
        if let invalid {
            throw Problem(
                path: "", message: "is not valid UTF-8 (\(byteName(array[invalid])) at byte offset \(invalid) is no UTF-8 character)",
                isEncoding: true)
        }
    }

    /// True when `\uD8..` to `\uDF..` appears: a surrogate escape, paired or not.
    private static func mayHoldSurrogateEscape(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= 4 else { return false }
        for index in 0..<(bytes.count - 3) where bytes[index] == 0x5C && bytes[index + 1] == 0x75 {
            let third = bytes[index + 2]
            let fourth = bytes[index + 3]
            if (third == 0x64 || third == 0x44) && ((0x38...0x39).contains(fourth) || (0x61...0x66).contains(fourth) || (0x41...0x46).contains(fourth)) {
                return true
            }
        }
        return false
    }

    /// `byte 0xFF`: how messages name a byte.
    public static func byteName(_ byte: UInt8) -> String {
        let hex = String(byte, radix: 16, uppercase: true)
        return "byte 0x" + (hex.count == 1 ? "0" + hex : hex)
    }

    private struct Reader {
        let bytes: [UInt8]
        var offset = 0

        func position(of byteOffset: Int) -> (line: Int, column: Int) {
            var line = 1
            var lineStart = 0
            for index in 0..<min(byteOffset, bytes.count) where bytes[index] == 0x0A {
                line += 1
                lineStart = index + 1
            }
            // Columns count characters, not bytes, so an editor's column matches.
            let column = String(decoding: bytes[lineStart..<min(byteOffset, bytes.count)], as: UTF8.self).unicodeScalars.count + 1
            return (line, column)
        }

        func problem(_ path: String, _ message: String, at byteOffset: Int? = nil, encoding: Bool = false) -> Problem {
            Problem(path: path, message: message, position: position(of: byteOffset ?? offset), isEncoding: encoding)
        }

        func describeHere() -> String {
            guard offset < bytes.count else { return "the end of the text" }
            let byte = bytes[offset]
            if byte >= 0x20 && byte < 0x7F { return "'\(String(UnicodeScalar(byte)))'" }
            return JSONDocument.byteName(byte)
        }

        mutating func skipSpace() {
            while offset < bytes.count {
                switch bytes[offset] {
                case 0x20, 0x09, 0x0A, 0x0D: offset += 1
                default: return
                }
            }
        }

        mutating func value(path: String, depth: Int) throws(Problem) -> Value {
            guard depth <= JSONDocument.depthMax else {
                throw problem(path, "the JSON nests deeper than \(JSONDocument.depthMax) levels")
            }
            guard offset < bytes.count else { throw problem(path, "a value is missing at the end of the text") }
            switch bytes[offset] {
            case 0x22: return .string(try string(path: path, isName: false))
            case 0x7B: return try object(path: path, depth: depth)
            case 0x5B: return try array(path: path, depth: depth)
            case 0x74: return try literal("true", .bool(true), path: path)
            case 0x66: return try literal("false", .bool(false), path: path)
            case 0x6E: return try literal("null", .null, path: path)
            case 0x2D, 0x30...0x39: return try number(path: path)
            default:
                throw problem(path, "expected a value (a string, number, object, array, true, false or null), found \(describeHere())")
            }
        }

        mutating func literal(_ word: String, _ value: Value, path: String) throws(Problem) -> Value {
            let utf8 = Array(word.utf8)
            guard bytes.count - offset >= utf8.count, Array(bytes[offset..<offset + utf8.count]) == utf8 else {
                throw problem(path, "expected a value, found \(describeHere())")
            }
            offset += utf8.count
            return value
        }

        mutating func number(path: String) throws(Problem) -> Value {
            let start = offset
            func digits() -> Int {
                let first = offset
                while offset < bytes.count, (0x30...0x39).contains(bytes[offset]) { offset += 1 }
                return offset - first
            }
            if bytes[offset] == 0x2D { offset += 1 }
            let integerStart = offset
            let count = digits()
            guard count > 0 else { throw problem(path, "a '-' must be followed by digits") }
            if count > 1 && bytes[integerStart] == 0x30 {
                throw problem(path, "a number must not start with 0 (JSON has no octal; write 0x-hex numbers in decimal)", at: integerStart)
            }
            if offset < bytes.count && bytes[offset] == 0x2E {
                offset += 1
                guard digits() > 0 else { throw problem(path, "a '.' in a number must be followed by digits") }
            }
            if offset < bytes.count && (bytes[offset] == 0x65 || bytes[offset] == 0x45) {
                offset += 1
                if offset < bytes.count && (bytes[offset] == 0x2B || bytes[offset] == 0x2D) { offset += 1 }
                guard digits() > 0 else { throw problem(path, "a number's exponent must have digits") }
            }
            return .number(String(decoding: bytes[start..<offset], as: UTF8.self))
        }

        mutating func string(path: String, isName: Bool) throws(Problem) -> String {
            let what = isName ? "a member name in \(path.isEmpty ? "the top-level object" : path)" : "the string"
            let opening = offset
            offset += 1
            var out: [UInt8] = []
            var plainStart = offset
            while offset < bytes.count {
                let byte = bytes[offset]
                if byte == 0x22 {
                    out.append(contentsOf: bytes[plainStart..<offset])
                    offset += 1
                    if let text = String(validating: out, as: UTF8.self) { return text }
                    // Find the bad byte in the source text to point at it.
                    let raw = bytes[(opening + 1)..<(offset - 1)]
                    let bad = JSONDocument.firstInvalidUTF8(in: raw).map { opening + 1 + $0 } ?? opening
                    throw problem(
                        path, "\(what) is not valid UTF-8 (\(JSONDocument.byteName(bytes[bad])) is no UTF-8 character)",
                        at: bad, encoding: true)
                }
                if byte < 0x20 {
                    throw problem(path, "\(what) holds a raw control character (\(JSONDocument.byteName(byte))); write it as an escape like \\n")
                }
                if byte != 0x5C {
                    offset += 1
                    continue
                }
                out.append(contentsOf: bytes[plainStart..<offset])
                offset += 1
                guard offset < bytes.count else { break }
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
                    let escape = offset - 1
                    guard let high = hex4(at: offset + 1) else {
                        throw problem(path, "\(what) has a \\u escape without four hex digits", at: escape)
                    }
                    offset += 4
                    var scalarValue = UInt32(high)
                    if (0xD800...0xDBFF).contains(high) {
                        guard bytes.count - offset > 6, bytes[offset + 1] == 0x5C, bytes[offset + 2] == 0x75,
                            let low = hex4(at: offset + 3), (0xDC00...0xDFFF).contains(low)
                        else {
                            throw problem(
                                path, "\(what) holds \\u\(String(high, radix: 16, uppercase: true)), half of a UTF-16 surrogate pair without its other half; that is no character",
                                at: escape, encoding: true)
                        }
                        scalarValue = 0x10000 + ((UInt32(high) - 0xD800) << 10) + (UInt32(low) - 0xDC00)
                        offset += 6
                    } else if (0xDC00...0xDFFF).contains(high) {
                        throw problem(
                            path, "\(what) holds \\u\(String(high, radix: 16, uppercase: true)), half of a UTF-16 surrogate pair without its other half; that is no character",
                            at: escape, encoding: true)
                    }
                    guard let scalar = Unicode.Scalar(scalarValue) else {
                        throw problem(path, "\(what) has an invalid \\u escape", at: escape, encoding: true)
                    }
                    out.append(contentsOf: String(Character(scalar)).utf8)
                default:
                    throw problem(path, "\(what) has an unknown escape \\\(String(UnicodeScalar(bytes[offset])))", at: offset - 1)
                }
                offset += 1
                plainStart = offset
            }
            throw problem(path, "\(what) has no closing quote", at: opening)
        }

        func hex4(at position: Int) -> UInt16? { JSONEscapes.hex4(bytes, at: position) }

        mutating func array(path: String, depth: Int) throws(Problem) -> Value {
            offset += 1
            var items: [Value] = []
            skipSpace()
            if offset < bytes.count && bytes[offset] == 0x5D {
                offset += 1
                return .array(items)
            }
            while true {
                skipSpace()
                items.append(try value(path: JSONDocument.path(path, element: items.count), depth: depth + 1))
                skipSpace()
                guard offset < bytes.count else { throw problem(path, "the array has no closing ']'") }
                if bytes[offset] == 0x2C {
                    offset += 1
                    continue
                }
                guard bytes[offset] == 0x5D else {
                    throw problem(path, "expected ',' or ']' after element \(items.count - 1), found \(describeHere())")
                }
                offset += 1
                return .array(items)
            }
        }

        mutating func object(path: String, depth: Int) throws(Problem) -> Value {
            offset += 1
            var members: [(name: String, value: Value)] = []
            // Names as UTF-8 bytes: a Set<String> would call canonically equivalent names
            // (`é` and `e` + U+0301) duplicates, and an export holds both when the hive does.
            var seen = Set<[UInt8]>()
            skipSpace()
            if offset < bytes.count && bytes[offset] == 0x7D {
                offset += 1
                return .object(members)
            }
            while true {
                skipSpace()
                guard offset < bytes.count, bytes[offset] == 0x22 else {
                    throw problem(path, "expected a member name in double quotes, found \(describeHere())")
                }
                let nameOffset = offset
                let name = try string(path: path, isName: true)
                let memberPath = JSONDocument.path(path, member: name)
                guard seen.insert(Array(name.utf8)).inserted else {
                    throw problem(memberPath, "the member appears twice in one object", at: nameOffset)
                }
                skipSpace()
                guard offset < bytes.count, bytes[offset] == 0x3A else {
                    throw problem(memberPath, "expected ':' after the member name, found \(describeHere())")
                }
                offset += 1
                skipSpace()
                members.append((name, try value(path: memberPath, depth: depth + 1)))
                skipSpace()
                guard offset < bytes.count else { throw problem(path, "the object has no closing '}'") }
                if bytes[offset] == 0x2C {
                    offset += 1
                    continue
                }
                guard bytes[offset] == 0x7D else {
                    throw problem(memberPath, "expected ',' or '}' after the member, found \(describeHere())")
                }
                offset += 1
                return .object(members)
            }
        }
    }
}
