/// A value with its name, as enumerations return it.
public struct NamedValue: Sendable, Hashable, Codable {
    /// The value's name ("" is the key's default value).
    public var name: String
    /// The typed value.
    public var value: RegistryValue

    /// Creates a named value.
    public init(name: String, value: RegistryValue) {
        self.name = name
        self.value = value
    }

    private enum CodingKeys: String, CodingKey { case name }

    /// Decodes `{"name", "type", "data"}`.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        value = try RegistryValue(from: decoder)
    }

    /// Encodes `{"name", "type", "data"}`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try value.encode(to: encoder)
    }
}

/// The subkeys and values of one key (`ClusterRegEnumKey` and `ClusterRegEnumValue` together),
/// each list sorted by the UTF-8 bytes of the names.
public struct KeyListing: Sendable, Hashable, Codable {
    /// Names of the direct subkeys.
    public var keys: [String]
    /// The key's values.
    public var values: [NamedValue]

    /// Creates a listing.
    public init(keys: [String], values: [NamedValue]) {
        self.keys = keys
        self.values = values
    }
}
