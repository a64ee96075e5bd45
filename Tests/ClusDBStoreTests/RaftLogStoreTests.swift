import ClusDBModel
import ClusDBRaft
import ClusDBStore
import ClusDBTestSupport
import Synchronization
import Testing

/// The quorum log as the Raft log: terms from memory, membership-change records, and the
/// replacement of a conflicting suffix that a power loss can never turn into a mix of old and
/// new entries.
@Suite("Quorum log as the Raft log: terms, suffix replacement, power loss")
struct RaftLogStoreTests {
    /// Entries `range` of `term`, payload sizes varied so records end at varied offsets.
    static func entries(_ range: ClosedRange<UInt64>, term: UInt64, size: Int = 60) -> [RaftEntry] {
        range.map { index in
            RaftEntry(
                index: index, term: term, kind: index % 7 == 0 ? .noOp : .command,
                payload: index % 7 == 0 ? [] : (0..<(size + Int(index % 5) * 9)).map { UInt8(truncatingIfNeeded: Int(index) &* 131 &+ $0 &+ Int(term)) })
        }
    }

    /// The old log: indexes 1...40 in groups of 1 to 6 (terms 1, 2, 3), spread over segments
    /// of `segmentBytes`.
    static func writeOldLog(in path: String, segmentBytes: Int) throws -> [RaftEntry] {
        let (log, _) = try QuorumLog.open(directory: path, segmentTargetBytes: segmentBytes)
        var all: [RaftEntry] = []
        var next: UInt64 = 1
        var groupSize: UInt64 = 1
        while next <= 40 {
            let last = min(40, next + groupSize - 1)
            let group = entries(next...last, term: 1 + next / 15)
            try log.save(group)
            all += group
            next = last + 1
            groupSize = groupSize % 6 + 1
        }
        log.close()
        return all
    }

    /// Index/term of each entry, for failure messages.
    static func describe(_ entries: [RaftEntry]) -> String { entries.map { "\($0.index)/\($0.term)" }.joined(separator: " ") }

    static func readAll(_ path: String) throws(ClusterError) -> [RaftEntry] {
        let (log, _) = try QuorumLog.open(directory: path)
        defer { log.close() }
        guard log.lastEntryIndex >= log.firstEntryIndex else { return [] }
        return try log.raftEntries(from: log.firstEntryIndex, through: log.lastEntryIndex, maxBytes: Int.max)
    }

