import ClusDBModel
import ClusDBStore
import ClusDBTestSupport
import Foundation
import Testing

/// Recovery rules that tell damage from a torn write and from a newer format: a record whose
/// checksum is right is never cut as a torn tail, and any prefix of the last (never acknowledged)
/// group, however many pages it spans and in whatever order they reached the disk, is a torn
/// tail that start-up drops exactly.
@Suite("Quorum log: torn groups and records this build cannot read")
struct QuorumLogRecoveryTests {
    static let segmentName = "00000000000000000001.seg"

    static func bytes(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }

    static func write(_ bytes: [UInt8], _ path: String) throws { try Data(bytes).write(to: URL(fileURLWithPath: path)) }

    /// A format-2 record with arbitrary body fields, checksummed as a real one.
    static func craftedRecord(index: UInt64, term: UInt64, kind: UInt8, format: UInt8, position: UInt32 = 0, size: UInt32 = 1) -> [UInt8] {
        var body: [UInt8] = []
        withUnsafeBytes(of: index.littleEndian) { body += $0 }
        withUnsafeBytes(of: term.littleEndian) { body += $0 }
        body += [kind, format, 0, 0]
        withUnsafeBytes(of: position.littleEndian) { body += $0 }
        withUnsafeBytes(of: size.littleEndian) { body += $0 }
        body += [1, 2, 3]
        var record: [UInt8] = []
        withUnsafeBytes(of: UInt32(body.count).littleEndian) { record += $0 }
        withUnsafeBytes(of: CRC32C.checksum(body).littleEndian) { record += $0 }
        record += body
        while record.count % 8 != 0 { record.append(0) }
        return record
    }

    /// A log with two entries, then `record` appended after them, then `tail`.
    static func logWith(record: [UInt8], tail: [UInt8] = []) throws -> TemporaryDirectory {
        let dir = TemporaryDirectory()
        let (log, _) = try QuorumLog.open(directory: dir.path)
        try log.append([QuorumLogTests.entry(1, size: 10), QuorumLogTests.entry(2, size: 20)])
        let size = log.segments[0].size
        log.close()
        var bytes = Array(try Self.bytes(dir.file(segmentName)).prefix(size))
        bytes += record + tail
        try Self.write(bytes, dir.file(segmentName))
        return dir
    }

    @Test("A checksummed record of an unknown kind, or of a newer record format, stops start-up and changes no file")
    func unreadableRecords() throws {
        let garbage: [UInt8] = [0xDE, 0xAD, 0xBE, 0xEF, 1, 2, 3, 4]
        let cases: [(record: [UInt8], code: Win32Error, mentions: String)] = [
            (Self.craftedRecord(index: 3, term: 1, kind: 9, format: 2), .clusterLogCorrupt, "entry kind 9"),
            (Self.craftedRecord(index: 3, term: 1, kind: 1, format: 5), .revisionMismatch, "log format 5"),
            // Format 3 is read (a membership change); a command announcing it no build writes.
            (Self.craftedRecord(index: 3, term: 1, kind: 1, format: 3), .clusterLogCorrupt, "no build writes"),
            (Self.craftedRecord(index: 3, term: 1, kind: 3, format: 2), .clusterLogCorrupt, "no build writes"),
            (Self.craftedRecord(index: 3, term: 1, kind: 77, format: 4), .revisionMismatch, "log format 4"),
            (Self.craftedRecord(index: 3, term: 1, kind: 1, format: 2, position: 5, size: 2), .clusterLogCorrupt, "group position"),
            (Self.craftedRecord(index: UInt64.max, term: 1, kind: 1, format: 2), .clusterLogCorrupt, "out of range"),
        ]
        for (record, code, mentions) in cases {
            // Last in the log, and followed by a torn tail: neither may be cut.
            for tail in [[], garbage] {
                let dir = try Self.logWith(record: record, tail: tail)
                defer { dir.remove() }
                let before = try Self.bytes(dir.file(Self.segmentName))
                let error = QuorumLogTests.openError(dir.path)
                #expect(error?.code == code, "\(mentions): \(String(describing: error))")
                #expect(error?.message.contains(mentions) == true, "\(String(describing: error?.message))")
                #expect(try Self.bytes(dir.file(Self.segmentName)) == before, "the log was changed")
            }
        }
        // A newer record behind damage (a torn write cannot have made it) is refused too.
        let newer = Self.craftedRecord(index: 4, term: 1, kind: 1, format: 5)
        let dir = try Self.logWith(record: garbage + newer)
        defer { dir.remove() }
        let before = try Self.bytes(dir.file(Self.segmentName))
        #expect(QuorumLogTests.openError(dir.path)?.code == .revisionMismatch)
        #expect(try Self.bytes(dir.file(Self.segmentName)) == before)
    }

