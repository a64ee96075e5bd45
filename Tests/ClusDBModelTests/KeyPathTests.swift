import ClusDBModel
import Testing

@Suite("Key paths and names")
struct KeyPathTests {
    @Test("A valid path keeps its components and their case")
    func validPath() throws {
        let path = try KeyPath(#"Resources\{GUID}\Parameters"#)
        #expect(path.components == ["Resources", "{GUID}", "Parameters"])
        #expect(path.description == #"Resources\{GUID}\Parameters"#)
        #expect(path.parent?.description == #"Resources\{GUID}"#)
        #expect(try KeyPath("").isRoot)
    }

    @Test("Paths compare case-insensitively", arguments: [("Resources", "RESOURCES"), ("Ärger", "äRGER"), ("Σigma", "σIGMA")])
    func caseInsensitive(a: String, b: String) throws {
        #expect(try KeyPath(a).sameKey(as: try KeyPath(b)))
        #expect(try KeyPath(a) != (try KeyPath(b)))
    }

    @Test("Malformed paths are refused with ERROR_INVALID_PARAMETER",
          arguments: [#"\Resources"#, #"Resources\"#, #"a\\b"#, "a\u{0}b", #"\"#])
    func malformed(text: String) {
        #expect(throws: ClusterError.self) { try KeyPath(text) }
        do {
            _ = try KeyPath(text)
        } catch {
            #expect(error.code == .invalidParameter)
        }
    }

    @Test("Key names are limited to 255 UTF-16 units")
    func nameLength() throws {
        _ = try KeyPath(String(repeating: "k", count: Limits.keyNameMaxLength))
        #expect(throws: ClusterError.self) { try KeyPath(String(repeating: "k", count: Limits.keyNameMaxLength + 1)) }
        // A character outside the BMP counts as two units.
        _ = try KeyPath(String(repeating: "😀", count: Limits.keyNameMaxLength / 2))
        #expect(throws: ClusterError.self) { try KeyPath(String(repeating: "😀", count: Limits.keyNameMaxLength / 2 + 1)) }
    }

    @Test("Paths are limited to 512 levels")
    func depth() throws {
        let deepest = Array(repeating: "k", count: Limits.keyDepthMax)
        _ = try KeyPath(components: deepest)
        #expect(throws: ClusterError.self) { try KeyPath(components: deepest + ["k"]) }
        #expect(throws: ClusterError.self) { try KeyPath(components: deepest).appending(try KeyPath("x")) }
    }

    @Test("Value names: empty is the default value; NUL and over-long names are refused")
    func valueNames() throws {
        try RegistryName.validateValueName("")
        try RegistryName.validateValueName(String(repeating: "v", count: Limits.valueNameMaxLength))
        #expect(throws: ClusterError.self) { try RegistryName.validateValueName(String(repeating: "v", count: Limits.valueNameMaxLength + 1)) }
        #expect(throws: ClusterError.self) { try RegistryName.validateValueName("a\u{0}") }
    }

    @Test("Folding maps each scalar to one scalar, never changing length")
    func folding() {
        #expect(RegistryName.fold("ABCdef") == "abcdef")
        #expect(RegistryName.fold("already lower") == "already lower")
        #expect(RegistryName.fold("İ").unicodeScalars.count == 1)
        #expect(RegistryName.fold("ẞ") == "ß")
    }
}
