import ClusDBModel
import ClusDBNode
import ClusDBRaft
import ClusDBStore
import ClusDBTestSupport
import Foundation
import Testing

/// A damaged newest checkpoint must not stop a node that still holds an intact older one: the
/// log is kept from the older kept checkpoint on, start-up passes over the damaged file (and
/// renames it aside), and the node writes a fresh checkpoint before it serves.
@Suite("Cluster node: a damaged newest checkpoint falls back to the older one")
struct CheckpointFallbackTests {
    enum Damage: String, CaseIterable, CustomTestStringConvertible {
        case flipHeaderByte, flipMiddleByte, truncate, empty
        var testDescription: String { rawValue }
    }

    @Test("The node starts from the older checkpoint plus the log, serves every answered write, and writes a fresh checkpoint",
          arguments: Damage.allCases)
    func fallback(_ damage: Damage) async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let configuration = ClusterNodeTests.configuration(dir)
        var answered: [String: RegistryValue] = [:]
        try await ClusterNodeTests.setSmallestLogLimit(configuration)
        let node = try ClusterNode(configuration: configuration, logger: ClusterNodeTests.logger)
        var round = 0
        // Write until two checkpoints exist and the log has been truncated behind the older.
        func enough() throws -> Bool {
            try node.status.checkpointIndex > 0 && ClusterCheckpoints.list(in: dir.file("data/quorum")).count >= 2
                && (node.status.logFirstIndex ?? 1) > 1
        }
        while try !enough() {
            let value = RegistryValue.string(String(repeating: "c", count: 2_000) + "\(round)")
            _ = try await ClusterNodeTests.set(node, #"D\\#(round % 5)"#, "v\(round)", value)
            answered[#"D\\#(round % 5)|v\#(round)"#] = value
            round += 1
            try #require(round < 5_000, "no second checkpoint")
        }
        node.stop()
        let checkpoints = try ClusterCheckpoints.list(in: dir.file("data/quorum"))
        let newest = try #require(checkpoints.last)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: newest.path)))
        switch damage {
        case .flipHeaderByte: bytes[20] ^= 0x40
        case .flipMiddleByte: bytes[bytes.count / 2] ^= 0x40
        case .truncate: bytes.removeLast(3)
        case .empty: bytes = []
        }
        try Data(bytes).write(to: URL(fileURLWithPath: newest.path))
        // The live hive is lost too, so the checkpoint is what the node must start from.
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: dir.file("data/hive.sqlite" + suffix)) }