    @Test("A segment of a newer format is refused naming the format; extreme header indexes are refused cleanly")
    func newerSegmentAndExtremeHeaders() throws {
        for (version, firstIndex, code) in [
            (UInt32(3), UInt64(1), Win32Error.revisionMismatch), (UInt32(0xFFFF_FFFF), 1, .revisionMismatch),
            (2, UInt64.max, .clusterLogCorrupt), (2, 0, .clusterLogCorrupt),
        ] {
            let dir = TemporaryDirectory()
            defer { dir.remove() }
            var header = ByteWriter(capacity: QuorumLog.segmentHeaderSize)
            for byte in QuorumLog.segmentMagic { header.u8(byte) }
            header.u32(version)
            header.u32(0)
            header.u64(firstIndex)
            header.u32(CRC32C.checksum(header.bytes))
            header.u32(0)
            try Self.write(header.bytes + [UInt8](repeating: 0, count: 64), dir.file(String(format: "%020llu.seg", max(firstIndex, 1))))
            let error = QuorumLogTests.openError(dir.path)
            #expect(error?.code == code, "version \(version) first \(firstIndex): \(String(describing: error))")
            if code == .revisionMismatch { #expect(error?.message.contains("needs log format \(version)") == true) }
        }
    }

    /// A log of two small groups and one large last group (many pages), as bytes on disk before
    /// and after the last group's write.
    static func largeLastGroup() throws -> (before: [UInt8], after: [UInt8], groupStart: Int, entries: [LogEntry], secondGroupStart: Int) {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let (log, _) = try QuorumLog.open(directory: dir.path, segmentTargetBytes: 256 << 10)
        let entries = (1...130).map { QuorumLogTests.entry(UInt64($0), size: 200 + $0 * 13 % 700) }
        try log.append(Array(entries[0..<3]))
        let secondGroupStart = log.segments[0].size
        try log.append(Array(entries[3..<5]))
        let before = try Self.bytes(dir.file(segmentName))
        let groupStart = log.segments[0].size
        try log.append(Array(entries[5...]))
        let after = try Self.bytes(dir.file(segmentName))
        #expect(before.count == after.count, "the segment is preallocated")
        #expect(log.segments[0].size - groupStart > 16 * 4096, "the last group spans many pages")
        return (before, after, groupStart, entries, secondGroupStart)
    }

    /// Opens a segment with `bytes` and checks: it opens, every entry of the first two groups is
    /// there, and what is read is a prefix of the entries.
    static func expectRecovers(_ bytes: [UInt8], entries: [LogEntry], _ label: String) throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try Self.write(bytes, dir.file(segmentName))
        do {
            let (log, _) = try QuorumLog.open(directory: dir.path)
            let read = try QuorumLogTests.readAll(log)
            #expect(read.count >= 5, "\(label): an acknowledged entry was lost")
            #expect(read == Array(entries.prefix(read.count)), "\(label): an entry changed or was invented")
            // And the log goes on from there.
            try log.append([QuorumLogTests.entry(UInt64(read.count + 1), size: 3)])
        } catch {
            Issue.record("\(label): start-up refused: \(error)")
        }
    }

