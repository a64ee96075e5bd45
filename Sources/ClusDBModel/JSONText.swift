import Foundation

/// Small, exact JSON helpers for output whose bytes matter (exports are compared byte for byte).
public enum JSONText {
    /// Appends `text` as a JSON string literal: `"` and `\` escaped, control characters as `\n`,
    /// `\t`, ... or `\u00XX`, everything else as UTF-8.
    public static func appendString(_ text: String, to out: inout [UInt8]) {
        out.append(0x22)
        for byte in text.utf8 {
            switch byte {
            case 0x22: out.append(contentsOf: [0x5C, 0x22])
            case 0x5C: out.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: out.append(contentsOf: [0x5C, 0x6E])
            case 0x0D: out.append(contentsOf: [0x5C, 0x72])
            case 0x09: out.append(contentsOf: [0x5C, 0x74])
            case 0x08: out.append(contentsOf: [0x5C, 0x62])
            case 0x0C: out.append(contentsOf: [0x5C, 0x66])
            case 0x00..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: [0x5C, 0x75, 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]])
            default: out.append(byte)
            }
        }
        out.append(0x22)
    }

    /// A JSON array of strings on one line, e.g. `["a","b"]`.
    public static func stringArray(_ list: [String]) -> String {
        var out: [UInt8] = [0x5B]
        for (index, item) in list.enumerated() {
            if index > 0 { out.append(0x2C) }
            appendString(item, to: &out)
        }
        out.append(0x5D)
        return String(decoding: out, as: UTF8.self)
    }

    /// Parses a JSON array of strings; nil for anything else.
    public static func parseStringArray(_ text: String) -> [String]? {
        try? JSONDecoder().decode([String].self, from: Data(text.utf8))
    }

    /// A one-line description of a JSON decoding failure: what was wrong and where, in words
    /// (the member's path, what it must be), never Swift type names or a coding path dump.
    public static func describe(_ error: any Error) -> String {
        func place(_ path: [any CodingKey]) -> String {
            var text = ""
            for key in path {
                if let index = key.intValue, key.stringValue == "Index \(index)" || key.stringValue == "\(index)" {
                    text = JSONDocument.path(text, element: index)
                } else {
                    text = JSONDocument.path(text, member: key.stringValue)
                }
            }
            return text
        }
        func expected(_ type: Any.Type) -> String {
            if type == String.self || type == Substring.self { return "a string" }
            if type == Bool.self { return "true or false" }
            if type is any BinaryInteger.Type { return "a whole number" }
            if type is any BinaryFloatingPoint.Type { return "a number" }
            if type is any RangeReplaceableCollection.Type { return "an array" }
            return "an object"
        }
        switch error {
        case let error as ClusterError:
            return error.message
        case DecodingError.typeMismatch(let type, let context):
            let path = place(context.codingPath)
            return path.isEmpty ? "the JSON must be \(expected(type))" : "member \(path) must be \(expected(type))"
        case DecodingError.valueNotFound(let type, let context):
            return "member \(place(context.codingPath)) must be \(expected(type)), not null"
        case DecodingError.keyNotFound(let key, let context):
            return "member \(place(context.codingPath + [key])) is missing"
        case DecodingError.dataCorrupted(let context):
            if let inner = context.underlyingError as? ClusterError { return inner.message }
            let path = place(context.codingPath)
            return path.isEmpty ? "it is not valid JSON" : "member \(path) is not valid"
        default:
            return "it could not be read"
        }
    }

    /// Orders names the way exports sort object members: by their UTF-8 bytes.
    public static func utf8Less(_ a: String, _ b: String) -> Bool {
        a.utf8.lexicographicallyPrecedes(b.utf8)
    }
}
