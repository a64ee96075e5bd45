import ClusDBModel
import Foundation
import Testing

@Suite("Export format")
struct ExportedKeyTests {
    @Test("Members are sorted by UTF-8 bytes, so equal trees give equal bytes")
    func deterministic() throws {
        let a = ExportedKey(
            values: [("b", .dword(2)), ("a", .string("x"))],
            keys: [("Z", ExportedKey()), ("y", ExportedKey(values: [("", .binary([0xAB]))]))])
        let b = ExportedKey(
            values: [("a", .string("x")), ("b", .dword(2))],
            keys: [("y", ExportedKey(values: [("", .binary([0xAB]))])), ("Z", ExportedKey())])
        #expect(a.jsonBytes() == b.jsonBytes())
        let text = String(decoding: a.jsonBytes(), as: UTF8.self)
        #expect(text == """
            {
              "keys": {
                "Z": {
                  "keys": {},
                  "values": {}
                },
                "y": {
                  "keys": {},
                  "values": {
                    "": {
                      "data": "ab",
                      "type": "REG_BINARY"
                    }
                  }
                }
              },
              "values": {
                "a": {
                  "data": "x",
                  "type": "REG_SZ"
                },
                "b": {
                  "data": 2,
                  "type": "REG_DWORD"
                }
              }
            }

            """)
    }

    @Test("Export JSON parses back to the same tree, escapes included")
    func roundTrip() throws {
        let tree = ExportedKey(
            values: [("quote\"back\\slash\nnl\u{1}", .string("tab\t")), ("q", .qword(.max)), ("m", .multiString(["é", "😀"])),
                     ("none", .none([])), ("e", .expandString("%X%"))],
            keys: [("Child", ExportedKey(values: [("d", .dword(.max))]))])
        let parsed = try ExportedKey(jsonBytes: tree.jsonBytes())
        #expect(parsed.jsonBytes() == tree.jsonBytes())
        #expect(parsed.valueCount == 6)
        #expect(parsed.keyCount == 1)
    }

    @Test("Import refuses names that differ only by case, bad names and bad JSON")
    func refusals() {
        let bad = [
            #"{"values": {"A": {"type": "REG_DWORD", "data": 1}, "a": {"type": "REG_DWORD", "data": 2}}}"#,
            #"{"keys": {"K": {}, "k": {}}}"#,
            #"{"keys": {"a\\b": {}}}"#,
            #"{"keys": {"": {}}}"#,
            #"{"values": {"v": {"type": "REG_SZ"}}}"#,
            #"["not an object"]"#,
            "{",
        ]
        for text in bad {
            do {
                _ = try ExportedKey(jsonBytes: Array(text.utf8))
                Issue.record("accepted \(text)")
            } catch {
                #expect(error.code == .invalidParameter)
            }
        }
    }

    @Test("Missing members mean empty")
    func missingMembers() throws {
        let tree = try ExportedKey(jsonBytes: Array("{}".utf8))
        #expect(tree.valueCount == 0 && tree.keyCount == 0)
    }
}

@Suite("Client protocol")
struct ClientProtocolTests {
    @Test("The hand-written write answer decodes like the encoder's", arguments: [
        ClientProtocol.WriteResponse(index: 0), ClientProtocol.WriteResponse(index: .max, created: true),
        ClientProtocol.WriteResponse(index: 42, created: false),
    ])
    func writeResponse(response: ClientProtocol.WriteResponse) throws {
        let decoded = try JSONDecoder().decode(ClientProtocol.WriteResponse.self, from: Data(response.jsonBytes))
        #expect(decoded.index == response.index && decoded.created == response.created)
    }
}