    @Test("Terms come from memory for every entry, across segments, after reopening and after compaction")
    func termsFromMemory() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let old = try Self.writeOldLog(in: directory.path, segmentBytes: 512)
        let (log, _) = try QuorumLog.open(directory: directory.path, segmentTargetBytes: 512)
        defer { log.close() }
        #expect(log.segments.count > 3)
        for entry in old { #expect(log.term(at: entry.index) == entry.term, "index \(entry.index)") }
        #expect(log.term(at: 0) == nil && log.term(at: 41) == nil)
        try log.compact(through: 20)
        let first = log.firstEntryIndex
        #expect(first > 1 && first <= 21)
        #expect(log.term(at: first - 1) == nil)
        for entry in old where entry.index >= first { #expect(log.term(at: entry.index) == entry.term) }
    }

    @Test("Saving entries within the log replaces the suffix from their index: mid-group, at a segment's start, all of it")
    func suffixReplacement() throws {
        for cut in [UInt64(1), 2, 5, 13, 20, 33, 40, 41] {
            let directory = TemporaryDirectory()
            defer { directory.remove() }
            let old = try Self.writeOldLog(in: directory.path, segmentBytes: 512)
            let (log, _) = try QuorumLog.open(directory: directory.path, segmentTargetBytes: 512)
            let new = Self.entries(cut...(cut + 3), term: 9, size: 200)
            try log.save(new)
            #expect(log.lastEntryIndex == cut + 3)
            for entry in new { #expect(log.term(at: entry.index) == 9) }
            if cut > 1 { #expect(log.term(at: cut - 1) == old[Int(cut) - 2].term) }
            try log.save(Self.entries((cut + 4)...(cut + 5), term: 9))
            log.close()
            let expected = Array(old.prefix(Int(cut) - 1)) + new + Self.entries((cut + 4)...(cut + 5), term: 9)
            #expect(try Self.readAll(directory.path) == expected, "cut at \(cut)")
        }
    }

    @Test("A membership change is written with record format 3 and read back; other kinds stay format 2")
    func membershipRecords() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let (log, _) = try QuorumLog.open(directory: directory.path)
        // The payload as FORMATS.md gives it: operation, then the node id little-endian.
        #expect(ConfigurationChange.addLearner(0x0102).encoded == [1, 0x02, 0x01, 0, 0, 0, 0, 0, 0])
        for change in [ConfigurationChange.addLearner(7), .promoteLearner(UInt64.max - 3), .remove(1 << 40)] {
            #expect(ConfigurationChange(encoded: change.encoded) == change)
        }
        #expect(ConfigurationChange(encoded: [4, 0, 0, 0, 0, 0, 0, 0, 0]) == nil && ConfigurationChange(encoded: [1, 0]) == nil)
        let change = RaftEntry(index: 2, term: 1, kind: .configurationChange, payload: ConfigurationChange.addLearner(4).encoded)
        try log.save([RaftEntry(index: 1, term: 1, kind: .noOp), change])
        log.close()
        #expect(try Self.readAll(directory.path).last == change)
        let bytes = try QuorumLogRecoveryTests.bytes(directory.file(QuorumLogRecoveryTests.segmentName))
        // Record format bytes (offset 25 of each record): the no-op's 2, the change's 3.
        let first = QuorumLog.segmentHeaderSize
        let second = first + LogRecord.framedSize(payloadCount: 0)
        #expect(bytes[first + 25] == 2 && bytes[second + 25] == 3)
    }

    /// Images a power loss would leave, taken before every sync and once the save returned.
    final class Images: Sendable {
        let taken = Mutex<[(String, PowerLossDisk.Image)]>([])

        func take(_ disk: PowerLossDisk, at moment: String) {
            var images = [(moment, disk.image())]
            for seed in UInt64(1)...3 {
                images.append(("\(moment), prefix \(seed)", disk.image(tear: .prefix(seed: seed))))
                images.append(("\(moment), pages \(seed)", disk.image(tear: .pages(seed: seed))))
            }
            taken.withLock { $0 += images }
        }
    }

    /// Replaces the suffix from `cut` under a power-loss model, skipping `skipped`.
    /// - Returns: the old log, the new entries, the images before each sync, and the image once
    ///   the save returned.
    static func replaceUnderPowerLoss(
        cut: UInt64, segmentBytes: Int, skipping skipped: SyncSite?, in directory: TemporaryDirectory
    ) throws -> (old: [RaftEntry], new: [RaftEntry], during: [(String, PowerLossDisk.Image)], after: PowerLossDisk.Image, skipped: [SyncSite: Int]) {
        let data = directory.file("data")
        let old = try writeOldLog(in: data, segmentBytes: segmentBytes)
        let images = Images()
        let box = Mutex<PowerLossDisk?>(nil)
        let disk = try PowerLossDisk(
            root: data,
            beforeSync: { site in
                if let disk = box.withLock({ $0 }) { images.take(disk, at: "before \(site)") }
            })
        box.withLock { $0 = disk }
        if let skipped { disk.skippedSites = [skipped] }
        FileLayer.install(disk)
        defer { FileLayer.remove(disk) }
        let (log, _) = try QuorumLog.open(directory: data, segmentTargetBytes: segmentBytes)
        let new = entries(cut...(cut + 2), term: 9, size: 300)
        try log.save(new)
        log.close()
        return (old, new, images.taken.withLock { $0 }, disk.image(), disk.skippedCounts)
    }

    @Test("A power loss at any moment of a suffix replacement leaves the old log or the new one's prefix, never a mix")
    func powerLossDuringReplacement() throws {
        for cut in [UInt64(3), 13, 22, 38] {
            let directory = TemporaryDirectory()
            defer { directory.remove() }
            let (old, new, during, after, _) = try Self.replaceUnderPowerLoss(cut: cut, segmentBytes: 512, skipping: nil, in: directory)
            #expect(during.count > 10)
            let kept = Array(old.prefix(Int(cut) - 1))
            for (number, (moment, image)) in (during + [("after the save", after)]).enumerated() {
                let root = directory.file("image\(number)")
                try PowerLossDisk.materialize(image, at: root)
                let survived: [RaftEntry]
                do {
                    survived = try Self.readAll(root)
                } catch {
                    Issue.record("cut \(cut), \(moment): the log does not open: \(error)")
                    continue
                }
                let isOldPrefix = survived.count >= kept.count && Array(old.prefix(survived.count)) == survived
                let isNewPrefix = survived.count >= kept.count && survived.count <= kept.count + new.count
                    && survived == kept + Array(new.prefix(survived.count - kept.count))
                #expect(isOldPrefix || isNewPrefix, "cut \(cut), \(moment): \(Self.describe(survived))")
                if moment == "after the save" { #expect(survived == kept + new, "cut \(cut): the saved entries are durable: \(Self.describe(survived))") }
            }
        }
    }

    @Test("Each sync of a suffix replacement matters: without it the saved log can come back mixed or refuse to open")
    func eachSuffixSyncMatters() throws {
        // The cut of the segment matters when the new entries go to a new segment (the cut one
        // is still past its target size: 37...39 of 256 bytes, cut at 39); the removal of later
        // segments when no new segment's directory sync makes it durable anyway (7...15 of 512
        // bytes, cut at 9, so the new entries fit in it).
        let cases: [(site: SyncSite, cut: UInt64, segmentBytes: Int)] = [
            (SyncSite.logSuffix.file, 39, 256),
            (SyncSite.logSuffix.directory, 9, 512),
        ]
        for (site, cut, segmentBytes) in cases {
            for skipped in [nil, site] {
                let directory = TemporaryDirectory()
                defer { directory.remove() }
                let (old, new, _, after, skippedCounts) = try Self.replaceUnderPowerLoss(
                    cut: cut, segmentBytes: segmentBytes, skipping: skipped, in: directory)
                let root = directory.file("after")
                try PowerLossDisk.materialize(after, at: root)
                let survived = try? Self.readAll(root)
                let expected = Array(old.prefix(Int(cut) - 1)) + new
                let intact = survived == expected
                if skipped == nil {
                    #expect(intact, "\(site): with every sync the new log survives")
                } else {
                    #expect(skippedCounts[site, default: 0] > 0, "\(site) ran")
                    #expect(!intact, "\(site): skipping it must be able to spoil the log (\(survived.map(Self.describe) ?? "does not open"))")
                }
            }
        }
    }
}
