import Foundation

/// A key and its subtree in the export/import JSON format of `docs/FORMATS.md`:
/// `{"keys": {NAME: KEY}, "values": {NAME: {"type": TYPE, "data": DATA}}}`.
///
/// ``jsonBytes()`` writes members sorted by the UTF-8 bytes of their names, two-space indented,
/// so two exports of equal hives are equal bytes.
public struct ExportedKey: Sendable, Equatable {
    /// The values of this key, in any order (the writer sorts).
    public var values: [(name: String, value: RegistryValue)]
    /// The subkeys of this key, in any order (the writer sorts).
    public var keys: [(name: String, key: ExportedKey)]

    /// Creates a key.
    public init(values: [(name: String, value: RegistryValue)] = [], keys: [(name: String, key: ExportedKey)] = []) {
        self.values = values
        self.keys = keys
    }

    /// Compares as sets of names (order does not matter).
    public static func == (lhs: ExportedKey, rhs: ExportedKey) -> Bool {
        lhs.jsonBytes() == rhs.jsonBytes()
    }

    /// Number of values in this subtree.
    public var valueCount: Int { values.count + keys.reduce(0) { $0 + $1.key.valueCount } }

    /// Number of keys below this one.
    public var keyCount: Int { keys.count + keys.reduce(0) { $0 + $1.key.keyCount } }

    // MARK: Writing

    /// The export JSON, ending with a newline.
    public func jsonBytes() -> [UInt8] {
        var out: [UInt8] = []
        write(to: &out, indent: 0)
        out.append(0x0A)
        return out
    }

    private func write(to out: inout [UInt8], indent: Int) {
        func newline(_ level: Int) {
            out.append(0x0A)
            out.append(contentsOf: repeatElement(0x20, count: level * 2))
        }
        out.append(0x7B)
        newline(indent + 1)
        JSONText.appendString("keys", to: &out)
        out.append(contentsOf: [0x3A, 0x20])
        let sortedKeys = keys.sorted { JSONText.utf8Less($0.name, $1.name) }
        if sortedKeys.isEmpty {
            out.append(contentsOf: [0x7B, 0x7D])
        } else {
            out.append(0x7B)
            for (index, entry) in sortedKeys.enumerated() {
                if index > 0 { out.append(0x2C) }
                newline(indent + 2)
                JSONText.appendString(entry.name, to: &out)
                out.append(contentsOf: [0x3A, 0x20])
                entry.key.write(to: &out, indent: indent + 2)
            }
            newline(indent + 1)
            out.append(0x7D)
        }
        out.append(0x2C)
        newline(indent + 1)
        JSONText.appendString("values", to: &out)
        out.append(contentsOf: [0x3A, 0x20])
        let sortedValues = values.sorted { JSONText.utf8Less($0.name, $1.name) }
        if sortedValues.isEmpty {
            out.append(contentsOf: [0x7B, 0x7D])
        } else {
            out.append(0x7B)
            for (index, entry) in sortedValues.enumerated() {
                if index > 0 { out.append(0x2C) }
                newline(indent + 2)
                JSONText.appendString(entry.name, to: &out)
                out.append(contentsOf: [0x3A, 0x20, 0x7B])
                newline(indent + 3)
                JSONText.appendString("data", to: &out)
                out.append(contentsOf: [0x3A, 0x20])
                Self.appendData(of: entry.value, to: &out)
                out.append(0x2C)
                newline(indent + 3)
                JSONText.appendString("type", to: &out)
                out.append(contentsOf: [0x3A, 0x20])
                JSONText.appendString(entry.value.type.name, to: &out)
                newline(indent + 2)
                out.append(0x7D)
            }
            newline(indent + 1)
            out.append(0x7D)
        }
        newline(indent)
        out.append(0x7D)
    }

    private static func appendData(of value: RegistryValue, to out: inout [UInt8]) {
        switch value {
        case .string(let text), .expandString(let text): JSONText.appendString(text, to: &out)
        case .multiString(let list): out.append(contentsOf: JSONText.stringArray(list).utf8)
        case .dword(let number): out.append(contentsOf: String(number).utf8)
        case .qword(let number): out.append(contentsOf: String(number).utf8)
        case .binary(let bytes), .none(let bytes): JSONText.appendString(Hex.encode(bytes), to: &out)
        }
    }

    // MARK: Reading

    /// Parses export JSON and checks every name and value.
    /// - Throws: `ERROR_INVALID_PARAMETER` for malformed JSON, a bad name or value, or two names in
    ///   one key that differ only by case.
    public init(jsonBytes: some Collection<UInt8>) throws(ClusterError) {
        let decoded: Decoded
        do {
            decoded = try JSONDecoder().decode(Decoded.self, from: Data(jsonBytes))
        } catch let error as ClusterError {
            throw error
        } catch {
            throw ClusterError(.invalidParameter, "the JSON is not in the export format: \(JSONText.describe(error))")
        }
        self = try decoded.validated(depth: 0)
    }

    /// The raw decoded shape, checked by ``validated(depth:)``.
    private struct Decoded: Decodable {
        var keys: [String: Decoded]?
        var values: [String: RegistryValue]?

        func validated(depth: Int) throws(ClusterError) -> ExportedKey {
            if depth > Limits.keyDepthMax {
                throw ClusterError(.invalidParameter, "the export is deeper than \(Limits.keyDepthMax) levels")
            }
            var result = ExportedKey()
            var seenValues = Set<String>()
            for (name, value) in values ?? [:] {
                try RegistryName.validateValueName(name)
                if !seenValues.insert(RegistryName.fold(name)).inserted {
                    throw ClusterError(.invalidParameter, "two values named \(RegistryName.quoted(name)) differ only by case")
                }
                result.values.append((name, value))
            }
            var seenKeys = Set<String>()
            for (name, key) in keys ?? [:] {
                try RegistryName.validateKeyName(name)
                if !seenKeys.insert(RegistryName.fold(name)).inserted {
                    throw ClusterError(.invalidParameter, "two keys named \(RegistryName.quoted(name)) differ only by case")
                }
                result.keys.append((name, try key.validated(depth: depth + 1)))
            }
            return result
        }
    }
}