    @Test("The last group torn at every 4 KiB boundary, at random bytes and in random page order always recovers")
    func tornLargeGroup() throws {
        let (before, after, groupStart, entries, _) = try Self.largeLastGroup()
        let groupEnd = after.indices.last { after[$0] != 0 }.map { $0 + 1 } ?? after.count
        // In order, cut at every page boundary inside the group and at random bytes.
        var random = SplitMix64(seed: 0x70_12)
        var cuts = Array(stride(from: (groupStart / 4096 + 1) * 4096, to: groupEnd, by: 4096))
        cuts += (0..<64).map { _ in groupStart + Int(random.next() % UInt64(groupEnd - groupStart)) }
        for cut in cuts {
            try Self.expectRecovers(Array(after[..<cut]) + Array(before[cut...]), entries: entries, "cut at \(cut)")
        }
        // Out of order: each page of the group reached the disk or not, independently.
        let pages = Array(stride(from: groupStart / 4096 * 4096, to: groupEnd, by: 4096))
        for round in 0..<64 {
            var torn = before
            var kept = 0
            for page in pages where random.next() % 2 == 0 {
                let end = min(page + 4096, torn.count)
                torn.replaceSubrange(page..<end, with: after[page..<end])
                kept += 1
            }
            if kept == pages.count { continue }
            try Self.expectRecovers(torn, entries: entries, "page order round \(round)")
        }
    }

    @Test("Damage followed by a record of a later group is still corruption")
    func laterGroupAfterDamage() throws {
        let (_, after, _, _, secondGroupStart) = try Self.largeLastGroup()
        // A flip in the second group's first record: the third group follows intact.
        var damaged = after
        damaged[secondGroupStart + 12] ^= 0x10
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try Self.write(damaged, dir.file(Self.segmentName))
        let error = QuorumLogTests.openError(dir.path)
        #expect(error?.code == .clusterLogCorrupt)
        #expect(error?.message.contains("later group") == true, "\(String(describing: error?.message))")
        #expect(try Self.bytes(dir.file(Self.segmentName)) == damaged)
    }

    @Test("A format-1 segment from an earlier build still reads; appends go to a new format-2 segment")
    func formatOneSegments() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let entries = (1...4).map { QuorumLogTests.entry(UInt64($0), size: $0 * 5) }
        var bytes = QuorumLog.header(firstIndex: 1, format: .v1)
        for entry in entries {
            var body: [UInt8] = []
            withUnsafeBytes(of: entry.index.littleEndian) { body += $0 }
            withUnsafeBytes(of: entry.term.littleEndian) { body += $0 }
            body.append(entry.kind.rawValue)
            body += entry.payload
            withUnsafeBytes(of: UInt32(body.count).littleEndian) { bytes += $0 }
            withUnsafeBytes(of: CRC32C.checksum(body).littleEndian) { bytes += $0 }
            bytes += body
            while bytes.count % 8 != 0 { bytes.append(0) }
        }
        try Self.write(bytes, dir.file(Self.segmentName))
        do {
            let (log, _) = try QuorumLog.open(directory: dir.path)
            #expect(try QuorumLogTests.readAll(log) == entries)
            #expect(log.segments.map(\.format) == [.v1])
            let next = QuorumLogTests.entry(5, size: 7)
            try log.append([next])
            #expect(log.segments.map(\.format) == [.v1, .v2])
        }
        let (log, _) = try QuorumLog.open(directory: dir.path)
        #expect(try QuorumLogTests.readAll(log) == entries + [QuorumLogTests.entry(5, size: 7)])
    }

    @Test("An empty format-1 last segment (an earlier build's crash before its first sync) is replaced on the first append")
    func emptyFormatOneSegment() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try Self.write(QuorumLog.header(firstIndex: 1, format: .v1) + [UInt8](repeating: 0, count: 4096), dir.file(Self.segmentName))
        do {
            let (log, _) = try QuorumLog.open(directory: dir.path)
            #expect(log.lastIndex == nil)
            try log.append([QuorumLogTests.entry(1, size: 5)])
            #expect(log.segments.map(\.format) == [.v2])
        }
        let (log, _) = try QuorumLog.open(directory: dir.path)
        #expect(try QuorumLogTests.readAll(log) == [QuorumLogTests.entry(1, size: 5)])
    }
}
