import ClusDBBackup
import ClusDBModel
import ClusDBStore
import ClusDBTestSupport
import Foundation
import Testing

/// A seeded mutation loop over the readers of untrusted backup input: the manifest, the
/// checkpoint image, `quolog.log` and the backup stream. Every mutated input must be either
/// accepted or refused with a `ClusterError`: no trap, no hang (each run is bounded by the
/// readers' named limits, and the loop by its iteration count). Failing seeds replay exactly.
@Suite("Fuzzing the backup readers")
struct BackupFuzzTests {
    static let iterations = 1_500

    /// One random mutation: flip bits, overwrite, insert, delete, truncate, or splice a run.
    static func mutate(_ input: [UInt8], _ random: inout SplitMix64) -> [UInt8] {
        var bytes = input
        let rounds = 1 + Int(random.next() % 4)
        for _ in 0..<rounds {
            let position = bytes.isEmpty ? 0 : Int(random.next() % UInt64(bytes.count))
            switch random.next() % 7 {
            case 0 where !bytes.isEmpty: bytes[position] ^= UInt8(1 << (random.next() % 8))
            case 1 where !bytes.isEmpty: bytes[position] = UInt8(truncatingIfNeeded: random.next())
            case 2: bytes.insert(contentsOf: (0..<(1 + random.next() % 16)).map { _ in UInt8(truncatingIfNeeded: random.next()) }, at: position)
            case 3 where !bytes.isEmpty: bytes.removeSubrange(position..<min(bytes.count, position + 1 + Int(random.next() % 64)))
            case 4: bytes = Array(bytes.prefix(position))
            case 5:
                // 64-bit header fields (indexes, terms, counts) at their extremes.
                let values: [UInt64] = [0, 1, UInt64.max, UInt64.max - 1, 1 << 63, UInt64(UInt32.max) + 1]
                let value = values[Int(random.next() % UInt64(values.count))]
                for offset in 0..<8 where position + offset < bytes.count { bytes[position + offset] = UInt8((value >> (8 * offset)) & 0xFF) }
            default:
                // Interesting values: lengths and counts at their bounds.
                let values: [UInt32] = [0, 1, 0x7FFF_FFFF, 0xFFFF_FFFF, UInt32(LogRecord.bodyMaxSize), 17]
                let value = values[Int(random.next() % UInt64(values.count))]
                for offset in 0..<4 where position + offset < bytes.count { bytes[position + offset] = UInt8((value >> (8 * offset)) & 0xFF) }
            }
        }
        return bytes
    }

    static func read(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }
    static func write(_ bytes: [UInt8], _ path: String) throws { try Data(bytes).write(to: URL(fileURLWithPath: path)) }

    @Test("Mutated manifests parse or are refused with 5087")
    func manifests() throws {
        let fixture = try BackupFixture()
        let good = try Self.read(FileSystem.join(try fixture.writeBackup(), BackupLayout.manifestName))
        var random = SplitMix64(seed: 1)
        for _ in 0..<Self.iterations * 3 {
            do {
                _ = try BackupManifest(jsonBytes: Self.mutate(good, &random))
            } catch {
                #expect(error.code == .databaseBackupCorrupt)
            }
        }
    }

    @Test("Mutated quorum logs are read or refused with 5087")
    func quorumLogs() throws {
        let fixture = try BackupFixture()
        let backup = try fixture.writeBackup()
        let manifest = try BackupVerifier.verify(backup).manifest
        let good = try Self.read(FileSystem.join(backup, BackupLayout.quorumLogName))
        let path = fixture.root.file("mutated.log")
        var random = SplitMix64(seed: 2)
        var refused = 0
        for _ in 0..<Self.iterations {
            try Self.write(Self.mutate(good, &random), path)
            do {
                try BackupQuorumLog.read(
                    path: path, checkpointIndex: manifest.checkpointIndex, lastIndex: manifest.lastIndex, term: manifest.term)
            } catch {
                #expect(error.code == .databaseBackupCorrupt)
                refused += 1
            }
        }
        #expect(refused > Self.iterations / 2)
    }

    @Test("Manifest indexes and terms at their extremes are refused with 5087, never a trap")
    func extremeManifestFields() throws {
        let fixture = try BackupFixture()
        let backup = try fixture.writeBackup()
        let manifest = try BackupVerifier.verify(backup).manifest
        let path = FileSystem.join(backup, BackupLayout.quorumLogName)
        let extremes: [UInt64] = [0, 1, UInt64.max, UInt64.max - 1, 1 << 63]
        for checkpoint in extremes + [manifest.checkpointIndex] {
            for last in extremes + [manifest.lastIndex] {
                for term in [0, UInt64.max, manifest.term] {
                    if checkpoint == manifest.checkpointIndex && last == manifest.lastIndex && term == manifest.term { continue }
                    do {
                        try BackupQuorumLog.read(path: path, checkpointIndex: checkpoint, lastIndex: last, term: term)
                        #expect(last <= checkpoint || last == manifest.lastIndex, "read \(checkpoint)...\(last) term \(term)")
                    } catch {
                        #expect(error.code == .databaseBackupCorrupt)
                    }
                }
            }
        }
        // And the manifest itself with those numbers: parsed or refused, never a trap.
        let text = String(decoding: try Self.read(FileSystem.join(backup, BackupLayout.manifestName)), as: UTF8.self)
        for field in ["checkpointIndex", "lastIndex", "term", "keys", "values", "size", "formatVersion"] {
            for value in ["18446744073709551615", "18446744073709551616", "-1", "1e30", "0"] {
                let mutated = text.replacingOccurrences(
                    of: #""\#(field)"\s*:\s*[0-9]+"#, with: "\"\(field)\": \(value)", options: .regularExpression)
                do {
                    _ = try BackupManifest(jsonBytes: Array(mutated.utf8))
                } catch {
                    #expect(error.code == .databaseBackupCorrupt)
                }
            }
        }
    }

    @Test("Mutated checkpoint images pass SQLite's integrity check or are refused")
    func checkpoints() throws {
        let fixture = try BackupFixture()
        let good = try Self.read(fixture.checkpoint.path)
        let path = fixture.root.file("mutated.sqlite")
        var random = SplitMix64(seed: 3)
        for _ in 0..<Self.iterations / 3 {
            try Self.write(Self.mutate(good, &random), path)
            do {
                _ = try ClusterCheckpoints.validate(path: path, fullIntegrityCheck: true)
            } catch {
                #expect(!error.message.isEmpty)
            }
        }
    }

    @Test("Mutated backup streams are received or refused, never leaving a marker for damage")
    func streams() throws {
        let fixture = try BackupFixture()
        let source = try fixture.source()
        var producer = BackupStreamProducer(source: source)
        var good: [UInt8] = []
        while let piece = producer.next() { good += piece }
        source.close()
        var random = SplitMix64(seed: 4)
        for round in 0..<Self.iterations / 3 {
            let path = fixture.root.file("stream-\(round)")
            let receiver = BackupStreamReceiver(writer: try BackupDirectoryWriter(path: path))
            let mutated = Self.mutate(good, &random)
            do {
                try receiver.receive(mutated)
                _ = try receiver.finish()
                // Accepted: then it is a backup that verifies.
                _ = try BackupVerifier.verify(path)
            } catch {
                #expect(!FileSystem.exists(FileSystem.join(path, BackupLayout.markerName)))
            }
        }
    }
}
