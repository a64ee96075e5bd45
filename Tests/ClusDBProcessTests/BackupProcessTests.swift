#if canImport(Glibc)
import Glibc
#endif
import ClusAPI
import ClusDBModel
import ClusDBTestSupport
import Foundation
import Synchronization
import Testing

/// Backups and restores end to end, through real `clusdb serve` processes and the CLI.
@Suite("Backup and restore through the service", .serialized)
struct BackupProcessTests {
    /// Runs a CLI command against `endpoint` and expects success.
    @discardableResult
    static func ok(_ endpoint: String?, _ arguments: [String], environment: [String: String] = [:]) throws -> String {
        let result = try runClusdb((endpoint.map { ["--cluster", $0] } ?? []) + arguments, environment: environment)
        #expect(result.status == 0, "clusdb \(arguments.joined(separator: " ")): \(result.stderr)")
        return result.stdout
    }

    /// Runs a CLI command and expects it to fail with `code`.
    static func fails(_ endpoint: String?, _ arguments: [String], code: Win32Error) throws {
        let result = try runClusdb((endpoint.map { ["--cluster", $0] } ?? []) + arguments)
        #expect(result.status == 1, "clusdb \(arguments.joined(separator: " ")) should fail: \(result.stdout)")
        #expect(result.stderr.hasPrefix("clusdb: \(code.name) (\(code.rawValue)): "), "\(arguments): \(result.stderr)")
    }

