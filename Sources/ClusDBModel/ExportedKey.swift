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
    /// - Parameter source: how messages name the input, e.g. `import file x.json`.
    /// - Throws: `ERROR_INVALID_PARAMETER` naming the source, the member (`keys.Web.values.Port.data`)
    ///   and what is wrong: malformed JSON, invalid UTF-8, a bad name or value, an unknown member,
    ///   or two names in one key that differ only by case.
    public init(jsonBytes: some Collection<UInt8>, source: String = "the JSON") throws(ClusterError) {
        do throws(JSONDocument.Problem) {
            self = try Self.key(try JSONDocument.parse(jsonBytes), path: "", depth: 0)
        } catch {
            throw error.error(in: source)
        }
    }

    private static func key(_ document: JSONDocument.Value, path: String, depth: Int) throws(JSONDocument.Problem) -> ExportedKey {
        if depth > Limits.keyDepthMax {
            throw JSONDocument.Problem(path: path, message: "the export is deeper than \(Limits.keyDepthMax) levels")
        }
        guard case .object(let members) = document else {
            throw JSONDocument.Problem(
                path: path, message: "a key must be an object {\"keys\": {...}, \"values\": {...}}, not \(document.kind)")
        }
        var result = ExportedKey()
        for member in members {
            let memberPath = JSONDocument.path(path, member: member.name)
            guard member.name == "keys" || member.name == "values" else {
                throw JSONDocument.Problem(path: memberPath, message: "unknown member; a key has only \"keys\" and \"values\"")
            }
            guard case .object(let entries) = member.value else {
                throw JSONDocument.Problem(path: memberPath, message: "must be an object of names, not \(member.value.kind)")
            }
            // Folds as UTF-8 bytes, as the hive compares them: a Set<String> would also merge
            // canonically equivalent spellings (`é` and `e` + U+0301), which the hive keeps apart.
            var seen = Set<[UInt8]>()
            for entry in entries {
                let entryPath = JSONDocument.path(memberPath, member: entry.name)
                do throws(ClusterError) {
                    if member.name == "keys" {
                        try RegistryName.validateKeyName(entry.name)
                    } else {
                        try RegistryName.validateValueName(entry.name)
                    }
                } catch {
                    throw JSONDocument.Problem(path: entryPath, message: error.message)
                }
                if !seen.insert(Array(RegistryName.fold(entry.name).utf8)).inserted {
                    throw JSONDocument.Problem(
                        path: entryPath, message: "two \(member.name) named \(RegistryName.quoted(entry.name)) differ only by case")
                }
                if member.name == "keys" {
                    result.keys.append((entry.name, try key(entry.value, path: entryPath, depth: depth + 1)))
                } else {
                    result.values.append((entry.name, try RegistryValue(document: entry.value, path: entryPath)))
                }
            }
        }
        return result
    }
}
