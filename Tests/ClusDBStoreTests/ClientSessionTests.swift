import ClusDBModel
@testable import ClusDBStore
import Foundation
import GRDB
import Testing

@Suite("Client sessions: a retried write is applied once and answered with its first outcome")
struct ClientSessionTests {
    /// A hive and the next index to apply at.
    final class Applier {
        let hive: Hive
        var index: UInt64 = 0

        init(rules: SessionRules = .standard) throws {
            hive = try Hive.inMemory(sessionRules: rules)
        }

        @discardableResult
        func apply(_ command: HiveCommand?) throws -> CommandOutcome {
            index += 1
            return try hive.apply([Hive.Committed(index: index, term: 1, command: command)])[0]
        }

        func value(_ name: String) async throws -> RegistryValue? {
            try? await hive.queryValue(key: try KeyPath("Sessions"), name: name)
        }

        func sessionClients() throws -> [Int64] {
            try hive.database.read { db in try Int64.fetchAll(db, sql: "SELECT client FROM hive_session ORDER BY client") }
        }

        func sessionCount() throws -> Int {
            try hive.database.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM hive_session") ?? 0 }
        }
    }

    static func set(_ name: String, _ text: String) throws -> HiveCommand {
        .setValue(key: try KeyPath("Sessions"), name: name, value: .string(text), createKey: true)
    }

    static func tagged(_ client: UInt64, _ sequence: UInt64, _ command: HiveCommand) -> HiveCommand {
        .sessioned(ClientSession(client: client, sequence: sequence), command)
    }

    @Test("A retry of the same sequence changes nothing, even after another client wrote, and gets the first outcome")
    func retryAppliedOnce() async throws {
        let applier = try Applier()
        #expect(try applier.apply(Self.tagged(7, 1, try Self.set("v", "first"))) == .done)
        try applier.apply(Self.tagged(8, 1, try Self.set("v", "other client")))
        #expect(try applier.apply(Self.tagged(7, 1, try Self.set("v", "first"))) == .done)
        #expect(try await applier.value("v") == .string("other client"), "the retry was not applied again")
        #expect(try applier.apply(Self.tagged(7, 2, try Self.set("v", "second"))) == .done)
        #expect(try await applier.value("v") == .string("second"))
    }

    @Test("The same sequence with another command is refused with ERROR_INVALID_PARAMETER, changes nothing, and the true retry still gets its first outcome")
    func reusedSequenceRefused() async throws {
        let applier = try Applier()
        #expect(try applier.apply(Self.tagged(5, 1, try Self.set("v", "first"))) == .done)
        guard case .failed(let error) = try applier.apply(Self.tagged(5, 1, try Self.set("v", "another"))) else {
            Issue.record("a reused sequence number was answered as if its command had been applied")
            return
        }
        #expect(error.code == .invalidParameter)
        #expect(error.message.contains("another command"), "\(error.message)")
        #expect(try await applier.value("v") == .string("first"), "the other command changed nothing")
        #expect(try applier.apply(Self.tagged(5, 1, try Self.set("v", "first"))) == .done, "the true retry is answered as before")
        #expect(try await applier.value("v") == .string("first"))
        #expect(try applier.apply(Self.tagged(5, 2, try Self.set("v", "second"))) == .done, "the session goes on")
        #expect(try await applier.value("v") == .string("second"))
    }

    @Test("A hive whose session table has no command check gains the column; its old rows answer retries unchecked")
    func sessionTableWithoutCommandCheckUpgrades() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("clusdb-session-\(UInt64.random(in: 0...UInt64.max))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/hive.sqlite"
        // The session table as the first build with sessions wrote it, with one remembered write.
        let applier = try Applier()
        #expect(try applier.apply(Self.tagged(9, 1, try Self.set("v", "old"))) == .done)
        _ = try ClusterCheckpoints.writeImage(of: applier.hive, to: path)
        let old = try DatabaseQueue(path: path)
        try await old.write { db in try db.execute(sql: "ALTER TABLE hive_session DROP COLUMN command_crc") }
        try old.close()
        let hive = try Hive.open(path: path)
        defer { hive.close() }
        let columns = try await hive.database.read { db in try String.fetchAll(db, sql: "SELECT name FROM pragma_table_info('hive_session')") }
        #expect(columns.contains("command_crc"))
        let outcomes = try hive.apply([
            Hive.Committed(index: applier.index + 1, term: 1, command: Self.tagged(9, 1, try Self.set("v", "not the same"))),
            Hive.Committed(index: applier.index + 2, term: 1, command: Self.tagged(9, 2, try Self.set("v", "new"))),
            Hive.Committed(index: applier.index + 3, term: 1, command: Self.tagged(9, 2, try Self.set("v", "not the same"))),
        ])
        #expect(outcomes[0] == .done, "a row written before the check is not checked")
        #expect(outcomes[1] == .done)
        guard case .failed(let error) = outcomes[2] else {
            Issue.record("a row written after the upgrade was not checked")
            return
        }
        #expect(error.code == .invalidParameter)
        #expect(try await hive.queryValue(key: try KeyPath("Sessions"), name: "v") == .string("new"))
    }

