#if canImport(Glibc)
import Glibc
#endif
import ClusDBBackup
import ClusDBModel
import ClusDBStore
import ClusDBTestSupport
import Foundation
import Testing

@Suite("Restore: point in time, dry run, guards, all-or-nothing")
struct RestoreTests {
    /// Opens the restored data directory's hive and exports it.
    static func restoredExport(_ data: String) throws -> [UInt8] {
        let hive = try Hive.open(path: FileSystem.join(data, "hive.sqlite"))
        defer { hive.close() }
        return try BackupFixture.exportBytes(hive)
    }

    static func identity(_ data: String) throws -> NodeIdentity {
        try JSONDecoder().decode(NodeIdentity.self, from: Data(contentsOf: URL(fileURLWithPath: FileSystem.join(data, "node.json"))))
    }

    @Test("Restore at every index of the backup gives exactly the state at that index")
    func pointInTime() throws {
        let fixture = try BackupFixture()
        let backup = try fixture.writeBackup()
        for target in UInt64(5)...fixture.lastIndex {
            let data = fixture.root.file("data-\(target)")
            let report = try ClusterRestore.run(RestoreRequest(backupDirectory: backup, dataDirectory: data, toIndex: target))
            #expect(report.restoredIndex == target)
            #expect(try Self.restoredExport(data) == fixture.exports[target], "state at \(target)")
            // The restored storage opens like a node's: a checkpoint and a log that continue it.
            let (log, _) = try QuorumLog.open(directory: FileSystem.join(data, "quorum/log"))
            #expect((log.lastIndex ?? 5) == target)
            #expect(try ClusterCheckpoints.list(in: FileSystem.join(data, "quorum")).count == 1)
            log.close()
        }
        do {
            _ = try ClusterRestore.run(RestoreRequest(backupDirectory: backup, dataDirectory: fixture.root.file("x"), toIndex: 4))
            Issue.record("an index before the checkpoint is outside the backup")
        } catch {
            #expect(error.code == .invalidParameter)
            #expect(error.message.contains("covers indexes 5 through \(fixture.lastIndex)"))
        }
        #expect(!FileSystem.exists(fixture.root.file("x")))
    }

    @Test("The restore generation and term rise; the node keeps its id")
    func generationAndIdentity() throws {
        let fixture = try BackupFixture()
        let backup = try fixture.writeBackup()
        let data = fixture.root.file("target")
        let first = try ClusterRestore.run(RestoreRequest(backupDirectory: backup, dataDirectory: data))
        let identity = try Self.identity(data)
        #expect(first.restoreGeneration == 1)
        #expect(identity.restoreGeneration == 1)
        #expect(identity.clusterID == fixture.clusterID)
        #expect(identity.currentTerm > 1 + fixture.lastIndex / 7)
        let second = try ClusterRestore.run(RestoreRequest(backupDirectory: backup, dataDirectory: data, toIndex: 6))
        #expect(second.restoreGeneration == 2)
        #expect(second.previousIndex == fixture.lastIndex)
        #expect(try Self.identity(data).nodeID == identity.nodeID)
        #expect(try Self.identity(data).currentTerm > identity.currentTerm)
    }

