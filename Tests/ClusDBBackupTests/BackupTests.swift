#if canImport(Glibc)
import Glibc
#endif
import ClusDBBackup
import ClusDBModel
import ClusDBStore
import ClusDBTestSupport
import Foundation
import Testing

@Suite("Backups: layout, verification, damage")
struct BackupTests {
    @Test("A backup holds exactly the layout, with the modes of the contract, and verifies")
    func layoutAndModes() throws {
        let fixture = try BackupFixture()
        let path = try fixture.writeBackup()
        let names = try FileSystem.list(path)
        #expect(names == [".clusbackup.dat", "chk0001.tmp", "clusbackup.manifest", "quolog.log"])
        func mode(_ name: String) -> mode_t {
            var info = stat()
            stat(FileSystem.join(path, name), &info)
            return info.st_mode & 0o777
        }
        #expect(mode("") == 0o700)
        #expect(mode(".clusbackup.dat") == 0o444)
        for name in ["chk0001.tmp", "clusbackup.manifest", "quolog.log"] { #expect(mode(name) == 0o600) }
        var marker = stat()
        stat(FileSystem.join(path, ".clusbackup.dat"), &marker)
        #expect(marker.st_size == 0)
        let verified = try BackupVerifier.verify(path)
        #expect(verified.manifest.checkpointIndex == 5)
        #expect(verified.manifest.lastIndex == fixture.lastIndex)
        #expect(verified.manifest.term == 1 + fixture.lastIndex / 7)
        #expect(verified.checkpointState.clusterID == fixture.clusterID)
        // The log spans several live segments; the backup's log is one file of the same format.
        #expect(fixture.log.segments.count > 2)
    }

    @Test("A trailing slash is fine; a second backup to the same path replaces the first")
    func replaceEarlierBackup() throws {
        let fixture = try BackupFixture()
        let path = try fixture.writeBackup()
        // A stale resource folder of an earlier backup is replaced too.
        try FileSystem.makeDirectory(FileSystem.join(path, "0a1b2c3d-0000-4000-8000-00000000abcd"))
        let source = try fixture.source()
        defer { source.close() }
        let manifest = try source.write(to: try BackupDirectoryWriter(path: path + "/"))
        #expect(try FileSystem.list(path) == [".clusbackup.dat", "chk0001.tmp", "clusbackup.manifest", "quolog.log"])
        #expect(try BackupVerifier.verify(path).manifest == manifest)
    }

    @Test("Path errors: a file is ERROR_DIRECTORY, a missing parent ERROR_PATH_NOT_FOUND, foreign files ERROR_ALREADY_EXISTS")
    func pathErrors() throws {
        let fixture = try BackupFixture()
        let file = fixture.root.file("plain-file")
        try FileSystem.writeAtomically([1, 2, 3], to: file, site: SyncSite("test"))
        #expect(throws: ClusterError.self) { try BackupDirectoryWriter(path: file) }
        do {
            _ = try BackupDirectoryWriter(path: file)
        } catch {
            #expect(error.code == .directory)
        }
        do {
            _ = try BackupDirectoryWriter(path: fixture.root.file("missing/backup"))
            Issue.record("a missing parent must fail")
        } catch {
            #expect(error.code == .pathNotFound)
        }
        let foreign = fixture.root.file("home")
        try FileSystem.makeDirectory(foreign)
        try FileSystem.writeAtomically([1], to: FileSystem.join(foreign, "notes.txt"), site: SyncSite("test"))
        do {
            _ = try BackupDirectoryWriter(path: foreign)
            Issue.record("a directory with foreign files must be refused")
        } catch {
            #expect(error.code == .alreadyExists)
            #expect(error.message.contains("notes.txt"))
        }
        #expect(FileSystem.exists(FileSystem.join(foreign, "notes.txt")))
        do {
            _ = try BackupDirectoryWriter(path: "")
            Issue.record("an empty path must be refused")
        } catch {
            #expect(error.code == .invalidParameter)
        }
    }

    @Test("No permission to write is ERROR_ACCESS_DENIED", .enabled(if: geteuid() != 0, "root ignores directory modes"))
    func accessDenied() throws {
        let fixture = try BackupFixture()
        let locked = fixture.root.file("locked")
        try FileSystem.makeDirectory(locked)
        chmod(locked, 0o500)
        defer { chmod(locked, 0o700) }
        do {
            _ = try BackupDirectoryWriter(path: locked)
            Issue.record("a read-only directory must be refused")
        } catch {
            #expect(error.code == .accessDenied)
        }
    }

    /// Each kind of damage, applied to a fresh copy of a good backup.
    enum Damage: CaseIterable, CustomStringConvertible {
        case flipByte, truncate, delete, strayFile

        var description: String {
            switch self {
            case .flipByte: return "flip a byte"
            case .truncate: return "truncate"
            case .delete: return "delete"
            case .strayFile: return "add a stray file"
            }
        }
    }

    static let backupFiles = ["chk0001.tmp", "quolog.log", "clusbackup.manifest", ".clusbackup.dat"]

    @Test("Damage to any file fails verify with the right message, and restore refuses with 5087 touching nothing")
    func damage() throws {
        let fixture = try BackupFixture()
        let good = try fixture.writeBackup()
        // A data directory with content, to prove the refused restores leave it as it was.
        let data = fixture.root.file("target")
        _ = try ClusterRestore.run(RestoreRequest(backupDirectory: good, dataDirectory: data, toIndex: 5))
        let before = BackupFixture.snapshot(data)
        var cases = 0
        for file in Self.backupFiles {
            for damage in Damage.allCases {
                if damage == .strayFile && file != Self.backupFiles[0] { continue }
                let copy = fixture.root.file("damaged-\(file)-\(damage)".replacingOccurrences(of: " ", with: "-"))
                try FileManager.default.copyItem(atPath: good, toPath: copy)
                let target = FileSystem.join(copy, file)
                var expected: String
                switch damage {
                case .flipByte:
                    if file == ".clusbackup.dat" { continue }
                    var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: target)))
                    bytes[bytes.count / 2] ^= 0x40
                    chmod(target, 0o600)
                    try Data(bytes).write(to: URL(fileURLWithPath: target))
                    expected = file == "clusbackup.manifest" ? "" : "SHA-256"
                case .truncate:
                    if file == ".clusbackup.dat" { continue }
                    truncate(target, off_t(max(0, (try SystemFile(path: target, flags: O_RDONLY).size()) - 3)))
                    expected = file == "clusbackup.manifest" ? "does not parse" : "bytes; the manifest says"
                case .delete:
                    unlink(target)
                    switch file {
                    case ".clusbackup.dat": expected = "completion marker"
                    case "clusbackup.manifest": expected = "clusbackup.manifest is missing"
                    default: expected = "\(file) is missing"
                    }
                case .strayFile:
                    try FileSystem.writeAtomically([1], to: FileSystem.join(copy, "extra.bin"), site: SyncSite("test"))
                    expected = "extra.bin is not listed"
                }
                cases += 1
                do {
                    _ = try BackupVerifier.verify(copy)
                    Issue.record("\(damage) of \(file) must fail verification")
                } catch {
                    #expect(error.code == .databaseBackupCorrupt, "\(damage) \(file): \(error)")
                    if !expected.isEmpty { #expect(error.message.contains(expected), "\(damage) \(file): \(error.message)") }
                }
                do {
                    _ = try ClusterRestore.run(RestoreRequest(backupDirectory: copy, dataDirectory: data, force: true))
                    Issue.record("restoring a backup with \(damage) of \(file) must fail")
                } catch {
                    #expect(error.code == .databaseBackupCorrupt)
                }
                #expect(BackupFixture.snapshot(data) == before, "\(damage) of \(file) changed the data directory")
            }
        }
        #expect(cases == 11)
    }

    @Test("A flipped byte inside a log record is found by its checksum even with a matching manifest")
    func logChecksumWithoutManifestHelp() throws {
        let fixture = try BackupFixture()
        let path = try fixture.writeBackup()
        let logPath = FileSystem.join(path, "quolog.log")
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: logPath)))
        bytes[QuorumLog.segmentHeaderSize + 30] ^= 1
        try Data(bytes).write(to: URL(fileURLWithPath: logPath))
        // Rewrite the manifest's hash so only the record checksum can catch it.
        let manifestPath = FileSystem.join(path, "clusbackup.manifest")
        var manifest = try BackupManifest(jsonBytes: [UInt8](try Data(contentsOf: URL(fileURLWithPath: manifestPath))))
        for position in manifest.files.indices where manifest.files[position].path == "quolog.log" {
            manifest.files[position].sha256 = try BackupVerifier.sha256(of: logPath)
        }
        try Data(manifest.jsonBytes()).write(to: URL(fileURLWithPath: manifestPath))
        do {
            _ = try BackupVerifier.verify(path)
            Issue.record("a damaged record must fail")
        } catch {
            #expect(error.code == .databaseBackupCorrupt)
            #expect(error.message.contains("quolog.log offset"))
        }
    }

    @Test("The manifest's rules: format version, indexes, file names, one checkpoint, one log")
    func manifestRules() throws {
        let good = BackupManifest(
            cluster: .init(name: "c", id: "id"), checkpointIndex: 3, lastIndex: 9, term: 2, createdAt: "t", restoreGeneration: 0,
            node: "n", keys: 1, values: 2,
            files: [
                .init(path: "chk0001.tmp", size: 10, sha256: String(repeating: "a", count: 64)),
                .init(path: "quolog.log", size: 32, sha256: String(repeating: "b", count: 64)),
            ])
        #expect(try BackupManifest(jsonBytes: good.jsonBytes()) == good)
        func broken(_ change: (inout BackupManifest) -> Void) -> ClusterError? {
            var manifest = good
            change(&manifest)
            do {
                _ = try BackupManifest(jsonBytes: manifest.jsonBytes())
                return nil
            } catch {
                return error
            }
        }
        #expect(broken { $0.formatVersion = 2 }?.code == .databaseBackupCorrupt)
        #expect(broken { $0.checkpointIndex = 10 }?.message.contains("after the last index") == true)
        #expect(broken { $0.files[0].path = "../etc/passwd" }?.message.contains("not a file of a backup") == true)
        #expect(broken { $0.files.removeFirst() }?.message.contains("exactly one cluster checkpoint") == true)
        #expect(broken { $0.files.removeLast() }?.message.contains("quolog.log") == true)
        #expect(broken { $0.files.append($0.files[1]) }?.message.contains("twice") == true)
        #expect(broken { $0.files[0].sha256 = "XYZ" } != nil)
        #expect(broken { $0.cluster.id = "" } != nil)
        #expect(BackupLayout.isListablePath("0a1b2c3d-0000-4000-8000-00000000abcd/00000001.CPT"))
        #expect(BackupLayout.isListablePath("0a1b2c3d-0000-4000-8000-00000000abcd/00000002.cpr"))
        #expect(!BackupLayout.isListablePath("0a1b2c3d-0000-4000-8000-00000000abcd/1.CPT"))
        #expect(!BackupLayout.isListablePath("chk+123.tmp"))
    }

    @Test("A stream sent in pieces of any size arrives as the same backup; a lying or cut stream leaves no marker")
    func streamRoundTrip() throws {
        let fixture = try BackupFixture()
        var random = SplitMix64(seed: 7)
        for round in 0..<4 {
            let source = try fixture.source()
            var producer = BackupStreamProducer(source: source)
            var stream: [UInt8] = []
            while let piece = producer.next() { stream += piece }
            source.close()
            let path = fixture.root.file("streamed-\(round)")
            let receiver = BackupStreamReceiver(writer: try BackupDirectoryWriter(path: path))
            var offset = 0
            while offset < stream.count {
                let size = 1 + Int(random.next() % UInt64(round == 0 ? 7 : 40_000))
                try receiver.receive(stream[offset..<min(stream.count, offset + size)])
                offset += size
            }
            let manifest = try receiver.finish()
            #expect(try BackupVerifier.verify(path).manifest == manifest)
        }
        // Cut short: no marker, no files.
        let source = try fixture.source()
        var producer = BackupStreamProducer(source: source)
        var stream: [UInt8] = []
        while let piece = producer.next() { stream += piece }
        source.close()
        let cut = fixture.root.file("cut")
        let receiver = BackupStreamReceiver(writer: try BackupDirectoryWriter(path: cut))
        try receiver.receive(stream.prefix(stream.count - 10))
        #expect(throws: ClusterError.self) { try receiver.finish() }
        #expect(!FileSystem.exists(FileSystem.join(cut, ".clusbackup.dat")))
        // A byte changed in transit: the hashes disagree with the sender's manifest.
        var damaged = stream
        damaged[stream.count / 3] ^= 0x01
        let lied = fixture.root.file("lied")
        let second = BackupStreamReceiver(writer: try BackupDirectoryWriter(path: lied))
        #expect(throws: ClusterError.self) {
            try second.receive(damaged)
            _ = try second.finish()
        }
        #expect(!FileSystem.exists(FileSystem.join(lied, ".clusbackup.dat")))
    }

    @Test("An error frame ends the stream with the sender's error and no backup")
    func streamErrorFrame() throws {
        let fixture = try BackupFixture()
        let path = fixture.root.file("failed")
        let receiver = BackupStreamReceiver(writer: try BackupDirectoryWriter(path: path))
        let body = try JSONEncoder().encode(ClientProtocol.ErrorResponse(ClusterError(.diskFull, "no space")))
        do {
            try receiver.receive(BackupStream.preamble() + BackupStream.frame(.error, Array(body)))
            Issue.record("an error frame must throw")
        } catch {
            #expect(error.code == .diskFull)
        }
        #expect(!FileSystem.exists(FileSystem.join(path, ".clusbackup.dat")))
    }
}
