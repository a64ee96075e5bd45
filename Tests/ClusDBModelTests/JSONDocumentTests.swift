import ClusDBModel
import Foundation
import Testing

/// Goal: input that is not what it claims is refused with a message that says where and what,
/// never Swift internals. Method: hand-made import files, request bodies and command-line data.
@Suite("Input that is not what it claims")
struct JSONDocumentTests {
    static func importError(_ bytes: [UInt8]) -> ClusterError? {
        do {
            _ = try ExportedKey(jsonBytes: bytes, source: "import file x.json")
            return nil
        } catch {
            return error
        }
    }

    static func importError(_ text: String) -> ClusterError? { importError(Array(text.utf8)) }

    /// Words that would mean a Swift error leaked into a message.
    static let internals = ["DecodingError", "dataCorrupted", "UInt32", "UInt64", "CodingKeys", "codingPath", "Swift"]

    @Test("Invalid UTF-8 in a key name, value name or string data is refused, naming the member")
    func invalidUTF8InImport() throws {
        let cases: [([UInt8], String)] = [
            (Array(#"{"keys": {"W"#.utf8) + [0xFF] + Array(#"b": {}}}"#.utf8), "a member name in keys"),
            (Array(#"{"values": {"v"#.utf8) + [0xC3] + Array(#"": {"type": "REG_SZ", "data": "x"}}}"#.utf8), "a member name in values"),
            (Array(#"{"keys": {"Web": {"values": {"Port": {"type": "REG_SZ", "data": "a"#.utf8) + [0xED, 0xA0, 0x80]
                + Array(#""}}}}}"#.utf8), "member keys.Web.values.Port.data"),
            (Array(#"{"values": {"m": {"type": "REG_MULTI_SZ", "data": ["ok", "b"#.utf8) + [0x80] + Array(#""]}}}"#.utf8),
             "member values.m.data[1]"),
        ]
        for (bytes, place) in cases {
            let error = try #require(Self.importError(bytes), "accepted \(place)")
            #expect(error.code == .invalidParameter)
            #expect(error.message.hasPrefix("import file x.json"), "\(error.message)")
            #expect(error.message.contains(place), "\(error.message)")
            #expect(error.message.contains("not valid UTF-8"), "\(error.message)")
        }
    }

    @Test("A lone surrogate escape is no character and is refused")
    func loneSurrogate() throws {
        let error = try #require(Self.importError(#"{"values": {"v": {"type": "REG_SZ", "data": "a\uD800b"}}}"#))
        #expect(error.message.contains("values.v.data") && error.message.contains("surrogate"), "\(error.message)")
        // A proper pair is a character.
        let tree = try ExportedKey(jsonBytes: Array(#"{"values": {"v": {"type": "REG_SZ", "data": "\uD83D\uDE00"}}}"#.utf8))
        #expect(tree.values.first?.value == .string("😀"))
    }

    @Test("Bad numbers and members say what is wrong and where, without Swift internals")
    func badMembers() throws {
        let cases: [(String, [String])] = [
            (#"{"keys": {"Web": {"values": {"Port": {"type": "REG_DWORD", "data": -5}}}}}"#,
             ["member keys.Web.values.Port.data", "\"-5\" is negative", "from 0 to 4294967295"]),
            (#"{"values": {"Q": {"type": "REG_QWORD", "data": 18446744073709551616}}}"#, ["values.Q.data", "larger than 18446744073709551615"]),
            (#"{"values": {"D": {"type": "REG_DWORD", "data": 1.5}}}"#, ["values.D.data", "not a whole number"]),
            (#"{"values": {"D": {"type": "REG_DWORD", "data": "8080"}}}"#, ["values.D.data", "must be a number", "not a string"]),
            (#"{"values": {"D": {"type": "REG_WORD", "data": 1}}}"#, ["values.D.type", "REG_DWORD", "not \"REG_WORD\""]),
            (#"{"values": {"D": {"data": 1}}}"#, ["values.D.type", "is missing"]),
            (#"{"values": {"B": {"type": "REG_BINARY", "data": "0g"}}}"#, ["values.B.data", "\"g\" at position 2"]),
            (#"{"values": {"M": {"type": "REG_MULTI_SZ", "data": ["a", 1]}}}"#, ["values.M.data[1]", "only strings"]),
            (#"{"Values": {}}"#, ["member Values", "unknown member"]),
            (#"{"values": {"v": {"type": "REG_SZ", "data": "x"}, "v": {"type": "REG_SZ", "data": "y"}}}"#, ["values.v", "twice"]),
            (#"{"values": {"a b": {"type": "REG_DWORD", "data": -1}}}"#, [#"values["a b"].data"#]),
            ("{\n  \"values\": {\n    \"x\": {\"type\": \"REG_SZ\" \"data\": 1}}}", ["line 3", "expected ',' or '}'"]),
            ("", ["a value is missing"]),
        ]
        for (text, fragments) in cases {
            let error = try #require(Self.importError(text), "accepted \(text)")
            #expect(error.code == .invalidParameter)
            for fragment in fragments {
                #expect(error.message.contains(fragment), "\(text): \(error.message) lacks \(fragment)")
            }
            for word in Self.internals {
                #expect(!error.message.contains(word), "\(text): \(error.message)")
            }
        }
    }

    @Test("Command-line numbers and hex say what is wrong")
    func commandLineMessages() {
        let cases: [(ValueType, String, String)] = [
            (.dword, "-1", "\"-1\" is negative; REG_DWORD takes a whole number from 0 to 4294967295, decimal or 0x-hex"),
            (.qword, "-1", "is negative; REG_QWORD takes a whole number from 0 to 18446744073709551615"),
            (.dword, "4294967296", "is larger than 4294967295"),
            (.dword, "0x", "has no hex digits after 0x"),
            (.dword, "0x1G", "\"G\" at position 4, which is not a hex digit"),
            (.dword, "12a", "\"a\" at position 3, which is not a decimal digit"),
            (.dword, "1.5", "is not a whole number"),
            (.binary, "0g", "\"g\" at position 2, which is not a hex digit"),
            (.binary, "abc", "3 hex digits; it needs an even number"),
        ]
        for (type, data, fragment) in cases {
            do {
                _ = try RegistryValue(type: type, commandLineData: data)
                Issue.record("accepted \(type.name) \(data)")
            } catch {
                #expect(error.code == .invalidParameter)
                #expect(error.message.contains(fragment), "\(data): \(error.message)")
            }
        }
    }

    @Test("Request bodies: invalid UTF-8 is found and named; FastJSON declines it so the check runs")
    func requestBodies() throws {
        let body = Array(#"{"key": "K", "name": "v"#.utf8) + [0xFE] + Array(#"", "type": "REG_SZ", "data": "x"}"#.utf8)
        #expect(body.withUnsafeBytes { ClientProtocol.SetValueRequest(fastJSON: $0) } == nil)
        do {
            try JSONDocument.checkEncoding(body)
            Issue.record("accepted invalid UTF-8")
        } catch {
            #expect(error.path == "name" && error.isEncoding)
            #expect(error.describe(in: "the request body").contains("member name"), "\(error.describe(in: "the request body"))")
        }
        let data = Array(#"{"key": "K", "name": "v", "type": "REG_MULTI_SZ", "data": ["a", "\uDC00"]}"#.utf8)
        #expect(data.withUnsafeBytes { ClientProtocol.SetValueRequest(fastJSON: $0) } == nil)
        #expect(throws: JSONDocument.Problem.self) { try JSONDocument.checkEncoding(data) }
        // Valid text, escapes and pairs included, passes.
        try JSONDocument.checkEncoding(Array(#"{"name": "é😀\uD83D\uDE00\n"}"#.utf8))
    }

    @Test("JSONDecoder failures are described in words")
    func describedDecodingErrors() {
        let bodies = [
            #"{"key": "K", "name": "v", "type": "REG_DWORD", "data": -5}"#,
            #"{"key": 1, "name": "v", "type": "REG_SZ", "data": "x"}"#,
            #"{"name": "v", "type": "REG_SZ", "data": "x"}"#,
            #"{"key": "K", "name": "v", "type": "REG_DWORD", "data": [1]}"#,
        ]
        for body in bodies {
            do {
                _ = try JSONDecoder().decode(ClientProtocol.SetValueRequest.self, from: Data(body.utf8))
                Issue.record("accepted \(body)")
            } catch {
                let text = JSONText.describe(error)
                for word in Self.internals { #expect(!text.contains(word), "\(body): \(text)") }
            }
        }
        do {
            _ = try JSONDecoder().decode(RegistryValue.self, from: Data(#"{"type": "REG_DWORD"}"#.utf8))
            Issue.record("accepted a value without data")
        } catch {
            #expect(JSONText.describe(error).contains("member data is missing"), "\(JSONText.describe(error))")
        }
    }
}
