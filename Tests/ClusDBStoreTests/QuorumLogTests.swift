import ClusDBModel
import ClusDBStore
import ClusDBTestSupport
import Foundation
import Testing

@Suite("Quorum log: durability and recovery")
struct QuorumLogTests {
    static func entry(_ index: UInt64, size: Int) -> LogEntry {
        LogEntry(index: index, term: 1 + index / 4, kind: .command, payload: (0..<size).map { UInt8(truncatingIfNeeded: Int(index) &* 31 &+ $0) })
    }

    /// Entries of varied sizes, so record boundaries fall at varied offsets.
    static let sizes = [0, 1, 7, 8, 33, 100]

    static func readAll(_ log: QuorumLog) throws -> [LogEntry] {
        guard let first = log.firstIndex, let last = log.lastIndex else { return [] }
        var all: [LogEntry] = []
        try log.readEntries(from: first, through: last) { all += $0 }
        return all
    }

    /// Writes the standard entries to a fresh log and returns its segment bytes and record ends.
    static func makeSegment() throws -> (bytes: [UInt8], recordEnds: [Int], entries: [LogEntry]) {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let entries = sizes.enumerated().map { entry(UInt64($0.offset + 1), size: $0.element) }
        let (log, _) = try QuorumLog.open(directory: dir.path, segmentTargetBytes: 4096)
        // Three group commits; the last one, records 5 and 6, is what a crash can tear.
        try log.append(Array(entries[0..<2]))
        try log.append(Array(entries[2..<4]))
        try log.append(Array(entries[4...]))
        let segment = log.segments[0]
        var ends: [Int] = []
        var offset = QuorumLog.segmentHeaderSize
        for entry in entries {
            offset += LogRecord.framedSize(payloadCount: entry.payload.count)
            ends.append(offset)
        }
        // The records only, without the preallocated zeros after them.
        let bytes = Array([UInt8](try Data(contentsOf: URL(fileURLWithPath: segment.path))).prefix(segment.size))
        #expect(bytes.count == ends.last)
        return (bytes, ends, entries)
    }

    static func openWith(segmentBytes bytes: [UInt8]) throws -> (dir: TemporaryDirectory, result: Result<(QuorumLog, QuorumLog.Recovery), ClusterError>) {
        let dir = TemporaryDirectory()
        try Data(bytes).write(to: URL(fileURLWithPath: dir.file("00000000000000000001.seg")))
        do {
            return (dir, .success(try QuorumLog.open(directory: dir.path)))
        } catch {
            return (dir, .failure(error))
        }
    }