    @Test("A failed first outcome is answered again, although the retry would now succeed")
    func firstOutcomeKept() throws {
        let applier = try Applier()
        let delete = HiveCommand.deleteValue(key: try KeyPath("Sessions"), name: "missing")
        guard case .failed(let first) = try applier.apply(Self.tagged(3, 1, delete)) else {
            Issue.record("deleting a missing value fails")
            return
        }
        try applier.apply(Self.set("missing", "now here"))
        #expect(try applier.apply(Self.tagged(3, 1, delete)) == .failed(first))
    }

    @Test("An older sequence is refused with ERROR_INVALID_PARAMETER and changes nothing")
    func olderRefused() async throws {
        let applier = try Applier()
        try applier.apply(Self.tagged(5, 4, try Self.set("v", "four")))
        guard case .failed(let error) = try applier.apply(Self.tagged(5, 3, try Self.set("v", "three"))) else {
            Issue.record("an older sequence is refused")
            return
        }
        #expect(error.code == .invalidParameter)
        #expect(try await applier.value("v") == .string("four"))
    }

    @Test("A batch in a session is applied once; a retry of a failed batch keeps its failing command's index")
    func batches() async throws {
        let applier = try Applier()
        let batch = HiveCommand.batch(root: try KeyPath("Sessions"), commands: [.setValue(name: "b", value: .dword(1))])
        try applier.apply(.createKey(try KeyPath("Sessions")))
        try applier.apply(Self.tagged(9, 1, batch))
        try applier.apply(Self.set("b", "changed"))
        try applier.apply(Self.tagged(9, 1, batch))
        #expect(try await applier.value("b") == .string("changed"))
        let failing = HiveCommand.batch(root: try KeyPath("Nowhere"), commands: [.setValue(name: "x", value: .dword(1))])
        let first = try applier.apply(Self.tagged(9, 2, failing))
        guard case .failed(let error) = first else {
            Issue.record("a batch on a missing root fails")
            return
        }
        #expect(error.failedCommand == -1)
        #expect(try applier.apply(Self.tagged(9, 2, failing)) == first)
    }

    @Test("Sessions idle for idleEntries are forgotten (decided by indexes), and sweeps bound their number")
    func expiry() async throws {
        let rules = SessionRules(idleEntries: 10, sessionsMax: 3, sweepEveryEntries: 5)
        let applier = try Applier(rules: rules)
        try applier.apply(Self.tagged(1, 1, try Self.set("v", "one")))  // index 1
        for _ in 0..<10 { try applier.apply(nil) }  // indexes 2...11
        try applier.apply(Self.set("v", "between"))  // index 12
        // Index 13: session 1 was last used at 1 < 13 - 10: forgotten, so the retry applies again.
        try applier.apply(Self.tagged(1, 1, try Self.set("v", "one")))
        #expect(try await applier.value("v") == .string("one"))
        // Six clients; the sweep at index 20 keeps the three used last.
        for client in UInt64(10)...15 { try applier.apply(Self.tagged(client, 1, try Self.set("c\(client)", "x"))) }  // 14...19
        try applier.apply(Self.tagged(16, 1, try Self.set("c16", "x")))  // 20: sweep
        #expect(try applier.sessionCount() == 3)
        #expect(try applier.sessionClients() == [14, 15, 16])
    }

    @Test("Sessions are part of a checkpoint image: a retry against a hive restored from it is still applied once")
    func survivesCheckpoint() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("clusdb-session-\(UInt64.random(in: 0...UInt64.max))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let applier = try Applier()
        try applier.apply(Self.tagged(4, 1, try Self.set("v", "once")))
        let image = directory + "/image.sqlite"
        _ = try ClusterCheckpoints.writeImage(of: applier.hive, to: image)
        let restored = try Hive.open(path: image)
        defer { restored.close() }
        try restored.apply([Hive.Committed(index: applier.index + 1, term: 1, command: try Self.set("v", "later"))])
        try restored.apply([Hive.Committed(index: applier.index + 2, term: 1, command: Self.tagged(4, 1, try Self.set("v", "once")))])
        #expect(try await restored.queryValue(key: try KeyPath("Sessions"), name: "v") == .string("later"))
    }

    @Test("Session writes and stored outcomes round-trip their encodings; malformed ones are refused")
    func encodings() throws {
        let command = Self.tagged(UInt64.max, 12, try Self.set("v", "x"))
        #expect(try HiveCommand(encoded: command.encoded()) == command)
        for outcome in [CommandOutcome.done, .keyCreated, .keyOpened, .failed(ClusterError(.fileNotFound, "gone", failedCommand: -1)), .failed(ClusterError(.accessDenied, "no"))] {
            #expect(try CommandOutcome(encoded: outcome.encoded()) == outcome)
        }
        #expect(throws: ClusterError.self) { try HiveCommand(encoded: Self.tagged(0, 1, try Self.set("v", "x")).encoded()) }
        #expect(throws: ClusterError.self) { try HiveCommand(encoded: Self.tagged(1, 0, try Self.set("v", "x")).encoded()) }
        #expect(throws: ClusterError.self) { try HiveCommand(encoded: Self.tagged(1, 1, Self.tagged(2, 1, try Self.set("v", "x"))).encoded()) }
        #expect(throws: ClusterError.self) { try CommandOutcome(encoded: [4]) }
        #expect(throws: ClusterError.self) { try CommandOutcome(encoded: [0, 0]) }
    }
}
