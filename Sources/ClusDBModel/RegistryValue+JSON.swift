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
        case .dword: self = .dword(try container.decode(UInt32.self, forKey: .data))
        case .qword: self = .qword(try container.decode(UInt64.self, forKey: .data))
        case .binary, .none:
            let hex = try container.decode(String.self, forKey: .data)
            guard let bytes = Hex.decode(hex) else {
                throw ClusterError(.invalidParameter, "\(type.name) data must be an even number of hex digits")
            }
            self = type == .binary ? .binary(bytes) : .none(bytes)
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
        func number(_ limit: UInt64) throws(ClusterError) -> UInt64 {
            let parsed: UInt64?
            if data.hasPrefix("0x") || data.hasPrefix("0X") {
                parsed = UInt64(data.dropFirst(2), radix: 16)
            } else {
                parsed = data.allSatisfy(\.isASCII) ? UInt64(data, radix: 10) : nil
            }
            guard let value = parsed, value <= limit else {
                throw ClusterError(
                    .invalidParameter, "\(type.name) data \(RegistryName.quoted(data)) is not a number from 0 to \(limit)")
            }
            return value
        }
        switch type {
        case .string: self = .string(data)
        case .expandString: self = .expandString(data)
        case .dword: self = .dword(UInt32(try number(UInt64(UInt32.max))))
        case .qword: self = .qword(try number(UInt64.max))
        case .binary, .none:
            guard let bytes = Hex.decode(data) else {
                throw ClusterError(.invalidParameter, "\(type.name) data must be an even number of hex digits")
            }
            self = type == .binary ? .binary(bytes) : .none(bytes)
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
}
