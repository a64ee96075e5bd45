import ClusDBModel
import ClusDBStore
import Testing

@Suite("CRC-32C")
struct CRC32CTests {
    @Test("Known vectors")
    func vectors() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8]()) == 0)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
    }

    @Test("Continuing over pieces equals one pass, at every split")
    func continuation() {
        let bytes = (0..<100).map { UInt8(truncatingIfNeeded: $0 &* 37) }
        let whole = CRC32C.checksum(bytes)
        for split in 0...bytes.count {
            #expect(CRC32C.checksum(Array(bytes[split...]), continuing: CRC32C.checksum(Array(bytes[..<split]))) == whole)
        }
    }

    @Test("The processor's instruction and the table agree at every length, offset and content")
    func hardwareMatchesTable() {
        var generator = RandomSource(seed: 0xC3C3)
        let bytes = (0..<4096).map { _ in UInt8.random(in: 0...255, using: &generator) }
        bytes.withUnsafeBytes { all in
            for _ in 0..<2000 {
                let start = Int.random(in: 0..<64, using: &generator)
                let count = Int.random(in: 0...(all.count - start), using: &generator)
                let slice = UnsafeRawBufferPointer(rebasing: all[start..<(start + count)])
                let seed = UInt32.random(in: 0...UInt32.max, using: &generator)
                #expect(CRC32C.checksum(slice, continuing: seed) == CRC32C.tableChecksum(slice, continuing: seed))
            }
        }
        // Where the machine has the instruction, the comparison above was between two
        // implementations; say so when it was not, rather than pass silently.
        #if arch(x86_64)
        #expect(CRC32C.usesHardware, "x86-64 machines running ClusDB have SSE 4.2")
        #endif
    }
}
