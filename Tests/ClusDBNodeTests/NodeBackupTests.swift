import ClusDBBackup
import ClusDBModel
import ClusDBNode
import ClusDBStore
import ClusDBTestSupport
import Foundation
import Testing

@Suite("Cluster node: checkpoints cover large writes; online backups")
struct NodeBackupTests {
    @Test("One write larger than MaxQuorumLogSize is covered by the checkpoint it triggers")
    func largeWriteCheckpoint() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let node = try ClusterNode(configuration: ClusterNodeTests.configuration(dir), logger: ClusterNodeTests.logger)
        defer { node.stop() }
        // Over the default MaxQuorumLogSize (4 MiB) in one entry.
        let commands = (0..<5_000).map { BatchCommand.setValue(name: "v\($0)", value: .string(String(repeating: "x", count: 1_000))) }
        let result = try await node.propose(.batch(root: try KeyPath("Big"), commands: [.createKey(try KeyPath("K"))] + commands))
        try await waitUntil("the checkpoint covers the write") { node.status.checkpointIndex >= result.index }
        #expect(node.status.checkpointIndex == result.index)
    }

    @Test("A backup while writes and checkpoints go on holds exactly the state at its index; one backup at a time")
    func backupUnderLoad() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let node = try ClusterNode(configuration: ClusterNodeTests.configuration(dir), logger: ClusterNodeTests.logger)
        _ = try await ClusterNodeTests.set(node, "Quorum", "MaxQuorumLogSize", .dword(UInt32(Limits.maxQuorumLogSizeMin)))
        let writers = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<4 {
                    group.addTask {
                        for round in 0..<300 {
                            _ = try await ClusterNodeTests.set(node, #"Load\W\#(writer)"#, "v\(round)", .string(String(repeating: "y", count: 300)))
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        try await waitUntil("100 writes are committed") { node.status.commitIndex >= 100 }
        // While one backup holds the slot, a second is refused with ERROR_BUSY.
        let pinned = try await node.openBackup()
        do {
            _ = try await node.openBackup()
            Issue.record("a second concurrent backup must be refused")
        } catch {
            #expect(error.code == .busy)
        }
        pinned.close()
        let manifest = try await node.backup(to: dir.file("backup"))
        try await writers.value
        // The state at the backup's index, from the node's own log and checkpoints.
        let restored = dir.file("restored")
        _ = try ClusterRestore.run(RestoreRequest(backupDirectory: dir.file("backup"), dataDirectory: restored))
        let hive = try Hive.open(path: restored + "/hive.sqlite")
        defer { hive.close() }
        #expect(try hive.state().appliedIndex == manifest.lastIndex)
        let counts = try hive.summary()
        #expect(counts.keys == manifest.keys && counts.values == manifest.values)
        #expect(manifest.lastIndex > 1)
        node.stop()
    }
}
