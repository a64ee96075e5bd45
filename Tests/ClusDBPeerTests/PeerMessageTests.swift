import ClusDBModel
import ClusDBPeer
import ClusDBRaft
import ClusDBTestSupport
import Testing

@Suite("Peer messages: Raft messages, hellos, refusals and snapshot chunks round-trip; a peer's bad bytes are refused")
struct PeerMessageTests {
    @Test("Every Raft message body round-trips with random fields, and its encoding is the only one that decodes to it")
    func raftMessagesRoundTrip() throws {
        for seed in UInt64(1)...300 {
            var random = RandomSource(seed: seed)
            for message in PeerWireSamples.everyBody(&random) {
                let body = RaftMessageCoding.encode(message)
                #expect(try RaftMessageCoding.decode(body) == message, "seed \(seed): \(message)")
            }
        }
    }

    @Test("Every proper prefix of a Raft message, and the message with a byte added, is refused")
    func truncatedAndTrailing() {
        var random = RandomSource(seed: 7)
        for message in PeerWireSamples.everyBody(&random) {
            let body = RaftMessageCoding.encode(message)
            for length in 0..<body.count {
                #expect(throws: ClusterError.self, "\(message) cut to \(length) bytes") { try RaftMessageCoding.decode(Array(body.prefix(length))) }
            }
            #expect(throws: ClusterError.self) { try RaftMessageCoding.decode(body + [0]) }
        }
    }

    @Test("An unknown tag, an unknown entry kind, a flag other than 0 or 1 and an invalid configuration are refused by name")
    func badFields() {
        func message(_ body: RaftMessage.Body) -> [UInt8] { RaftMessageCoding.encode(RaftMessage(from: 1, to: 2, term: 3, body: body)) }
        func error(_ bytes: [UInt8]) -> String {
            do {
                _ = try RaftMessageCoding.decode(bytes)
                return "decoded"
            } catch { return error.message }
        }
        var tag = message(.timeoutNow)
        tag[24] = 200
        #expect(error(tag).contains("unknown Raft message tag 200"))
        var flag = message(.voteResponse(granted: true))
        flag[25] = 2
        #expect(error(flag).contains("flag is 2"))
        var kind = message(.append(previousIndex: 0, previousTerm: 0, entries: [RaftEntry(index: 1, term: 1, kind: .noOp)], commit: 0))
        kind[24 + 1 + 16 + 4 + 16] = 9
        #expect(error(kind).contains("unknown kind 9"))
        var configuration = message(.installSnapshot(SnapshotMetadata(index: 5, term: 2, configuration: RaftConfiguration(voters: [1, 2]))))
        // The voters are stored ascending; swapping them makes the configuration invalid.
        let voters = 24 + 1 + 16 + 4 + 8
        configuration.swapAt(voters, voters + 8)
        #expect(error(configuration).contains("invalid configuration"))
    }

    @Test("An append claiming more entries than its bytes can hold is refused before anything is reserved")
    func hugeEntryCount() {
        var writer = ByteWriter()
        writer.u64(1)
        writer.u64(2)
        writer.u64(3)
        writer.u8(5)  // append
        writer.u64(0)
        writer.u64(0)
        writer.u32(UInt32.max)
        writer.u64(0)
        do {
            _ = try RaftMessageCoding.decode(writer.bytes)
            Issue.record("decoded")
        } catch {
            #expect(error.code == .invalidData)
            #expect(error.message.contains("claims 4294967295 entries"), "\(error)")
        }
    }