    @Test("A dry run counts the changes and touches nothing")
    func dryRun() throws {
        let fixture = try BackupFixture()
        let backup = try fixture.writeBackup()
        let data = fixture.root.file("target")
        // Into a missing data directory: everything is added, nothing is created.
        let fresh = try ClusterRestore.run(RestoreRequest(backupDirectory: backup, dataDirectory: data, dryRun: true))
        #expect(fresh.changes?.keysAdded == fresh.keys)
        #expect(fresh.changes?.valuesAdded == fresh.values)
        #expect(!FileSystem.exists(data))
        _ = try ClusterRestore.run(RestoreRequest(backupDirectory: backup, dataDirectory: data, toIndex: 5))
        let before = BackupFixture.snapshot(data)
        let report = try ClusterRestore.run(RestoreRequest(backupDirectory: backup, dataDirectory: data, dryRun: true))
        #expect(BackupFixture.snapshot(data) == before)
        #expect(report.dryRun)
        #expect(report.previousIndex == 5)
        #expect(report.restoredIndex == fixture.lastIndex)
        let atFive = try Self.count(fixture.exports[5]!)
        let atEnd = try Self.count(fixture.exports[fixture.lastIndex]!)
        let changes = try #require(report.changes)
        #expect(changes.keysAdded - changes.keysRemoved == atEnd.keys - atFive.keys)
        #expect(changes.valuesAdded - changes.valuesRemoved == atEnd.values - atFive.values)
        // Groups, Groups\G1, Load, Load\K and Load\K\0...4 are new; Load\K\5 came and went.
        #expect(changes.keysAdded == 9)
        #expect(changes.keysRemoved == 0)
        // Back to the end and a dry run to the same state: no changes.
        _ = try ClusterRestore.run(RestoreRequest(backupDirectory: backup, dataDirectory: data))
        let same = try ClusterRestore.run(RestoreRequest(backupDirectory: backup, dataDirectory: data, dryRun: true))
        #expect(same.changes == HiveDifference())
        let back = try ClusterRestore.run(RestoreRequest(backupDirectory: backup, dataDirectory: data, toIndex: 5, dryRun: true))
        #expect(back.changes?.keysRemoved == 9)
    }

    static func count(_ export: [UInt8]) throws -> (keys: Int, values: Int) {
        let tree = try ExportedKey(jsonBytes: Data(export))
        func walk(_ key: ExportedKey) -> (Int, Int) {
            var keys = 0
            var values = key.values.count
            for (_, child) in key.keys {
                let inner = walk(child)
                keys += 1 + inner.0
                values += inner.1
            }
            return (keys, values)
        }
        let result = walk(tree)
        return (result.0, result.1)
    }

    @Test("Another cluster's data directory is ERROR_QUORUM_DISK_NOT_FOUND unless forced")
    func otherCluster() throws {
        let fixture = try BackupFixture()
        let backup = try fixture.writeBackup()
        let data = fixture.root.file("target")
        try FileSystem.makeDirectories(data)
        let stranger = NodeIdentity(clusterName: "other", clusterID: "other-id", nodeName: "n9", nodeID: "node-9", restoreGeneration: 4)
        try FileSystem.writeAtomically(stranger.jsonBytes(), to: FileSystem.join(data, "node.json"), site: SyncSite("test"))
        let before = BackupFixture.snapshot(data)
        for dryRun in [true, false] {
            do {
                _ = try ClusterRestore.run(RestoreRequest(backupDirectory: backup, dataDirectory: data, dryRun: dryRun))
                Issue.record("another cluster's directory must be refused")
            } catch {
                #expect(error.code == .quorumDiskNotFound)
                #expect(error.message.contains("--force"))
            }
        }
        #expect(BackupFixture.snapshot(data).filter { $0.key != "LOCK" } == before)
        let report = try ClusterRestore.run(RestoreRequest(backupDirectory: backup, dataDirectory: data, force: true))
        #expect(report.previousCluster?.id == "other-id")
        #expect(report.restoreGeneration == 5)
        #expect(try Self.identity(data).clusterID == fixture.clusterID)
    }

    @Test("A data directory locked by a running node is ERROR_SHARING_VIOLATION and untouched")
    func lockedDataDirectory() throws {
        let fixture = try BackupFixture()
        let backup = try fixture.writeBackup()
        let data = fixture.root.file("target")
        _ = try ClusterRestore.run(RestoreRequest(backupDirectory: backup, dataDirectory: data, toIndex: 6))
        let before = BackupFixture.snapshot(data)
        // Another open file description holds the lock, as a running node's does.
        let holder = open(FileSystem.join(data, "LOCK"), O_RDWR)
        #expect(flock(holder, LOCK_EX | LOCK_NB) == 0)
        defer { close(holder) }
        for dryRun in [true, false] {
            do {
                _ = try ClusterRestore.run(RestoreRequest(backupDirectory: backup, dataDirectory: data, dryRun: dryRun))
                Issue.record("a locked data directory must be refused")
            } catch {
                #expect(error.code == .sharingViolation)
            }
        }
        #expect(BackupFixture.snapshot(data) == before)
    }

