import ClusDBBackup
import ClusDBModel
import ClusDBNode
import ClusDBRaft
import ClusDBStore
import ClusDBTestSupport
import Foundation
import Testing

/// Goal: a data directory and a backup written by release 1 — before `clusdb serve` ran on the
/// Raft core, so without `raft.state` and without no-op entries — still open, verify and restore
/// (issue 10, "Storage for Raft"). Method: files the release-1 binary wrote
/// (`Scripts/make-release1-fixture.sh`; the hive exported by that binary at the backup and at
/// the end), opened by the current node, backup verifier and restore.
@Suite("Upgrade: a release-1 data directory and backup open, verify and restore")
struct UpgradeTests {
    /// The fixture unpacked into `dir`: `data/`, `backup/`, `at-backup.json`, `final.json`.
    static func unpack(into dir: TemporaryDirectory) throws {
        let archive = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/release1.tar.gz")
        let tar = Process()
        tar.executableURL = URL(fileURLWithPath: "/usr/bin/tar")
        tar.arguments = ["-C", dir.path, "-xzf", archive.path]
        try tar.run()
        tar.waitUntilExit()
        try #require(tar.terminationStatus == 0, "tar unpacks \(archive.path)")
    }

    /// A hive export as a JSON object, to compare with what release 1's `clusdb reg export` printed.
    static func object(_ bytes: [UInt8]) throws -> NSDictionary {
        try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? NSDictionary)
    }

    static func object(file path: String) throws -> NSDictionary {
        try object([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
    }

    static func export(_ node: ClusterNode) async throws -> NSDictionary {
        try object(try await ClusterNodeTests.applied(node).export(.root).jsonBytes())
    }

    static func configuration(_ path: String) -> NodeConfiguration {
        NodeConfiguration(
            dataDirectory: path, nodeName: "node1", clusterName: "upgrade", clientAddress: "127.0.0.1:0", peerAddress: "127.0.0.1:0")
    }

    @Test("A release-1 data directory starts with every write, gains raft.state in a term past its own, and keeps working")
    func dataDirectory() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try Self.unpack(into: dir)
        let data = dir.file("data")
        #expect(try RaftHardStateFile.read(in: data) == nil, "release 1 wrote no raft.state")
        let (oldLog, _) = try QuorumLog.open(directory: data + "/quorum/log")
        let oldLast = try #require(oldLog.lastIndex)
        let oldTerm = oldLog.lastTerm
        oldLog.close()

        let node = try ClusterNode(configuration: Self.configuration(data), logger: ClusterNodeTests.logger)
        #expect(try await Self.export(node) == (try Self.object(file: dir.file("final.json"))), "every release-1 write is there")
        let hardState = try #require(try RaftHardStateFile.read(in: data), "the first election wrote raft.state")
        #expect(hardState.term == oldTerm + 1 && hardState.vote == 1, "\(hardState)")
        #expect(node.status.commitIndex == oldLast + 1, "the release-1 log, then this term's no-op")
        let written = try await ClusterNodeTests.set(node, #"After\Upgrade"#, "v", .dword(2))
        #expect(written.index == oldLast + 2)
        node.stop()

        let again = try ClusterNode(configuration: Self.configuration(data), logger: ClusterNodeTests.logger)
        defer { again.stop() }
        #expect(try await ClusterNodeTests.applied(again).queryValue(key: try KeyPath(#"After\Upgrade"#), name: "v") == .dword(2))
        #expect(again.status.term == oldTerm + 2)
    }

    @Test("A release-1 data directory without its hive is rebuilt from the checkpoint and the log, replayed through the derived commit index")
    func dataDirectoryWithoutHive() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try Self.unpack(into: dir)
        let data = dir.file("data")
        for suffix in ["", "-wal", "-shm"] { try FileSystem.removeFile(data + "/hive.sqlite" + suffix) }
        let node = try ClusterNode(configuration: Self.configuration(data), logger: ClusterNodeTests.logger)
        defer { node.stop() }
        #expect(node.status.checkpointIndex < node.status.commitIndex - 1, "the log past the checkpoint was replayed")
        #expect(try await Self.export(node) == (try Self.object(file: dir.file("final.json"))))
    }

    @Test("A release-1 backup verifies and restores, into a new directory and over an upgraded one, whose term it never takes back")
    func backup() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try Self.unpack(into: dir)
        let backup = dir.file("backup")
        let verified = try BackupVerifier.verify(backup)
        let atBackup = try Self.object(file: dir.file("at-backup.json"))

        let fresh = dir.file("fresh")
        _ = try ClusterRestore.run(RestoreRequest(backupDirectory: backup, dataDirectory: fresh))
        #expect(try RaftHardStateFile.read(in: fresh) == nil, "a restore writes no hard state: start-up derives it")
        do {
            let node = try ClusterNode(configuration: Self.configuration(fresh), logger: ClusterNodeTests.logger)
            defer { node.stop() }
            #expect(try await Self.export(node) == atBackup)
            #expect(node.status.commitIndex == verified.manifest.lastIndex + 1)
        }

        // Over the release-1 data directory once it ran on the core a few times (it has
        // raft.state now, terms past anything node.json or the backup records): the old hard
        // state goes, and the restored node starts in a term past it — terms never go back.
        let upgraded = dir.file("data")
        for start in 0..<4 {
            let node = try ClusterNode(configuration: Self.configuration(upgraded), logger: ClusterNodeTests.logger)
            _ = try await ClusterNodeTests.set(node, #"Lost\On"#, "restore\(start)", .dword(1))
            node.stop()
        }
        let before = try #require(try RaftHardStateFile.read(in: upgraded))
        _ = try ClusterRestore.run(RestoreRequest(backupDirectory: backup, dataDirectory: upgraded))
        #expect(try RaftHardStateFile.read(in: upgraded) == nil, "the restore removed the old history's hard state")
        let node = try ClusterNode(configuration: Self.configuration(upgraded), logger: ClusterNodeTests.logger)
        defer { node.stop() }
        #expect(try await Self.export(node) == atBackup)
        #expect(node.status.term > before.term)
        let written = try await ClusterNodeTests.set(node, #"After\Restore"#, "v", .dword(3))
        #expect(written.index == verified.manifest.lastIndex + 2)
    }
}