        let restarted = try ClusterNode(configuration: configuration, logger: ClusterNodeTests.logger)
        defer { restarted.stop() }
        let hive = try await ClusterNodeTests.applied(restarted)
        for (path, value) in answered {
            let parts = path.split(separator: "|")
            #expect(try await hive.queryValue(key: try KeyPath(String(parts[0])), name: String(parts[1])) == value, "\(path)")
        }
        let after = try ClusterCheckpoints.list(in: dir.file("data/quorum"))
        #expect(after.count == 2)
        #expect(after.last!.sequence > newest.sequence, "a fresh checkpoint was written")
        #expect(FileManager.default.fileExists(atPath: newest.path + ClusterCheckpoints.damagedSuffix), "the damaged file is set aside")
        #expect(try ClusterCheckpoints.validate(path: after.last!.path, fullIntegrityCheck: true).appliedIndex == restarted.status.commitIndex)
    }

    /// Writes until `condition` holds (bounded), 2,000-byte values.
    static func write(_ node: ClusterNode, from round: inout Int, until condition: () throws -> Bool) async throws {
        while try !condition() {
            _ = try await ClusterNodeTests.set(node, #"D\\#(round % 5)"#, "v\(round)", .string(String(repeating: "c", count: 2_000)))
            round += 1
            try #require(round < 10_000, "the condition never held")
        }
    }

    @Test("The node's hive records its one member, and every checkpoint carries it (docs/FORMATS.md, Membership)")
    func membershipInCheckpoints() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let configuration = ClusterNodeTests.configuration(dir)
        try await ClusterNodeTests.setSmallestLogLimit(configuration)
        let node = try ClusterNode(configuration: configuration, logger: ClusterNodeTests.logger)
        var round = 0
        while try ClusterCheckpoints.list(in: dir.file("data/quorum")).isEmpty {
            _ = try await ClusterNodeTests.set(node, "M", "v\(round)", .string(String(repeating: "m", count: 2_000)))
            round += 1
            try #require(round < 5_000, "no checkpoint")
        }
        node.stop()
        let one = RaftConfiguration(voters: [1])
        for (_, path) in try ClusterCheckpoints.list(in: dir.file("data/quorum")) {
            #expect(try ClusterCheckpoints.configuration(path: path) == one, "\(path)")
        }
        let hive = try Hive.openReadOnly(path: dir.file("data/hive.sqlite"))
        defer { hive.close() }
        #expect(try hive.configuration() == one)
    }

    @Test("A checkpoint removed while the node runs never lets the log be truncated past the older one kept on disk")
    func truncationFollowsTheDisk() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let configuration = ClusterNodeTests.configuration(dir)
        let quorum = dir.file("data/quorum")
        try await ClusterNodeTests.setSmallestLogLimit(configuration)
        let node = try ClusterNode(configuration: configuration, logger: ClusterNodeTests.logger)
        defer { node.stop() }
        var round = 0
        try await Self.write(node, from: &round) { try ClusterCheckpoints.list(in: quorum).count >= 2 }
        // What a backup does with a newest checkpoint that fails its check: remove it. Only the
        // older one is left on disk, while the node still remembers the removed one.
        let removed = try #require(try ClusterCheckpoints.list(in: quorum).last)
        try FileSystem.removeFile(removed.path)
        try FileSystem.removeFile(removed.path + ClusterCheckpoints.checksumSuffix)
        #expect(try ClusterCheckpoints.list(in: quorum).count == 1)
        // Two more checkpoints: after each, the log must still reach back to the older kept one.
        for _ in 0..<2 {
            let before = try ClusterCheckpoints.list(in: quorum).last?.sequence ?? 0
            try await Self.write(node, from: &round) { (try ClusterCheckpoints.list(in: quorum).last?.sequence ?? 0) > before }
            _ = try await ClusterNodeTests.set(node, "D", "after", .dword(UInt32(round)))  // lets the log stage truncate
            let older = try #require(try ClusterCheckpoints.olderKeptIndex(in: quorum))
            #expect(node.status.logFirstIndex ?? 0 <= older + 1, "the log was truncated past the older kept checkpoint")
        }
    }

    @Test("A damaged checkpoint set aside by a start that then failed is replaced by the next start")
    func freshCheckpointAfterAFailedStart() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let configuration = ClusterNodeTests.configuration(dir)
        let quorum = dir.file("data/quorum")
        do {
            let node = try ClusterNode(configuration: configuration, logger: ClusterNodeTests.logger)
            _ = try await ClusterNodeTests.set(node, "Quorum", "MaxQuorumLogSize", .dword(UInt32(Limits.maxQuorumLogSizeMin)))
            var round = 0
            try await Self.write(node, from: &round) { try ClusterCheckpoints.list(in: quorum).count >= 2 }
            node.stop()
        }
        // The state a start leaves when it set the damaged newest checkpoint aside and then could
        // not write the fresh one (a full disk, say): the set-aside file is the newest number.
        let newest = try #require(try ClusterCheckpoints.list(in: quorum).last)
        try FileSystem.renameFile(newest.path, to: newest.path + ClusterCheckpoints.damagedSuffix, site: SyncSite("test"))
        try FileSystem.removeFile(newest.path + ClusterCheckpoints.checksumSuffix)
        #expect(try ClusterCheckpoints.list(in: quorum).count == 1)
        let node = try ClusterNode(configuration: configuration, logger: ClusterNodeTests.logger)
        defer { node.stop() }
        let after = try ClusterCheckpoints.list(in: quorum)
        #expect(after.count == 2, "a fresh checkpoint restores the fallback")
        #expect(after.last!.sequence > newest.sequence)
    }
}
