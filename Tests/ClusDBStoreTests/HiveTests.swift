import ClusDBModel
import ClusDBStore
import Testing

/// Applies commands to an in-memory hive one at a time, as the commit loop would.
final class HiveHarness {
    let hive: Hive
    var index: UInt64 = 0

    init() throws { hive = try Hive.inMemory() }

    @discardableResult
    func apply(_ command: HiveCommand) throws -> CommandOutcome {
        index += 1
        return try hive.apply([Hive.Committed(index: index, term: 1, command: command)])[0]
    }

    /// Applies and expects failure with `code`; returns the error.
    @discardableResult
    func expectFailure(_ command: HiveCommand, _ code: Win32Error, sourceLocation: SourceLocation = #_sourceLocation) throws -> ClusterError? {
        guard case .failed(let error) = try apply(command) else {
            Issue.record("\(command) succeeded; expected \(code)", sourceLocation: sourceLocation)
            return nil
        }
        #expect(error.code == code, sourceLocation: sourceLocation)
        return error
    }

    func export() async throws -> String {
        String(decoding: try await hive.export(.root).jsonBytes(), as: UTF8.self)
    }
}

func path(_ text: String) throws -> KeyPath { try KeyPath(text) }

@Suite("Hive: the cluster registry's rules")
struct HiveTests {
    @Test("createKey reports created, then opened, and creates missing parents")
    func createKey() async throws {
        let h = try HiveHarness()
        #expect(try h.apply(.createKey(path(#"A\B\C"#))) == .keyCreated)
        #expect(try h.apply(.createKey(path(#"a\b\c"#))) == .keyOpened)
        #expect(try h.apply(.createKey(path(#"A\B"#))) == .keyOpened)
        #expect(try await h.hive.listing(of: path("A")).keys == ["B"])
        try await h.hive.openKey(path(#"a\B\c"#))
        await #expect(throws: ClusterError.self) { try await h.hive.openKey(path(#"A\X"#)) }
    }

    @Test("setValue needs the key unless asked to create it, and keeps the first spelling of names")
    func setValue() async throws {
        let h = try HiveHarness()
        try h.expectFailure(.setValue(key: path("K"), name: "v", value: .dword(1), createKey: false), .fileNotFound)
        #expect(try h.apply(.setValue(key: path("K"), name: "Value", value: .dword(1), createKey: true)) == .done)
        #expect(try h.apply(.setValue(key: path("k"), name: "VALUE", value: .string("two"), createKey: false)) == .done)
        let listing = try await h.hive.listing(of: path("K"))
        #expect(listing.values == [NamedValue(name: "Value", value: .string("two"))])
        #expect(try await h.hive.queryValue(key: path("K"), name: "value") == .string("two"))
    }

    @Test("queryValue and deleteValue report ERROR_FILE_NOT_FOUND for a missing key or value")
    func missingValues() async throws {
        let h = try HiveHarness()
        try h.apply(.createKey(path("K")))
        try h.expectFailure(.deleteValue(key: path("K"), name: "nope"), .fileNotFound)
        try h.expectFailure(.deleteValue(key: path("Missing"), name: "nope"), .fileNotFound)
        do {
            _ = try await h.hive.queryValue(key: path("K"), name: "nope")
            Issue.record("query of a missing value succeeded")
        } catch let error as ClusterError {
            #expect(error.code == .fileNotFound)
        }
        try h.apply(.setValue(key: path("K"), name: "", value: .string("default"), createKey: false))
        #expect(try await h.hive.queryValue(key: path("K"), name: "") == .string("default"))
        #expect(try h.apply(.deleteValue(key: path("K"), name: "")) == .done)
    }

    @Test("deleteKey removes leaves only; --recursive removes the subtree; the root stays")
    func deleteKey() async throws {
        let h = try HiveHarness()
        try h.apply(.setValue(key: path(#"A\B"#), name: "v", value: .dword(1), createKey: true))
        try h.expectFailure(.deleteKey(path("A"), recursive: false), .accessDenied)
        try h.expectFailure(.deleteKey(path("Nope"), recursive: false), .fileNotFound)
        try h.expectFailure(.deleteKey(.root, recursive: true), .accessDenied)
        #expect(try h.apply(.deleteKey(path(#"a\b"#), recursive: false)) == .done)
        #expect(try await h.hive.listing(of: path("A")).keys.isEmpty)
        try h.apply(.setValue(key: path(#"A\B\C"#), name: "v", value: .dword(1), createKey: true))
        #expect(try h.apply(.deleteKey(path("A"), recursive: true)) == .done)
        let counts = try await h.hive.counts()
        #expect(counts.keys == 0 && counts.values == 0)
    }

    @Test("A batch applies all its commands, with the current-key rules")
    func batchSuccess() async throws {
        let h = try HiveHarness()
        try h.apply(.createKey(path("Root")))
        let batch = HiveCommand.batch(root: try path("Root"), commands: [
            .setValue(name: "atRoot", value: .dword(1)),
            .createKey(try path(#"X\Y"#)),
            .setValue(name: "inY", value: .string("y")),
            .createKey(try path("Z")),
            .setValue(name: "inZ", value: .qword(3)),
            .deleteValue(name: "missing is fine"),
            .deleteKey(try path("Gone")),
            .createKey(try path("X")),
            .setValue(name: "inX", value: .binary([1])),
        ])
        #expect(try h.apply(batch) == .done)
        #expect(try await h.hive.queryValue(key: path("Root"), name: "atRoot") == .dword(1))
        #expect(try await h.hive.queryValue(key: path(#"Root\X\Y"#), name: "inY") == .string("y"))
        #expect(try await h.hive.queryValue(key: path(#"Root\Z"#), name: "inZ") == .qword(3))
        #expect(try await h.hive.queryValue(key: path(#"Root\X"#), name: "inX") == .binary([1]))
    }

    @Test("A failing batch changes nothing and names the failing command")
    func batchAllOrNothing() async throws {
        let h = try HiveHarness()
        try h.apply(.setValue(key: path("R"), name: "keep", value: .dword(7), createKey: true))
        let before = try await h.export()
        let batch = HiveCommand.batch(root: try path("R"), commands: [
            .setValue(name: "new", value: .dword(1)),
            .createKey(try path("Sub")),
            .deleteKey(try path("Sub")),
            .setValue(name: "after delete", value: .dword(2)),
        ])
        let error = try h.expectFailure(batch, .invalidParameter)
        #expect(error?.failedCommand == 3)
        #expect(try await h.export() == before)
        #expect(try h.hive.state().appliedIndex == h.index)
        // A missing batch root fails before the first command.
        let missingRoot = try h.expectFailure(.batch(root: try path("Nope"), commands: [.deleteValue(name: "x")]), .fileNotFound)
        #expect(missingRoot?.failedCommand == -1)
        // DELETE_VALUE after DELETE_KEY is refused like SET_VALUE.
        let deleteValue = try h.expectFailure(
            .batch(root: try path("R"), commands: [.deleteKey(try path("Sub")), .deleteValue(name: "keep")]), .invalidParameter)
        #expect(deleteValue?.failedCommand == 1)
        #expect(try await h.export() == before)
    }

    @Test("The applied index advances in the same transaction as the change, failures included")
    func appliedIndex() throws {
        let h = try HiveHarness()
        try h.apply(.createKey(path("A")))
        try h.expectFailure(.deleteKey(path("B"), recursive: false), .fileNotFound)
        let outcomes = try h.hive.apply([
            Hive.Committed(index: 3, term: 2, command: nil),
            Hive.Committed(index: 4, term: 2, command: .createKey(try path("C"))),
        ])
        #expect(outcomes == [.done, .keyCreated])
        let state = try h.hive.state()
        #expect(state.appliedIndex == 4)
        #expect(state.appliedTerm == 2)
    }

    @Test("Export lists the subtree with every type, and equal hives export equal bytes")
    func exportEquality() async throws {
        let first = try HiveHarness()
        let second = try HiveHarness()
        let values: [(String, RegistryValue)] = [
            ("sz", .string("s")), ("esz", .expandString("%a%")), ("msz", .multiString(["a", "b"])), ("dw", .dword(1)),
            ("qw", .qword(2)), ("bin", .binary([3])), ("none", .none([])),
        ]
        for (name, value) in values { try first.apply(.setValue(key: path(#"T\U"#), name: name, value: value, createKey: true)) }
        for (name, value) in values.reversed() { try second.apply(.setValue(key: path(#"T\U"#), name: name, value: value, createKey: true)) }
        #expect(try await first.export() == second.export())
        let subtree = try await first.hive.export(path("T"))
        #expect(subtree.valueCount == 7)
        let counts = try await first.hive.counts()
        #expect(counts.keys == 2 && counts.values == 7)
    }

    @Test("Cached key ids never outlive a deleted key or a rolled-back batch")
    func keyIDCacheInvalidation() async throws {
        let h = try HiveHarness()
        try h.apply(.setValue(key: path(#"A\B\C"#), name: "v", value: .dword(1), createKey: true))
        // A batch that creates X\\Y (caching its id) and then fails is rolled back entirely.
        try h.expectFailure(.batch(root: .root, commands: [
            .createKey(try path(#"X\Y"#)), .setValue(name: "v", value: .dword(2)),
            .deleteKey(try path("Z")), .setValue(name: "fails", value: .dword(3)),
        ]), .invalidParameter)
        try h.expectFailure(.setValue(key: path(#"X\Y"#), name: "v", value: .dword(4), createKey: false), .fileNotFound)
        // A deleted subtree's ids are forgotten: writing below it again creates fresh keys.
        try h.apply(.deleteKey(path("A"), recursive: true))
        try h.expectFailure(.setValue(key: path(#"A\B\C"#), name: "v", value: .dword(5), createKey: false), .fileNotFound)
        #expect(try h.apply(.createKey(path(#"A\B\C"#))) == .keyCreated)
        try h.apply(.setValue(key: path(#"a\b\c"#), name: "v", value: .dword(6), createKey: false))
        #expect(try await h.hive.queryValue(key: path(#"A\B\C"#), name: "v") == .dword(6))
        let counts = try await h.hive.counts()
        #expect(counts.keys == 3 && counts.values == 1)
    }
}