    @Test("--quorum-path puts the checkpoint and log in a new directory the data directory links to")
    func quorumPath() throws {
        let fixture = try BackupFixture()
        let backup = try fixture.writeBackup()
        let data = fixture.root.file("target")
        let quorum = fixture.root.file("new-disk/quorum")
        try FileSystem.makeDirectories(fixture.root.file("new-disk"))
        _ = try ClusterRestore.run(RestoreRequest(backupDirectory: backup, dataDirectory: data, quorumPath: quorum))
        var info = stat()
        lstat(FileSystem.join(data, "quorum"), &info)
        #expect((info.st_mode & S_IFMT) == S_IFLNK)
        #expect(try FileSystem.list(quorum) == ["chk0001.tmp", "log"])
        #expect(try Self.restoredExport(data) == fixture.exports[fixture.lastIndex])
        // Not empty any more: a second restore to it is refused; relative paths too.
        do {
            _ = try ClusterRestore.run(RestoreRequest(backupDirectory: backup, dataDirectory: fixture.root.file("d2"), quorumPath: quorum))
            Issue.record("a non-empty quorum path must be refused")
        } catch {
            #expect(error.code == .alreadyExists)
        }
        do {
            _ = try ClusterRestore.run(RestoreRequest(backupDirectory: backup, dataDirectory: fixture.root.file("d2"), quorumPath: "rel/q"))
            Issue.record("a relative quorum path must be refused")
        } catch {
            #expect(error.code == .invalidParameter)
        }
    }

    @Test("Interrupted restores: without the commit record the old directory stands; with it the new one")
    func journalRecovery() throws {
        let fixture = try BackupFixture()
        let backup = try fixture.writeBackup()
        let data = fixture.root.file("target")
        _ = try ClusterRestore.run(RestoreRequest(backupDirectory: backup, dataDirectory: data, toIndex: 5))
        let old = BackupFixture.snapshot(data)
        // Staging left behind by a restore killed before its commit point.
        let staging = RestoreJournal.stagingPath(data)
        try FileSystem.makeDirectories(FileSystem.join(staging, "quorum/log"))
        try FileSystem.writeAtomically([1, 2, 3], to: FileSystem.join(staging, "hive.sqlite"), site: SyncSite("test"))
        #expect(try RestoreJournal.recover(data) == .rolledBack)
        #expect(BackupFixture.snapshot(data) == old)
        #expect(try RestoreJournal.recover(data) == .nothing)
        // A complete staging and a commit record, then a crash at each step of the swap: finishing
        // again from there always ends with the restored directory.
        let other = fixture.root.file("other")
        _ = try ClusterRestore.run(RestoreRequest(backupDirectory: backup, dataDirectory: other))
        let restored = BackupFixture.snapshot(other)
        for crashAfterSteps in 0..<4 {
            let copy = fixture.root.file("copy-\(crashAfterSteps)")
            try FileManager.default.copyItem(atPath: data, toPath: copy)
            let stagingCopy = RestoreJournal.stagingPath(copy)
            try FileSystem.makeDirectory(stagingCopy)
            for name in ["hive.sqlite", "node.json"] {
                try FileManager.default.copyItem(atPath: FileSystem.join(other, name), toPath: FileSystem.join(stagingCopy, name))
            }
            try FileManager.default.copyItem(atPath: FileSystem.join(other, "quorum"), toPath: FileSystem.join(stagingCopy, "quorum"))
            try RestoreJournal.commit(copy, RestoreJournal.Commit(quorumPath: nil))
            // Do part of the swap by hand, as a killed restore would have.
            if crashAfterSteps >= 1 {
                unlink(FileSystem.join(copy, "hive.sqlite-wal"))
                rename(FileSystem.join(stagingCopy, "hive.sqlite"), FileSystem.join(copy, "hive.sqlite"))
            }
            if crashAfterSteps >= 2 { try FileSystem.removeTree(FileSystem.join(copy, "quorum")) }
            if crashAfterSteps >= 3 { rename(FileSystem.join(stagingCopy, "quorum"), FileSystem.join(copy, "quorum")) }
            #expect(try RestoreJournal.recover(copy) == .rolledForward)
            var after = BackupFixture.snapshot(copy)
            after["LOCK"] = nil
            var expected = restored
            expected["LOCK"] = nil
            #expect(after == expected, "crash after \(crashAfterSteps) steps")
        }
    }
}