    @Test("Appended groups read back after reopening")
    func appendAndReopen() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let entries = (1...10).map { Self.entry(UInt64($0), size: $0 * 3) }
        do {
            let (log, _) = try QuorumLog.open(directory: dir.path)
            try log.append(Array(entries[0..<1]))
            try log.append(Array(entries[1..<7]))
            try log.append(Array(entries[7...]))
        }
        let (log, recovery) = try QuorumLog.open(directory: dir.path)
        #expect(recovery.truncatedBytes == 0)
        #expect(try Self.readAll(log) == entries)
        #expect(log.lastTerm == entries.last?.term)
        try log.append([Self.entry(11, size: 5)])
        #expect(log.lastIndex == 11)
    }

    @Test("Cutting the file at any byte loses only the records not wholly written")
    func truncationAtEveryByte() throws {
        let (bytes, ends, entries) = try Self.makeSegment()
        for length in QuorumLog.segmentHeaderSize..<bytes.count {
            let (dir, result) = try Self.openWith(segmentBytes: Array(bytes.prefix(length)))
            defer { dir.remove() }
            let (log, _) = try result.get()
            let whole = ends.filter { $0 <= length }.count
            #expect(try Self.readAll(log) == Array(entries.prefix(whole)), "cut at \(length)")
            #expect(log.segments[0].size == (whole == 0 ? QuorumLog.segmentHeaderSize : ends[whole - 1]), "cut at \(length)")
            // The log continues correctly after recovery.
            try log.append([Self.entry(UInt64(whole + 1), size: 9)])
            let (reopened, recovery) = try QuorumLog.open(directory: dir.path)
            #expect(recovery.truncatedBytes == 0)
            #expect(try Self.readAll(reopened).count == whole + 1)
        }
    }

    @Test("Damage anywhere in the last record is a torn tail: cut, nothing invented")
    func damagedLastRecord() throws {
        let (bytes, ends, entries) = try Self.makeSegment()
        let lastStart = ends[ends.count - 2]
        let lastBodyEnd = lastStart + LogRecord.headerSize + LogRecord.Format.current.bodyPrefixSize + entries.last!.payload.count
        for position in lastStart..<lastBodyEnd {
            var damaged = bytes
            damaged[position] ^= 0x5A
            let (dir, result) = try Self.openWith(segmentBytes: damaged)
            defer { dir.remove() }
            let (log, recovery) = try result.get()
            #expect(try Self.readAll(log) == Array(entries.dropLast()), "flip at \(position)")
            #expect(recovery.truncatedBytes == bytes.count - lastStart)
        }
    }

    @Test("Damage in any record of the last group is a torn write of that group: cut from the damage on")
    func damagedLastGroup() throws {
        let (bytes, ends, entries) = try Self.makeSegment()
        // Records 5 and 6 form the last group; damage in record 5 is followed by record 6 of the
        // same group, which a torn write can leave behind intact.
        for number in 4..<6 {
            let start = ends[number - 1]
            let bodyEnd = start + LogRecord.headerSize + LogRecord.Format.current.bodyPrefixSize + entries[number].payload.count
            for position in start..<bodyEnd {
                var damaged = bytes
                damaged[position] ^= 0x01
                let (dir, result) = try Self.openWith(segmentBytes: damaged)
                defer { dir.remove() }
                let (log, recovery) = try result.get()
                #expect(try Self.readAll(log) == Array(entries.prefix(number)), "flip at \(position)")
                #expect(recovery.truncatedBytes == bytes.count - start)
            }
        }
    }

    @Test("Damage before the last group is refused with ERROR_CLUSTERLOG_CORRUPT and the file is left alone")
    func damageBeforeTail() throws {
        let (bytes, ends, entries) = try Self.makeSegment()
        var start = QuorumLog.segmentHeaderSize
        // Records 1-4: two complete groups, each followed by a later group.
        for (number, end) in ends.prefix(4).enumerated() {
            let bodyEnd = start + LogRecord.headerSize + LogRecord.Format.current.bodyPrefixSize + entries[number].payload.count
            for position in start..<bodyEnd {
                var damaged = bytes
                damaged[position] ^= 0x01
                let (dir, result) = try Self.openWith(segmentBytes: damaged)
                defer { dir.remove() }
                switch result {
                case .success: Issue.record("damage in record \(number + 1) at \(position) was accepted")
                case .failure(let error): #expect(error.code == .clusterLogCorrupt)
                }
                let after = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir.file("00000000000000000001.seg"))))
                #expect(after == damaged, "the damaged file was changed")
            }
            start = end
        }
    }

    @Test("Zeros after the last record are preallocated space; garbage there is a torn tail")
    func zeroAndGarbageTails() throws {
        let (bytes, _, entries) = try Self.makeSegment()
        do {
            let (dir, result) = try Self.openWith(segmentBytes: bytes + [UInt8](repeating: 0, count: 4096))
            defer { dir.remove() }
            let (log, recovery) = try result.get()
            #expect(try Self.readAll(log) == entries)
            #expect(recovery.truncatedBytes == 0)
            // An append overwrites the zeros; reopening reads every record.
            try log.append([Self.entry(UInt64(entries.count + 1), size: 10)])
            let (reopened, again) = try QuorumLog.open(directory: dir.path)
            #expect(try Self.readAll(reopened).count == entries.count + 1)
            #expect(again.truncatedBytes == 0)
        }
        var random = UInt64(12345)
        let garbage = (0..<100).map { _ -> UInt8 in
            random = random &* 6364136223846793005 &+ 1
            return UInt8(random >> 56) | 1
        }
        for tail in [garbage, garbage + [UInt8](repeating: 0, count: 4096), [0, 0, 0, 0, 0, 0, 0, 0] + garbage] {
            let (dir, result) = try Self.openWith(segmentBytes: bytes + tail)
            defer { dir.remove() }
            let (log, recovery) = try result.get()
            #expect(try Self.readAll(log) == entries)
            #expect(recovery.truncatedBytes == tail.count)
        }
    }

    @Test("Segments rotate; damage in a closed segment or a missing segment is corruption")
    func segments() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let entries = (1...20).map { Self.entry(UInt64($0), size: 40) }
        do {
            let (log, _) = try QuorumLog.open(directory: dir.path, segmentTargetBytes: 200)
            for entry in entries { try log.append([entry]) }
            #expect(log.segments.count > 3)
        }
        let (log, recovery) = try QuorumLog.open(directory: dir.path, segmentTargetBytes: 200)
        #expect(try Self.readAll(log) == entries)
        #expect(recovery.truncatedBytes == 0, "preallocated zeros are not a torn tail")
        for segment in log.segments {
            let size = try FileManager.default.attributesOfItem(atPath: segment.path)[.size] as? Int ?? 0
            #expect(size >= 4096, "segments are preallocated")
        }
        // Removing segments behind index 10 keeps everything after it readable.
        try log.removeSegments(through: 10)
        #expect(log.firstIndex! <= 11)
        var after: [LogEntry] = []
        try log.readEntries(from: 11, through: 20) { after += $0 }
        #expect(after == Array(entries[10...]))

        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".seg") }.sorted()
        // A bit flip in the first (closed) segment's last record.
        let firstPath = dir.file(names[0])
        var firstBytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: firstPath)))
        firstBytes[firstBytes.count - 20] ^= 0xFF
        try Data(firstBytes).write(to: URL(fileURLWithPath: firstPath))
        #expect(Self.openError(dir.path)?.code == .clusterLogCorrupt)
        firstBytes[firstBytes.count - 20] ^= 0xFF
        try Data(firstBytes).write(to: URL(fileURLWithPath: firstPath))
        #expect(Self.openError(dir.path) == nil)
        // A missing middle segment is a gap.
        try FileManager.default.removeItem(atPath: dir.file(names[1]))
        #expect(Self.openError(dir.path)?.code == .clusterLogCorrupt)
    }

    /// The error opening the log at `path` throws, nil when it opens.
    static func openError(_ path: String) -> ClusterError? {
        do {
            _ = try QuorumLog.open(directory: path)
            return nil
        } catch {
            return error
        }
    }
}

