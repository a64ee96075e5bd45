import ClusDBModel
import ClusDBNode
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
        do {
            let node = try ClusterNode(configuration: configuration, logger: ClusterNodeTests.logger)
            _ = try await ClusterNodeTests.set(node, "Quorum", "MaxQuorumLogSize", .dword(UInt32(Limits.maxQuorumLogSizeMin)))
            node.stop()
        }
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
}
