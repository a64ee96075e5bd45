#if canImport(Glibc)
import Glibc
#endif
import ClusDBBackup
import ClusDBModel
import ClusDBStore
import ClusDBTestSupport
import Foundation

/// A node's storage built by hand (a quorum log, a hive, a checkpoint part-way), and backups of
/// it, without a running node: the backup module's pieces are tested on real files.
final class BackupFixture {
    let root: TemporaryDirectory
    let log: QuorumLog
    let hive: Hive
    let checkpoint: ClusterCheckpoint
    let commands: [HiveCommand]
    let clusterID = "6f1d2c4e-0000-4000-8000-000000000001"
    /// Exports of the hive after each index (index 0: empty).
    private(set) var exports: [UInt64: [UInt8]] = [:]

    var dataPath: String { root.file("data") }
    var lastIndex: UInt64 { UInt64(commands.count) }

    /// Writes `commands` as log entries 1...n (small segments, so a backup spans several),
    /// applies them, and takes a checkpoint after `checkpointAfter` of them.
    init(commands: [HiveCommand] = BackupFixture.standardCommands(), checkpointAfter: Int = 5) throws {
        root = TemporaryDirectory("clusdb-backup-test")
        self.commands = commands
        try FileSystem.makeDirectories(root.file("data/quorum/log"))
        (log, _) = try QuorumLog.open(directory: root.file("data/quorum/log"), segmentTargetBytes: 512)
        hive = try Hive.open(path: root.file("data/hive.sqlite"))
        try hive.setIdentity(clusterName: "test", clusterID: clusterID)
        var taken: ClusterCheckpoint?
        exports[0] = try Self.exportBytes(hive)
        for (offset, command) in commands.enumerated() {
            let index = UInt64(offset + 1)
            try log.append([LogEntry(index: index, term: 1 + index / 7, kind: .command, payload: command.encoded())])
            _ = try hive.apply([Hive.Committed(index: index, term: 1 + index / 7, command: command)])
            exports[index] = try Self.exportBytes(hive)
            if offset + 1 == checkpointAfter {
                taken = try ClusterCheckpoints.write(from: hive, to: root.file("data/quorum"))
            }
        }
        guard let taken else { preconditionFailure("the checkpoint index is within the commands") }
        checkpoint = taken
    }

    deinit {
        hive.close()
        log.close()
        root.remove()
    }

    static func exportBytes(_ hive: Hive) throws -> [UInt8] {
        try hive.exportBlocking(KeyPath.root).jsonBytes()
    }

    /// Commands that touch every value type, overwrite, delete values and keys, and batch.
    static func standardCommands() -> [HiveCommand] {
        func path(_ text: String) -> KeyPath { try! KeyPath(text) }
        var commands: [HiveCommand] = [
            .createKey(path(#"Resources\Web"#)),
            .setValue(key: path(#"Resources\Web"#), name: "Name", value: .string("web"), createKey: true),
            .setValue(key: path(#"Resources\Web"#), name: "Path", value: .expandString("%ROOT%\\www"), createKey: true),
            .setValue(key: path(#"Resources\Web"#), name: "Nodes", value: .multiString(["a", "b"]), createKey: true),
            .setValue(key: path(#"Resources\Web"#), name: "Port", value: .dword(8080), createKey: true),
            .setValue(key: path(#"Resources\Web"#), name: "Big", value: .qword(1 << 40), createKey: true),
            .setValue(key: path(#"Resources\Web"#), name: "Blob", value: .binary([0, 1, 2, 255]), createKey: true),
            .setValue(key: path(#"Resources\Web"#), name: "Nothing", value: .none([9]), createKey: true),
            .setValue(key: path(#"Groups\G1"#), name: "", value: .string("default"), createKey: true),
        ]
        for round in 0..<40 {
            commands.append(.setValue(key: path(#"Load\K\#(round % 6)"#), name: "v\(round)", value: .string(String(repeating: "x", count: round)), createKey: true))
        }
        commands.append(.deleteValue(key: path(#"Resources\Web"#), name: "Big"))
        commands.append(.setValue(key: path(#"Resources\Web"#), name: "Port", value: .dword(9090), createKey: true))
        commands.append(.deleteKey(path(#"Load\K\5"#), recursive: false))
        commands.append(.deleteValue(key: path(#"Nowhere"#), name: "x"))
        return commands
    }

    /// The backup source for the state at `lastIndex` (what the node pins).
    func source(lastIndex: UInt64? = nil) throws -> BackupSource {
        let last = lastIndex ?? self.lastIndex
        let summary = try hive.summary()
        let manifest = BackupManifest(
            cluster: .init(name: "test", id: clusterID), checkpointIndex: checkpoint.state.appliedIndex, lastIndex: last,
            term: 1 + last / 7, createdAt: BackupManifest.timestamp(), restoreGeneration: 0, node: "n1",
            keys: summary.keys, values: summary.values, files: [])
        let segments = try log.segments.map { BackupSource.Segment(firstIndex: $0.firstIndex, file: try SystemFile(path: $0.path, flags: O_RDONLY)) }
        return BackupSource(
            checkpoint: try SystemFile(path: checkpoint.path, flags: O_RDONLY), checkpointSequence: checkpoint.sequence,
            segments: segments, manifest: manifest, onClose: {})
    }

    /// Writes a complete backup into `directory` (a path under the fixture's root by default).
    @discardableResult
    func writeBackup(_ name: String = "backup") throws -> String {
        let path = root.file(name)
        let source = try source()
        defer { source.close() }
        try source.write(to: try BackupDirectoryWriter(path: path))
        return path
    }

    /// Every file under `path` with its size and checksum, for "nothing changed" checks.
    static func snapshot(_ path: String) -> [String: String] {
        var result: [String: String] = [:]
        guard let enumerator = FileManager.default.enumerator(atPath: path) else { return result }
        while let relative = enumerator.nextObject() as? String {
            let full = (path as NSString).appendingPathComponent(relative)
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: full, isDirectory: &isDirectory), !isDirectory.boolValue {
                let bytes = (try? [UInt8](Data(contentsOf: URL(fileURLWithPath: full)))) ?? []
                result[relative] = "\(bytes.count) bytes, crc \(CRC32C.checksum(bytes))"
            } else {
                result[relative + "/"] = "directory"
            }
        }
        return result
    }
}
