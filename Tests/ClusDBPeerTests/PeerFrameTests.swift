import ClusDBModel
import ClusDBPeer
import ClusDBRaft
import ClusDBTestSupport
import ClusDBStore
import Testing

@Suite("Peer frames: length, version, kind and CRC32C; a stream cut anywhere; damage always refused")
struct PeerFrameTests {
    /// Decodes every frame `bytes` holds, fed in one piece.
    private func frames(in bytes: [UInt8]) throws(ClusterError) -> [PeerFrame] {
        var decoder = PeerFrameDecoder()
        decoder.append(bytes)
        var frames: [PeerFrame] = []
        while let frame = try decoder.next() { frames.append(frame) }
        return frames
    }

    private func sampleFrame() -> PeerFrame {
        PeerFrame(kind: .raftMessage, body: RaftMessageCoding.encode(RaftMessage(from: 1, to: 2, term: 3, body: .heartbeat(commit: 4, context: 5))))
    }

    @Test("The header's bytes are as docs/FORMATS.md lays them out (a pinned heartbeat frame)")
    func pinnedBytes() throws {
        let bytes = sampleFrame().encoded
        // Body: from 1, to 2, term 3 (u64 LE each), tag 7 (heartbeat), commit 4, context 5.
        let body: [UInt8] = [1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 7, 4, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0]
        #expect(bytes.count == 12 + body.count)
        #expect(Array(bytes[0..<4]) == [UInt8(body.count), 0, 0, 0], "body length, little-endian")
        #expect(bytes[4] == 1, "protocol version 1")
        #expect(bytes[5] == PeerFrame.Kind.raftMessage.rawValue)
        #expect(Array(bytes[6..<8]) == [0, 0], "reserved")
        let crc = CRC32C.checksum(Array(bytes[0..<8]) + body)
        #expect(Array(bytes[8..<12]) == [UInt8(truncatingIfNeeded: crc), UInt8(truncatingIfNeeded: crc >> 8), UInt8(truncatingIfNeeded: crc >> 16), UInt8(truncatingIfNeeded: crc >> 24)])
        #expect(Array(bytes[12...]) == body)
        #expect(try frames(in: bytes) == [sampleFrame()])
    }

    @Test("A stream of frames cut into pieces of any size decodes to the same frames, in order")
    func cutAnywhere() throws {
        for seed in UInt64(1)...200 {
            var random = RandomSource(seed: seed)
            let sent = PeerWireSamples.everyBody(&random).map { PeerFrame(kind: .raftMessage, body: RaftMessageCoding.encode($0)) }
                + [PeerFrame(kind: .hello, body: PeerWireSamples.hello(&random).encoded), PeerFrame(kind: .snapshotChunk, body: [])]
            let stream = sent.flatMap(\.encoded)
            var decoder = PeerFrameDecoder()
            var received: [PeerFrame] = []
            var offset = 0
            while offset < stream.count {
                let piece = 1 + Int(random.next() % 64)
                decoder.append(stream[offset..<min(offset + piece, stream.count)])
                offset += piece
                while let frame = try decoder.next() { received.append(frame) }
            }
            #expect(received == sent, "seed \(seed)")
            #expect(decoder.bufferedBytes == 0)
        }
    }

    @Test("Every single-bit flip of a frame is refused or leaves the decoder waiting; none yields a frame")
    func everyBitFlip() {
        let bytes = sampleFrame().encoded
        for bit in 0..<bytes.count * 8 {
            var damaged = bytes
            damaged[bit / 8] ^= 1 << UInt8(bit % 8)
            var decoder = PeerFrameDecoder()
            decoder.append(damaged)
            do {
                let frame = try decoder.next()
                // Only a flip that makes the length larger can leave the decoder waiting for the
                // rest of a body that never comes; the checksum refuses it once it would.
                #expect(frame == nil, "bit \(bit): a damaged frame was accepted")
                let length = { (b: [UInt8]) in (0..<4).reduce(0) { $0 | Int(b[$1]) << (8 * $1) } }
                #expect(bit < 32 && length(damaged) > length(bytes), "bit \(bit): only a flip that lengthens the body waits")
            } catch {
                #expect(error.code == .invalidData || error.code == .revisionMismatch, "bit \(bit): \(error)")
            }
        }
    }

    @Test("A length over the limit is refused as soon as the header is in, before any body is buffered")
    func oversizedFrame() {
        var header = ByteWriter()
        header.u32(UInt32(Limits.peerFrameBodyBytesMax + 1))
        header.u8(PeerFrame.protocolVersion)
        header.u8(PeerFrame.Kind.raftMessage.rawValue)
        header.u8(0)
        header.u8(0)
        header.u32(0)
        var decoder = PeerFrameDecoder()
        decoder.append(header.bytes)
        #expect(throws: ClusterError.self) { try decoder.next() }
        #expect(decoder.bufferedBytes == 0)
        do {
            _ = try decoder.next()
            Issue.record("a failed decoder decoded again")
        } catch {
            #expect(error.code == .invalidData)
            #expect(error.message.contains("over the limit"), "\(error)")
        }
    }

    @Test("Another protocol version is ERROR_REVISION_MISMATCH naming both; an unknown kind or reserved bits are ERROR_INVALID_DATA")
    func headerFields() {
        func refusal(patching offset: Int, to value: UInt8) -> ClusterError? {
            var bytes = sampleFrame().encoded
            bytes[offset] = value
            do {
                _ = try frames(in: bytes)
                return nil
            } catch { return error }
        }
        let version = refusal(patching: 4, to: 2)
        #expect(version?.code == .revisionMismatch)
        #expect(version?.message.contains("version 2") == true && version?.message.contains("speaks 1") == true, "\(String(describing: version))")
        #expect(refusal(patching: 5, to: 0)?.code == .invalidData)
        #expect(refusal(patching: 5, to: 99)?.message.contains("unknown peer frame kind 99") == true)
        #expect(refusal(patching: 6, to: 1)?.message.contains("reserved") == true)
        #expect(refusal(patching: 7, to: 0x80)?.message.contains("reserved") == true)
    }

    @Test("Random bytes never trap the decoder and never pass as a frame; a random header is refused at once")
    func garbage() {
        var long = 0
        var refused = 0
        for seed in UInt64(1)...2_000 {
            var random = RandomSource(seed: seed)
            let bytes = PeerWireSamples.bytes(&random, max: 200)
            var decoder = PeerFrameDecoder()
            decoder.append(bytes)
            if bytes.count >= PeerFrame.headerBytes { long += 1 }
            do {
                let frame = try decoder.next()
                #expect(frame == nil, "seed \(seed): random bytes passed as a frame")
            } catch {
                refused += 1
            }
        }
        // A random header has the right version, a zero reserved field and a known kind with
        // probability 5/2^24; anything else is refused as soon as 12 bytes are in.
        #expect(refused == long, "\(refused) of \(long) random streams long enough for a header were refused")
    }
}