/// Goal: whatever bytes a crash or a bad disk leaves in the segments, opening the log never
/// crashes or hangs, never invents an entry, and never silently drops one that is intact and
/// followed by intact ones. Method: a seeded loop mutates a three-segment log (flips, zeroed
/// runs, cuts, appended garbage) and checks each outcome against the original entries.
@Suite("Quorum log: seeded mutations")
struct QuorumLogMutationTests {
    @Test("Mutated segments open to a prefix of the original entries or fail with ERROR_CLUSTERLOG_CORRUPT")
    func mutations() throws {
        let source = TemporaryDirectory()
        defer { source.remove() }
        let entries = (1...30).map { QuorumLogTests.entry(UInt64($0), size: ($0 * 7) % 90) }
        do {
            let (log, _) = try QuorumLog.open(directory: source.path, segmentTargetBytes: 600)
            for group in stride(from: 0, to: entries.count, by: 3) {
                try log.append(Array(entries[group..<min(group + 3, entries.count)]))
            }
            #expect(log.segments.count >= 3)
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: source.path).filter { $0.hasSuffix(".seg") }.sorted()
        let originals = try names.map { [UInt8](try Data(contentsOf: URL(fileURLWithPath: source.file($0)))) }
        var random = SplitMix64(seed: 0x5EED)
        var outcomes = (opened: 0, refused: 0)
        for _ in 0..<300 {
            var files = originals
            let target = Int(random.next() % UInt64(files.count))
            var bytes = files[target]
            switch random.next() % 4 {
            case 0:
                let position = Int(random.next() % UInt64(bytes.count))
                bytes[position] ^= UInt8(1 + random.next() % 255)
            case 1:
                let start = Int(random.next() % UInt64(bytes.count))
                let end = min(bytes.count, start + 1 + Int(random.next() % 64))
                for index in start..<end { bytes[index] = 0 }
            case 2:
                bytes = Array(bytes.prefix(Int(random.next() % UInt64(bytes.count))))
            default:
                bytes += (0..<Int(1 + random.next() % 40)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            }
            files[target] = bytes
            let dir = TemporaryDirectory()
            defer { dir.remove() }
            for (name, content) in zip(names, files) {
                try Data(content).write(to: URL(fileURLWithPath: dir.file(name)))
            }
            do {
                let (log, _) = try QuorumLog.open(directory: dir.path, segmentTargetBytes: 600)
                let read = try QuorumLogTests.readAll(log)
                #expect(read == Array(entries.prefix(read.count)), "an entry changed or was invented")
                // Damage outside the last segment is refused, never trimmed; in the last segment
                // only entries of that segment may be cut.
                if target == names.count - 1 {
                    let lastFirst = Int(names[target].prefix(20)) ?? 1
                    #expect(read.count >= lastFirst - 1, "entries before the last segment were lost")
                } else {
                    #expect(read.count == entries.count, "damage in a closed segment was trimmed")
                }
                outcomes.opened += 1
            } catch {
                #expect((error as? ClusterError)?.code == .clusterLogCorrupt, "\(error)")
                outcomes.refused += 1
            }
        }
        #expect(outcomes.opened > 0 && outcomes.refused > 0)
    }
}
