import ClusDBModel
import ClusDBRaft
import ClusDBStore
import ClusDBTestSupport
import Testing

@Suite("Raft hard state on disk: atomic, checked, durable before it is relied on")
struct RaftHardStateFileTests {
    static let states = [
        HardState(term: 0, vote: nil, commit: 0), HardState(term: 7, vote: 3, commit: 120),
        HardState(term: .max, vote: .max, commit: .max), HardState(term: 1, vote: 0, commit: 0),
    ]

    @Test("Round trip, and a new data directory has none")
    func roundTrip() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        #expect(try RaftHardStateFile.read(in: directory.path) == nil)
        for state in Self.states {
            try RaftHardStateFile.write(state, in: directory.path)
            #expect(try RaftHardStateFile.read(in: directory.path) == state)
        }
    }

    @Test("Every flipped bit and every cut is refused as damage (not as a newer format), a newer format names itself")
    func damageRefused() throws {
        let bytes = RaftHardStateFile.encode(HardState(term: 9, vote: 2, commit: 44))
        for position in bytes.indices {
            for bit in 0..<8 {
                var damaged = bytes
                damaged[position] ^= UInt8(1) << UInt8(bit)
                do {
                    _ = try RaftHardStateFile.decode(damaged, path: "raft.state")
                    Issue.record("bit \(bit) of byte \(position) flipped is accepted")
                } catch {
                    // A flip in the version field asked for a newer build before the checksum came first.
                    #expect(error.code == .invalidData, "bit \(bit) of byte \(position): \(error)")
                }
            }
        }
        for length in 0..<bytes.count {
            #expect(throws: ClusterError.self, "cut at \(length)") { try RaftHardStateFile.decode(Array(bytes[0..<length]), path: "raft.state") }
        }
        // A newer format of the same size, with its own valid checksum, and a longer one.
        var newer = Array(bytes[0..<(bytes.count - 4)])
        newer[8] = 2  // format version 2, little-endian
        let crc = newer.withUnsafeBytes { CRC32C.checksum($0) }
        newer += (0..<4).map { UInt8(truncatingIfNeeded: crc >> (8 * $0)) }
        var longer = bytes + [0, 0, 0, 0]
        longer[8] = 3
        for (file, version) in [(newer, 2), (longer, 3)] {
            do {
                _ = try RaftHardStateFile.decode(file, path: "raft.state")
                Issue.record("a newer format is refused")
            } catch {
                #expect(error.code == .revisionMismatch && error.message.contains("format \(version)"), "\(error)")
            }
        }
    }

    @Test("After write returns, a power loss keeps the new state; without either of its syncs it may not")
    func powerLoss() throws {
        for skipped in [nil, RaftHardStateFile.site.file, RaftHardStateFile.site.directory] {
            let directory = TemporaryDirectory()
            defer { directory.remove() }
            let old = HardState(term: 4, vote: 1, commit: 10)
            let new = HardState(term: 5, vote: 2, commit: 10)
            try RaftHardStateFile.write(old, in: directory.path)
            let disk = try PowerLossDisk(root: directory.path)
            FileLayer.install(disk)
            defer { FileLayer.remove(disk) }
            if let skipped { disk.skippedSites = [skipped] }
            try RaftHardStateFile.write(new, in: directory.path)
            let after = TemporaryDirectory()
            defer { after.remove() }
            try PowerLossDisk.materialize(disk.image(), at: FileSystem.join(after.path, "data"))
            let survived = try? RaftHardStateFile.read(in: FileSystem.join(after.path, "data"))
            if skipped == nil {
                #expect(survived == new)
            } else {
                #expect(survived != new, "skipping \(skipped!) must be able to lose the new vote")
            }
        }
    }
}