    /// Sets one value of every type, and a few keys.
    static func populate(_ endpoint: String) throws {
        let values: [(String, String, String, String)] = [
            (#"Resources\{6e3b}\Parameters"#, "Name", "REG_SZ", "web ☃"),
            (#"Resources\{6e3b}\Parameters"#, "Path", "REG_EXPAND_SZ", "%SystemRoot%\\web"),
            (#"Resources\{6e3b}\Parameters"#, "Owners", "REG_MULTI_SZ", #"["node1","node2"]"#),
            (#"Resources\{6e3b}\Parameters"#, "Port", "REG_DWORD", "0x1F90"),
            (#"Resources\{6e3b}\Parameters"#, "Epoch", "REG_QWORD", "18446744073709551615"),
            (#"Resources\{6e3b}\Parameters"#, "Key", "REG_BINARY", "00ff10ab"),
            (#"Resources\{6e3b}\Parameters"#, "Flag", "REG_NONE", "01"),
            (#"Groups\Cluster Group"#, "", "REG_SZ", "default value"),
            (#"Quorum"#, "MaxQuorumLogSize", "REG_DWORD", "4194304"),
        ]
        for (key, name, type, data) in values { try ok(endpoint, ["reg", "set", key, name, type, data]) }
    }

    @Test("Round trip of every value type, streamed and on the quorum owner: the restored export is the same bytes")
    func roundTrip() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let server = try ServerProcess(dataDirectory: dir.file("data"))
        try Self.populate(server.endpoint)
        let exported = try Self.ok(server.endpoint, ["reg", "export"])
        try Self.ok(server.endpoint, ["backup", dir.file("streamed")])
        try Self.ok(server.endpoint, ["backup", dir.file("owner") + "/", "--on-quorum-owner"])
        // More writes after the backups are not in them.
        try Self.ok(server.endpoint, ["reg", "set", "After", "x", "REG_DWORD", "1"])
        server.stop()
        for name in ["streamed", "owner"] {
            let backup = dir.file(name)
            #expect(try Self.ok(nil, ["backup", "verify", backup, "--json"]) == #"{"ok":true,"problem":null}"# + "\n")
            let inspect = try JSONSerialization.jsonObject(with: Data(try Self.ok(nil, ["backup", "inspect", backup, "--json"]).utf8)) as? [String: Any]
            #expect(inspect?["values"] as? Int == 9)
            #expect(inspect?["complete"] as? Bool == true)
            for member in ["formatVersion", "cluster", "checkpointIndex", "lastIndex", "term", "createdAt", "keys", "files"] {
                #expect(inspect?[member] != nil, "inspect --json lacks \(member)")
            }
            let data = dir.file("restored-\(name)")
            try Self.ok(nil, ["restore", backup, "--data-dir", data])
            let restored = try ServerProcess(dataDirectory: data)
            #expect(try Self.ok(restored.endpoint, ["reg", "export"]) == exported)
            let status = try JSONSerialization.jsonObject(with: Data(try Self.ok(restored.endpoint, ["status", "--json"]).utf8)) as? [String: Any]
            #expect(status?["restoreGeneration"] as? Int == 1)
            // The restored node takes writes and restarts with them.
            try Self.ok(restored.endpoint, ["reg", "set", "New", "v", "REG_SZ", "after restore"])
            restored.stop()
            let again = try ServerProcess(dataDirectory: data)
            #expect(try Self.ok(again.endpoint, ["reg", "get", "New", "v"]).contains("after restore"))
            again.stop()
        }
    }

    final class Ledger: Sendable {
        /// Acknowledged writes: value name -> log index.
        let acknowledged = Mutex([String: UInt64]())
        /// Writes attempted (acknowledged or not).
        let attempted = Mutex(Set<String>())
        /// Tells the writers to stop.
        let stop = Mutex(false)
    }

    @Test("Writers run during the backup: the restore holds exactly the writes up to the manifest's index")
    func consistencyUnderLoad() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let server = try ServerProcess(dataDirectory: dir.file("data"))
        let cluster = try await openCluster(server.endpoint)
        defer { cluster.close() }
        // A small MaxQuorumLogSize so checkpoints and log truncation happen during the load too.
        try await cluster.setValue(key: "Quorum", name: "MaxQuorumLogSize", value: .dword(64 << 10), createKey: true)
        let ledger = Ledger()
        let load = Task {
            await withTaskGroup(of: Void.self) { group in
                for writer in 0..<8 {
                    group.addTask {
                        var sequence = 0
                        while !ledger.stop.withLock({ $0 }) {
                            let name = "w\(writer)-\(sequence)"
                            sequence += 1
                            ledger.attempted.withLock { _ = $0.insert(name) }
                            guard let index = try? await cluster.setValue(
                                key: "Load\\W\(writer % 3)", name: name, value: .string(String(repeating: "v", count: 256)), createKey: true)
                            else { continue }
                            ledger.acknowledged.withLock { $0[name] = index }
                        }
                    }
                }
            }
        }
        // Enough writes for checkpoints and truncation before the backup, and writes after its
        // index before the load stops: both are waited for, not timed.
        try await waitUntil("200 writes are answered") { ledger.acknowledged.withLock { $0.count } >= 200 }
        let ackedBeforeBackup = ledger.acknowledged.withLock { $0 }
        let manifest = try await cluster.backupClusterDatabase(to: dir.file("backup"))
        try await waitUntil("a write past the backup's index is answered") {
            ledger.acknowledged.withLock { $0.values.contains { $0 > manifest.lastIndex + 50 } }
        }
        ledger.stop.withLock { $0 = true }
        await load.value
        server.stop()
        let acknowledged = ledger.acknowledged.withLock { $0 }

        let data = dir.file("restored")
        try Self.ok(nil, ["restore", dir.file("backup"), "--data-dir", data])
        let restored = try ServerProcess(dataDirectory: data)
        let check = try await openCluster(restored.endpoint)
        defer { check.close() }
        let tree = try await check.export(key: "Load")
        var present = Set<String>()
        for (_, key) in tree.keys { present.formUnion(key.values.map(\.name)) }
        for name in ackedBeforeBackup.keys { #expect(present.contains(name), "\(name), acknowledged before the backup began, is missing") }
        for (name, index) in acknowledged {
            #expect(present.contains(name) == (index <= manifest.lastIndex), "\(name) at index \(index), backup at \(manifest.lastIndex)")
        }
        let attempted = ledger.attempted.withLock { $0 }
        #expect(present.isSubset(of: attempted), "the restore invented values")
        let status = try await check.status()
        #expect(status.commitIndex == manifest.lastIndex + 1, "the restored history, then the restored node's first no-op")
        restored.stop()
    }

    @Test("A backup killed at any step (service or CLI) never leaves a marker; the next backup replaces it",
          arguments: ["backup-after-clear", "backup-after-file", "backup-before-marker"])
    func killedBackup(failpoint: String) throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let backup = dir.file("backup")
        var server = try ServerProcess(dataDirectory: dir.file("data"))
        try Self.populate(server.endpoint)
        try Self.ok(server.endpoint, ["backup", backup])
        server.stop()
        // The service dies while writing an on-owner backup over the earlier one.
        server = try ServerProcess(dataDirectory: dir.file("data"), environment: ["CLUSDB_FAILPOINT": failpoint])
        let result = try runClusdb(["--cluster", server.endpoint, "backup", backup, "--on-quorum-owner"])
        #expect(result.status == 1)
        #expect(server.stop() != 0)
        #expect(!FileManager.default.fileExists(atPath: backup + "/.clusbackup.dat"))
        try Self.fails(nil, ["backup", "verify", backup], code: .databaseBackupCorrupt)
        try Self.fails(nil, ["restore", backup, "--data-dir", dir.file("never")], code: .databaseBackupCorrupt)
        #expect(!FileManager.default.fileExists(atPath: dir.file("never")))
        // The CLI dies while writing a streamed backup.
        server = try ServerProcess(dataDirectory: dir.file("data"))
        try Self.ok(server.endpoint, ["backup", backup])
        let killed = try runClusdb(["--cluster", server.endpoint, "backup", backup], environment: ["CLUSDB_FAILPOINT": failpoint])
        #expect(killed.status != 0)
        #expect(!FileManager.default.fileExists(atPath: backup + "/.clusbackup.dat"))
        try Self.fails(nil, ["backup", "verify", backup], code: .databaseBackupCorrupt)
        // The service is fine and the next backup replaces the remains.
        try Self.ok(server.endpoint, ["backup", backup])
        try Self.ok(nil, ["backup", "verify", backup])
        server.stop()
    }

    @Test("A restore killed at any step leaves the old data directory or the restored one, never a mix",
          arguments: ["restore-before-commit", "restore-after-commit", "restore-during-swap", "restore-before-cleanup"])
    func killedRestore(failpoint: String) throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var server = try ServerProcess(dataDirectory: dir.file("data"))
        try Self.populate(server.endpoint)
        let backedUp = try Self.ok(server.endpoint, ["reg", "export"])
        try Self.ok(server.endpoint, ["backup", dir.file("backup")])
        try Self.ok(server.endpoint, ["reg", "set", #"Resources\{6e3b}\Parameters"#, "Port", "REG_DWORD", "1"])
        try Self.ok(server.endpoint, ["reg", "rm", "Groups", "--recursive"])
        let current = try Self.ok(server.endpoint, ["reg", "export"])
        server.stop()
        let killed = try runClusdb(
            ["restore", dir.file("backup"), "--data-dir", dir.file("data")], environment: ["CLUSDB_FAILPOINT": failpoint])
        #expect(killed.status != 0)
        server = try ServerProcess(dataDirectory: dir.file("data"))
        let after = try Self.ok(server.endpoint, ["reg", "export"])
        #expect(after == (failpoint == "restore-before-commit" ? current : backedUp), "killed at \(failpoint)")
        server.stop()
        #expect(!FileManager.default.fileExists(atPath: dir.file("data/.restore-staging")))
    }

    @Test("SIGKILL at random moments of a restore: the node starts with the old state or the restored one")
    func randomlyKilledRestore() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var server = try ServerProcess(dataDirectory: dir.file("data"))
        try Self.populate(server.endpoint)
        for index in 0..<300 { try? Self.ok(server.endpoint, ["reg", "set", #"Bulk\K\#(index % 10)"#, "v\(index)", "REG_SZ", "x"]) }
        let backedUp = try Self.ok(server.endpoint, ["reg", "export"])
        try Self.ok(server.endpoint, ["backup", dir.file("backup")])
        try Self.ok(server.endpoint, ["reg", "rm", "Bulk", "--recursive"])
        let current = try Self.ok(server.endpoint, ["reg", "export"])
        server.stop()
        var random = SplitMix64(seed: 42)
        var outcomes = Set<String>()
        for _ in 0..<8 {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: ClusdbBinary.path)
            process.arguments = ["restore", dir.file("backup"), "--data-dir", dir.file("data"), "--force"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            usleep(useconds_t(random.next() % 150_000))
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            server = try ServerProcess(dataDirectory: dir.file("data"))
            let after = try Self.ok(server.endpoint, ["reg", "export"])
            #expect(after == current || after == backedUp)
            outcomes.insert(after == current ? "old" : "restored")
            // Back to the old state for the next round, when the restore went through.
            if after == backedUp { try Self.ok(server.endpoint, ["reg", "rm", "Bulk", "--recursive"]) }
            server.stop()
        }
        #expect(!outcomes.isEmpty)
    }

    @Test("Path and guard errors of DESIGN §4 reach the command line with their codes")
    func errors() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let server = try ServerProcess(dataDirectory: dir.file("data"))
        try Self.populate(server.endpoint)
        FileManager.default.createFile(atPath: dir.file("a-file"), contents: Data([1]))
        for onOwner in [[], ["--on-quorum-owner"]] {
            try Self.fails(server.endpoint, ["backup", dir.file("a-file")] + onOwner, code: .directory)
            try Self.fails(server.endpoint, ["backup", dir.file("no/such/dir")] + onOwner, code: .pathNotFound)
        }
        // A running node's data directory: refused and untouched.
        try Self.ok(server.endpoint, ["backup", dir.file("backup")])
        let before = try Self.ok(server.endpoint, ["reg", "export"])
        try Self.fails(nil, ["restore", dir.file("backup"), "--data-dir", dir.file("data")], code: .sharingViolation)
        try Self.fails(nil, ["restore", dir.file("backup"), "--data-dir", dir.file("data"), "--dry-run"], code: .sharingViolation)
        #expect(try Self.ok(server.endpoint, ["reg", "export"]) == before)
        try Self.fails(nil, ["restore", dir.file("backup"), "--data-dir", dir.file("x"), "--to-index", "999999"], code: .invalidParameter)
        try Self.fails(nil, ["restore", dir.file("nothing-here"), "--data-dir", dir.file("x")], code: .pathNotFound)
        let verify = try runClusdb(["backup", "verify", dir.file("a-file"), "--json"])
        #expect(verify.status == 1)
        #expect(verify.stdout.contains(#""ok":false"#))
        server.stop()
    }

    /// True when this process may mount file systems (root in a namespace that allows it).
    static let canMount: Bool = {
        guard geteuid() == 0 else { return false }
        let probe = TemporaryDirectory("clusdb-mount-probe")
        defer { probe.remove() }
        guard mount("tmpfs", probe.path, "tmpfs", 0, "size=64k") == 0 else { return false }
        umount(probe.path)
        return true
    }()

    @Test("A full disk is ERROR_DISK_FULL and a read-only one ERROR_ACCESS_DENIED, leaving no marker",
          .enabled(if: BackupProcessTests.canMount, "needs root to mount small tmpfs file systems"))
    func fullAndReadOnlyDisks() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let server = try ServerProcess(dataDirectory: dir.file("data"))
        try Self.populate(server.endpoint)
        for index in 0..<200 { try Self.ok(server.endpoint, ["reg", "set", #"Bulk\#(index % 7)"#, "v\(index)", "REG_SZ", String(repeating: "z", count: 900)]) }
        let small = dir.file("small")
        let readOnly = dir.file("readonly")
        try FileManager.default.createDirectory(atPath: small, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: readOnly, withIntermediateDirectories: true)
        #expect(mount("tmpfs", small, "tmpfs", 0, "size=96k") == 0)
        defer { umount(small) }
        #expect(mount("tmpfs", readOnly, "tmpfs", UInt(MS_RDONLY), "size=64k") == 0)
        defer { umount(readOnly) }
        for onOwner in [[], ["--on-quorum-owner"]] {
            try Self.fails(server.endpoint, ["backup", small + "/b"] + onOwner, code: .diskFull)
            #expect(!FileManager.default.fileExists(atPath: small + "/b/.clusbackup.dat"))
            try Self.fails(server.endpoint, ["backup", readOnly + "/b"] + onOwner, code: .accessDenied)
        }
        server.stop()
    }
}
