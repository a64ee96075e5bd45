import ClusDBModel
@testable import ClusDBStore
import Testing

/// Goal: an in-memory image of the hive is a snapshot in full — values, client sessions, the
/// applied index — independent of the hive it came from, and installing one leaves nothing of
/// the old state, not even the apply stage's cached key ids. Method: a hive diverging from its
/// image, then the image installed into a third hive whose keys were numbered differently.
@Suite("Hive images: snapshots of the whole hive in memory")
struct HiveImageTests {
    static func set(_ key: String, _ name: String, _ value: UInt32, session: ClientSession? = nil) throws -> HiveCommand {
        let write = HiveCommand.setValue(key: try KeyPath(key), name: name, value: .dword(value), createKey: true)
        return session.map { .sessioned($0, write) } ?? write
    }

    @Test("An image holds values, sessions and the applied index; installing it replaces everything, cached key ids included")
    func imageRoundTrip() throws {
        let source = try Hive.inMemory()
        let session = ClientSession(client: 5, sequence: 1)
        _ = try source.apply([
            Hive.Committed(index: 1, term: 1, command: try Self.set(#"A\B"#, "v", 1, session: session)),
            Hive.Committed(index: 2, term: 1, command: try Self.set("C", "w", 2)),
        ])
        let image = try source.inMemoryImage()
        // The source moves on; the image does not.
        _ = try source.apply([Hive.Committed(index: 3, term: 2, command: try Self.set("C", "w", 3))])
        #expect(try image.valueBlocking(key: try KeyPath("C"), name: "w") == .dword(2))
        #expect(try image.state().appliedIndex == 2)

        // A replica whose keys got other ids, with state the image does not have.
        let replica = try Hive.inMemory()
        _ = try replica.apply([
            Hive.Committed(index: 1, term: 1, command: try Self.set("Z", "z", 9)),
            Hive.Committed(index: 2, term: 1, command: try Self.set(#"A\B"#, "x", 9)),
        ])
        try replica.install(image: image)
        #expect(try replica.state().appliedIndex == 2 && replica.state().appliedTerm == 1)
        #expect(try replica.valueBlocking(key: try KeyPath("Z"), name: "z") == nil, "nothing of the old state survives")
        #expect(try replica.valueBlocking(key: try KeyPath(#"A\B"#), name: "x") == nil)
        #expect(try replica.exportBlocking(.root) == image.exportBlocking(.root))
        // The session came along: its retry is answered, not applied again.
        _ = try replica.apply([
            Hive.Committed(index: 3, term: 2, command: try Self.set(#"A\B"#, "v", 7)),
            Hive.Committed(index: 4, term: 2, command: try Self.set(#"A\B"#, "v", 1, session: session)),
        ])
        #expect(try replica.valueBlocking(key: try KeyPath(#"A\B"#), name: "v") == .dword(7), "the retry was applied again")
        // Writes below the image's keys resolve the image's ids, not the ones cached before.
        _ = try replica.apply([Hive.Committed(index: 5, term: 2, command: try Self.set(#"A\B"#, "y", 4))])
        let listing = try replica.exportBlocking(try KeyPath(#"A\B"#))
        #expect(listing.values.map(\.name).sorted() == ["v", "y"], "\(listing)")
    }
}
