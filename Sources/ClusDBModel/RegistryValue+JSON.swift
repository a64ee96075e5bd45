/// The JSON form of a value, shared by export/import files and the HTTP API:
/// `{"type": "REG_SZ", "data": DATA}`, where DATA is a string (`REG_SZ`, `REG_EXPAND_SZ`), an array
/// of strings (`REG_MULTI_SZ`), a number (`REG_DWORD`, `REG_QWORD`) or a hex string (`REG_BINARY`,
/// `REG_NONE`).
extension RegistryValue: Codable {
    private enum CodingKeys: String, CodingKey {
        case type
        case data
    }

    /// Decodes `{"type", "data"}` and checks the payload rules.
    /// - Throws: `DecodingError` for a wrong shape; ``ClusterError`` for a broken payload rule.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let typeName = try container.decode(String.self, forKey: .type)
        guard let type = ValueType(name: typeName) else {
            throw ClusterError(.invalidParameter, "unknown value type \(RegistryName.quoted(typeName))")
        }
        switch type {
        case .string: self = .string(try container.decode(String.self, forKey: .data))
        case .expandString: self = .expandString(try container.decode(String.self, forKey: .data))
        case .multiString: self = .multiString(try container.decode([String].self, forKey: .data))
        case .dword, .qword:
            // Read as the widest Swift numbers only to say in words what is wrong with the number.
            let text: String
            if !container.contains(.data) {
                throw ClusterError(.invalidParameter, "member data is missing: \(Self.numberRule(type, allowHex: false))")
            } else if let number = try? container.decode(UInt64.self, forKey: .data) {
                text = String(number)
            } else if let number = try? container.decode(Int64.self, forKey: .data) {
                text = String(number)
            } else if let number = try? container.decode(Double.self, forKey: .data) {
                text = "\(number)"
            } else {
                throw ClusterError(.invalidParameter, "\(type.name) data must be a number: \(Self.numberRule(type, allowHex: false))")
            }
            let number = try Self.parseNumber(type, text, allowHex: false)
            self = type == .dword ? .dword(UInt32(number)) : .qword(number)
        case .binary, .none:
            let hex = try container.decode(String.self, forKey: .data)
            self = try Self.hexData(type, hex)
        }
        try validate()
    }

    /// Encodes `{"type", "data"}`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(type.name, forKey: .type)
        switch self {
        case .string(let text), .expandString(let text): try container.encode(text, forKey: .data)
        case .multiString(let list): try container.encode(list, forKey: .data)
        case .dword(let number): try container.encode(number, forKey: .data)
        case .qword(let number): try container.encode(number, forKey: .data)
        case .binary(let bytes), .none(let bytes): try container.encode(Hex.encode(bytes), forKey: .data)
        }
    }

    /// Parses the command line's DATA for `reg set`: text for strings, a JSON array of strings for
    /// `REG_MULTI_SZ`, a decimal or `0x` hex number for `REG_DWORD`/`REG_QWORD`, hex digits for
    /// `REG_BINARY`/`REG_NONE`.
    /// - Throws: `ERROR_INVALID_PARAMETER` when DATA does not fit the type.
    public init(type: ValueType, commandLineData data: String) throws(ClusterError) {
        switch type {
        case .string: self = .string(data)
        case .expandString: self = .expandString(data)
        case .dword, .qword:
            let value = try Self.parseNumber(type, data, allowHex: true)
            self = type == .dword ? .dword(UInt32(value)) : .qword(value)
        case .binary, .none:
            self = try Self.hexData(type, data)
        case .multiString:
            guard let list = JSONText.parseStringArray(data) else {
                throw ClusterError(.invalidParameter, "REG_MULTI_SZ data must be a JSON array of strings")
            }
            self = .multiString(list)
        }
        try validate()
    }

    /// The command line's DATA form of this value (what `reg set` accepts back).
    public var commandLineData: String {
        switch self {
        case .string(let text), .expandString(let text): return text
        case .multiString(let list): return JSONText.stringArray(list)
        case .dword(let number): return String(number)
        case .qword(let number): return String(number)
        case .binary(let bytes), .none(let bytes): return Hex.encode(bytes)
        }
    }

    // MARK: Numbers and hex, with messages that say what is wrong

    /// The rule for `type`'s numbers, for messages.
    public static func numberRule(_ type: ValueType, allowHex: Bool) -> String {
        let limit = type == .dword ? String(UInt32.max) : String(UInt64.max)
        return "\(type.name) takes a whole number from 0 to \(limit)" + (allowHex ? ", decimal or 0x-hex" : "")
    }

    /// Parses a `REG_DWORD`/`REG_QWORD` number: decimal digits, or with `allowHex` also `0x` and hex digits.
    /// - Throws: `ERROR_INVALID_PARAMETER` saying what is wrong: negative, not whole, too large, a bad digit.
    public static func parseNumber(_ type: ValueType, _ text: String, allowHex: Bool) throws(ClusterError) -> UInt64 {
        let limit: UInt64 = type == .dword ? UInt64(UInt32.max) : UInt64.max
        let rule = numberRule(type, allowHex: allowHex)
        func refuse(_ why: String) -> ClusterError {
            ClusterError(.invalidParameter, "\(type.name) data \(RegistryName.quoted(text)) \(why); \(rule)")
        }
        if text.isEmpty { throw ClusterError(.invalidParameter, "\(type.name) data is empty; \(rule)") }
        if text.hasPrefix("-") { throw refuse("is negative") }
        var digits = Substring(text)
        var radix: UInt64 = 10
        if allowHex && (text.hasPrefix("0x") || text.hasPrefix("0X")) {
            digits = digits.dropFirst(2)
            radix = 16
            if digits.isEmpty { throw refuse("has no hex digits after 0x") }
        }
        var value: UInt64 = 0
        var overflow = false
        for (offset, character) in digits.enumerated() {
            guard let digit = character.hexDigitValue, UInt64(digit) < radix else {
                if radix == 10 && (character == "." || character == "e" || character == "E") {
                    throw refuse("is not a whole number")
                }
                let position = offset + 1 + (radix == 16 ? 2 : 0)
                throw refuse("has \"\(character)\" at position \(position), which is not a \(radix == 16 ? "hex" : "decimal") digit")
            }
            let (times, overflow1) = value.multipliedReportingOverflow(by: radix)
            let (sum, overflow2) = times.addingReportingOverflow(UInt64(digit))
            overflow = overflow || overflow1 || overflow2
            value = sum
        }
        if overflow || value > limit { throw refuse("is larger than \(limit)") }
        return value
    }

    /// Decodes `REG_BINARY`/`REG_NONE` hex digits (two per byte, either case).
    /// - Throws: `ERROR_INVALID_PARAMETER` naming the first bad digit and its 1-based position, or the odd count.
    public static func hexData(_ type: ValueType, _ text: String) throws(ClusterError) -> RegistryValue {
        if let bytes = Hex.decode(text) { return type == .none ? .none(bytes) : .binary(bytes) }
        for (offset, character) in text.enumerated() where character.hexDigitValue == nil || !character.isASCII {
            throw ClusterError(
                .invalidParameter,
                "\(type.name) data has \"\(character)\" at position \(offset + 1), which is not a hex digit (0-9, a-f, A-F)")
        }
        throw ClusterError(
            .invalidParameter, "\(type.name) data has \(text.count) hex digits; it needs an even number (two per byte)")
    }

    /// Reads `{"type", "data"}` from a parsed document, as import files hold it.
    /// - Throws: ``JSONDocument/Problem`` naming the member (`path.type`, `path.data`) and what it must be.
    public init(document: JSONDocument.Value, path: String) throws(JSONDocument.Problem) {
        guard case .object(let members) = document else {
            throw JSONDocument.Problem(path: path, message: "a value must be an object {\"type\": TYPE, \"data\": DATA}, not \(document.kind)")
        }
        var typeMember: JSONDocument.Value?
        var dataMember: JSONDocument.Value?
        for member in members {
            switch member.name {
            case "type": typeMember = member.value
            case "data": dataMember = member.value
            default:
                throw JSONDocument.Problem(
                    path: JSONDocument.path(path, member: member.name), message: "unknown member; a value has only \"type\" and \"data\"")
            }
        }
        let typePath = JSONDocument.path(path, member: "type")
        let dataPath = JSONDocument.path(path, member: "data")
        let names = ValueType.allCases.map(\.name).joined(separator: ", ")
        guard let typeMember else { throw JSONDocument.Problem(path: typePath, message: "is missing; it is one of \(names)") }
        guard case .string(let typeName) = typeMember, let type = ValueType(name: typeName) else {
            let found = if case .string(let text) = typeMember { RegistryName.quoted(text) } else { typeMember.kind }
            throw JSONDocument.Problem(path: typePath, message: "must be one of \(names), not \(found)")
        }
        guard let data = dataMember else {
            throw JSONDocument.Problem(path: dataPath, message: "is missing")
        }
        func problem(_ message: String) -> JSONDocument.Problem { JSONDocument.Problem(path: dataPath, message: message) }
        var multiString: [String] = []
        if type == .multiString, case .array(let items) = data {
            for (index, item) in items.enumerated() {
                guard case .string(let text) = item else {
                    throw JSONDocument.Problem(
                        path: JSONDocument.path(dataPath, element: index), message: "REG_MULTI_SZ data holds only strings, not \(item.kind)")
                }
                multiString.append(text)
            }
        }
        do throws(ClusterError) {
            switch (type, data) {
            case (.string, .string(let text)): self = .string(text)
            case (.expandString, .string(let text)): self = .expandString(text)
            case (.dword, .number(let text)), (.qword, .number(let text)):
                let number = try Self.parseNumber(type, text, allowHex: false)
                self = type == .dword ? .dword(UInt32(number)) : .qword(number)
            case (.binary, .string(let hex)), (.none, .string(let hex)):
                self = try Self.hexData(type, hex)
            case (.multiString, .array):
                self = .multiString(multiString)
            default:
                let expected: String
                switch type {
                case .string, .expandString: expected = "a string"
                case .dword, .qword: expected = "a number (\(Self.numberRule(type, allowHex: false)); 0x-hex strings are for the command line)"
                case .binary, .none: expected = "a string of hex digits"
                case .multiString: expected = "an array of strings"
                }
                throw ClusterError(.invalidParameter, "\(type.name) data must be \(expected), not \(data.kind)")
            }
            try validate()
        } catch {
            throw problem(error.message)
        }
    }
}