    @Test("Random bodies never trap a decoder, and whatever does decode re-encodes to the same bytes")
    func randomBodies() throws {
        var decoded = 0
        for seed in UInt64(1)...5_000 {
            var random = RandomSource(seed: seed)
            var bytes = PeerWireSamples.bytes(&random, max: 80)
            // Start most bodies like a real message, so the decoders get past the first fields.
            if seed % 2 == 0 {
                let real = RaftMessageCoding.encode(PeerWireSamples.everyBody(&random)[Int(seed / 2 % 13)])
                bytes = Array(real.prefix(Int(random.next() % UInt64(real.count + 1)))) + bytes.prefix(Int(random.next() % 4))
            }
            if let message = try? RaftMessageCoding.decode(bytes) {
                decoded += 1
                #expect(RaftMessageCoding.encode(message) == bytes, "seed \(seed)")
            }
            if let hello = try? PeerHello(decoding: bytes) { #expect(hello.encoded == bytes) }
            if let chunk = try? SnapshotChunk(decoding: bytes) { #expect(chunk.encoded == bytes) }
            if let refusal = try? PeerRefusal.decode(bytes) { #expect(PeerRefusal.encode(refusal) == bytes) }
        }
        #expect(decoded > 0, "some prefixes plus trailing bytes are whole messages")
    }

    @Test("A hello round-trips; node id 0 and over-long strings are refused")
    func helloCoding() throws {
        var random = RandomSource(seed: 3)
        let hello = PeerWireSamples.hello(&random)
        #expect(try PeerHello(decoding: hello.encoded) == hello)
        var zero = hello
        zero.nodeID = 0
        #expect(throws: ClusterError.self) { try PeerHello(decoding: zero.encoded) }
        var writer = ByteWriter()
        writer.string(String(repeating: "x", count: PeerHello.stringBytesMax + 1))
        #expect(throws: ClusterError.self) { try PeerHello(decoding: writer.bytes + Array(hello.encoded.dropFirst(4 + hello.clusterID.utf8.count))) }
    }

    @Test("A hello's verdict: same cluster and generation accepted; another cluster, an older generation or this node's own id refused; a newer generation reported")
    func helloVerdicts() {
        let local = PeerHello(clusterID: "c1", clusterName: "prod", nodeID: 1, nodeName: "n1", restoreGeneration: 2, peerAddress: "127.0.0.11:7001")
        var peer = PeerHello(clusterID: "c1", clusterName: "prod", nodeID: 2, nodeName: "n2", restoreGeneration: 2, peerAddress: "127.0.0.12:7001")
        #expect(local.verdict(on: peer) == .accept)

        func refusal(_ verdict: PeerHello.Verdict) -> ClusterError? {
            if case .refuse(let error) = verdict { return error }
            return nil
        }
        var other = peer
        other.clusterID = "c9"
        other.clusterName = "test"
        let foreign = refusal(local.verdict(on: other))
        #expect(foreign?.code == .clusterInstanceIDMismatch)
        #expect(foreign?.message.contains("node n2 (id 2) at 127.0.0.12:7001 belongs to cluster test (c9), this node to prod (c1)") == true, "\(String(describing: foreign))")

        peer.restoreGeneration = 1
        let stale = refusal(local.verdict(on: peer))
        #expect(stale?.code == .clusterInstanceIDMismatch)
        #expect(stale?.message.contains("restore generation 1, from before this cluster's restore to generation 2") == true, "\(String(describing: stale))")

        peer.restoreGeneration = 3
        #expect(local.verdict(on: peer) == .peerIsNewer(restoreGeneration: 3))

        peer.restoreGeneration = 2
        peer.nodeID = 1
        #expect(refusal(local.verdict(on: peer))?.code == .invalidParameter)
    }

    @Test("A refusal carries its code and message; a long message is cut at a character boundary")
    func refusalCoding() throws {
        let error = ClusterError(.clusterInstanceIDMismatch, "not this cluster")
        #expect(try PeerRefusal.decode(PeerRefusal.encode(error)) == error)
        let long = ClusterError(.invalidData, String(repeating: "é", count: PeerRefusal.messageBytesMax))
        let cut = try PeerRefusal.decode(PeerRefusal.encode(long))
        #expect(cut.message.utf8.count <= PeerRefusal.messageBytesMax)
        #expect(cut.message.allSatisfy { $0 == "é" })
    }

    @Test("Snapshot chunks round-trip; past the image's end, over the chunk limit, or empty inside an image are refused")
    func snapshotChunks() throws {
        let chunk = SnapshotChunk(index: 10, term: 2, offset: 4, totalBytes: 7, bytes: [1, 2, 3])
        #expect(try SnapshotChunk(decoding: chunk.encoded) == chunk)
        #expect(chunk.isLast)
        #expect(!SnapshotChunk(index: 10, term: 2, offset: 0, totalBytes: 7, bytes: [1]).isLast)
        #expect(try SnapshotChunk(decoding: SnapshotChunk(index: 1, term: 1, offset: 0, totalBytes: 0, bytes: []).encoded).isLast)

        func body(offset: UInt64, total: UInt64, count: Int) -> [UInt8] {
            var writer = ByteWriter()
            writer.u64(10)
            writer.u64(2)
            writer.u64(offset)
            writer.u64(total)
            writer.lengthPrefixed([UInt8](repeating: 7, count: count))
            return writer.bytes
        }
        #expect(throws: ClusterError.self) { try SnapshotChunk(decoding: body(offset: 5, total: 7, count: 3)) }
        #expect(throws: ClusterError.self) { try SnapshotChunk(decoding: body(offset: UInt64.max, total: 7, count: 1)) }
        #expect(throws: ClusterError.self) { try SnapshotChunk(decoding: body(offset: 0, total: 7, count: 0)) }
        let big = Limits.peerSnapshotChunkBytes + 1
        #expect(throws: ClusterError.self) { try SnapshotChunk(decoding: body(offset: 0, total: UInt64(big), count: big)) }
    }

    @Test("A snapshot reception takes the chunks of one snapshot in order and is completed only by its own message")
    func snapshotReception() throws {
        func chunk(_ offset: UInt64, _ count: Int, index: UInt64 = 9, term: UInt64 = 2, total: UInt64 = 10) -> SnapshotChunk {
            SnapshotChunk(index: index, term: term, offset: offset, totalBytes: total, bytes: [UInt8](repeating: 1, count: count))
        }
        let metadata = SnapshotMetadata(index: 9, term: 2, configuration: RaftConfiguration(voters: [1]))
        #expect(throws: ClusterError.self) { try SnapshotReception(first: chunk(4, 2)) }
        var reception = try SnapshotReception(first: chunk(0, 4))
        #expect(!reception.isComplete && !reception.completes(metadata))
        #expect(throws: ClusterError.self, "a gap") { try reception.take(chunk(5, 2)) }
        #expect(throws: ClusterError.self, "a repeat") { try reception.take(chunk(0, 4)) }
        #expect(throws: ClusterError.self, "another snapshot") { try reception.take(chunk(4, 2, index: 10)) }
        #expect(throws: ClusterError.self, "another size") { try reception.take(chunk(4, 2, total: 11)) }
        try reception.take(chunk(4, 6))
        #expect(reception.isComplete && reception.completes(metadata))
        #expect(!reception.completes(SnapshotMetadata(index: 9, term: 3, configuration: RaftConfiguration(voters: [1]))))
    }
}
