#if canImport(Glibc)
import Glibc
#endif
import ClusDBModel
import ClusDBPeer
import ClusDBRaft
import ClusDBStore
import ClusDBTestSupport
import Logging
import NIOPosix
import Synchronization
import Testing

@testable import ClusDBServer

@Suite("Peer transport: handshake, messages in order, refusals, garbage and reconnects over loopback TCP")
struct PeerTransportTests {
    /// What a transport handed to its node.
    final class Inbox: Sendable {
        let messages = Mutex<[RaftMessage]>([])
        let newerGenerations = Mutex<[UInt64]>([])
        let snapshots = Mutex<[(message: RaftMessage, path: String)]>([])
        var count: Int { messages.withLock { $0.count } }
    }

    /// A transport on 127.0.0.1 and its inbox.
    struct Endpoint {
        let transport: PeerTransport
        let inbox: Inbox
        let port: Int
        let id: NodeID
    }

    private func endpoint(
        _ id: NodeID, cluster: String = "c1", generation: UInt64 = 1, port: Int = 0, snapshotDirectory: String? = nil,
        handshakeSeconds: Int = 10, group: MultiThreadedEventLoopGroup
    ) async throws -> Endpoint {
        let hello = PeerHello(
            clusterID: cluster, clusterName: "cluster-\(cluster)", nodeID: id, nodeName: "n\(id)", restoreGeneration: generation,
            peerAddress: "127.0.0.1:\(port)")
        var options = PeerTransport.Options()
        options.reconnectDelayMinMilliseconds = 5
        options.reconnectDelayMaxMilliseconds = 50
        options.handshakeSeconds = handshakeSeconds
        let inbox = Inbox()
        // Refusals and closed connections are logged at warning level; the tests count them.
        var logger = Logger(label: "peer-test-n\(id)")
        logger.logLevel = .error
        let transport = try PeerTransport(
            local: hello, group: group, options: options, logger: logger,
            onMessage: { message in inbox.messages.withLock { $0.append(message) } },
            onNewerGeneration: { generation, _ in inbox.newerGenerations.withLock { $0.append(generation) } },
            snapshotDirectory: snapshotDirectory,
            onSnapshot: { message, path in inbox.snapshots.withLock { $0.append((message, path)) } })
        return Endpoint(transport: transport, inbox: inbox, port: try await transport.start(), id: id)
    }

    private func connect(_ endpoints: [Endpoint]) {
        let addresses = Dictionary(uniqueKeysWithValues: endpoints.map { ($0.id, "127.0.0.1:\($0.port)") })
        for endpoint in endpoints { endpoint.transport.setPeers(addresses) }
    }

    private func messages(from: NodeID, to: NodeID, count: Int, seed: UInt64) -> [RaftMessage] {
        var random = RandomSource(seed: seed)
        var messages: [RaftMessage] = []
        while messages.count < count {
            // Snapshot messages travel with their image (sendSnapshot), not through send.
            for message in PeerWireSamples.everyBody(&random) where messages.count < count {
                if case .installSnapshot = message.body { continue }
                messages.append(RaftMessage(from: from, to: to, term: message.term, body: message.body))
            }
        }
        return messages
    }

    @Test("Two nodes exchange every kind of Raft message, each direction in the order sent")
    func exchange() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let a = try await endpoint(1, group: group)
        let b = try await endpoint(2, group: group)
        connect([a, b])
        let toB = messages(from: 1, to: 2, count: 300, seed: 1)
        let toA = messages(from: 2, to: 1, count: 300, seed: 2)
        for message in toB { a.transport.send(message) }
        for message in toA { b.transport.send(message) }
        try await waitUntil("both received 300 messages") { a.inbox.count == 300 && b.inbox.count == 300 }
        #expect(b.inbox.messages.withLock { $0 } == toB)
        #expect(a.inbox.messages.withLock { $0 } == toA)
        #expect(a.transport.counts.sent == 300 && a.transport.counts.dropped == 0 && a.transport.counts.delivered == 300)
        await a.transport.stop()
        await b.transport.stop()
        try await group.shutdownGracefully()
    }

    @Test("A node of another cluster, or from before a restore, is refused at the handshake and gets no message through")
    func refusedHandshakes() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let a = try await endpoint(1, group: group)
        let stranger = try await endpoint(2, cluster: "c2", group: group)
        connect([a, stranger])
        a.transport.send(RaftMessage(from: 1, to: 2, term: 1, body: .timeoutNow))
        stranger.transport.send(RaftMessage(from: 2, to: 1, term: 1, body: .timeoutNow))
        // Each refuses the other's hello and hears the other refuse its own.
        try await waitUntil("both refused and were refused") {
            [a, stranger].allSatisfy { $0.transport.counts.refusalsSent >= 1 && $0.transport.counts.refusalsReceived >= 1 }
        }
        #expect(a.inbox.count == 0 && stranger.inbox.count == 0)
        await stranger.transport.stop()

        // Node 3 predates a restore (generation 0); node 1 is at generation 1.
        let stale = try await endpoint(3, generation: 0, group: group)
        connect([a, stale])
        a.transport.send(RaftMessage(from: 1, to: 3, term: 1, body: .timeoutNow))
        stale.transport.send(RaftMessage(from: 3, to: 1, term: 1, body: .timeoutNow))
        // Node 1's hello tells node 3 it is stale (node 3 refuses it); node 1 refuses node 3's.
        try await waitUntil("node 3 learned of the newer generation and refused node 1; node 1 refused node 3") {
            stale.inbox.newerGenerations.withLock { $0.contains(1) } && stale.transport.counts.refusalsSent >= 1
                && stale.transport.counts.refusalsReceived >= 1
        }
        #expect(a.inbox.count == 0 && stale.inbox.count == 0)
        await a.transport.stop()
        await stale.transport.stop()
        try await group.shutdownGracefully()
    }

    @Test("A node of this cluster that is not a member is refused, and a member that connects from another host")
    func strangersOfThisCluster() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let a = try await endpoint(1, group: group)
        let b = try await endpoint(2, group: group)
        // Node 2 knows nobody; node 1 knows node 2.
        a.transport.setPeers([2: "127.0.0.1:\(b.port)"])
        a.transport.send(RaftMessage(from: 1, to: 2, term: 1, body: .timeoutNow))
        try await waitUntil("node 2 refused the unknown node 1") { b.transport.counts.refusalsSent >= 1 && a.transport.counts.refusalsReceived >= 1 }
        // Node 2 now knows node 1, but at another host than the one it connects from.
        b.transport.setPeers([1: "127.0.0.2:\(a.port)"])
        let before = b.transport.counts.refusalsSent
        a.transport.send(RaftMessage(from: 1, to: 2, term: 1, body: .timeoutNow))
        try await waitUntil("node 2 refused node 1 from the wrong host") { b.transport.counts.refusalsSent > before }
        #expect(b.inbox.count == 0)
        await a.transport.stop()
        await b.transport.stop()
        try await group.shutdownGracefully()
    }

    @Test("Random bytes, an oversized frame or a hello of another cluster close the connection; the node keeps receiving from its peers")
    func badInput() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let a = try await endpoint(1, group: group)
        // A long handshake timeout: each bad input must close the connection by itself.
        let b = try await endpoint(2, handshakeSeconds: 600, group: group)
        b.transport.setPeers([1: "127.0.0.1:\(a.port)"])
        var random = RandomSource(seed: 11)
        var oversized = ByteWriter()
        oversized.u32(UInt32(Limits.peerFrameBodyBytesMax + 1))
        for byte in [PeerFrame.protocolVersion, PeerFrame.Kind.hello.rawValue, 0, 0, 0, 0, 0, 0] { oversized.u8(byte) }
        let foreignHello = PeerHello(clusterID: "c9", clusterName: "other", nodeID: 7, nodeName: "n7", restoreGeneration: 1, peerAddress: "127.0.0.1:1")
        let inputs: [(String, [UInt8])] = [
            ("random bytes", (0..<4_096).map { _ in UInt8(truncatingIfNeeded: random.next()) }),
            ("an oversized frame", oversized.bytes),
            ("a hello of another cluster", PeerFrame(kind: .hello, body: foreignHello.encoded).encoded),
            ("a Raft message before any hello", PeerFrame(kind: .raftMessage, body: RaftMessageCoding.encode(RaftMessage(from: 7, to: 2, term: 1, body: .timeoutNow))).encoded),
        ]
        for (what, bytes) in inputs {
            let answer = try await Task.detached { try Self.sendAndReadUntilClosed(bytes, port: b.port) }.value
            if what == "a hello of another cluster" {
                var decoder = PeerFrameDecoder()
                decoder.append(answer)
                let frame = try decoder.next()
                #expect(frame?.kind == .refusal, "\(what) is answered with a refusal")
                #expect(try frame.map { try PeerRefusal.decode($0.body).code } == .clusterInstanceIDMismatch)
            }
        }
        connect([a, b])
        a.transport.send(RaftMessage(from: 1, to: 2, term: 4, body: .heartbeat(commit: 1, context: 0)))
        try await waitUntil("node 2 still receives from node 1") { b.inbox.count == 1 }
        await a.transport.stop()
        await b.transport.stop()
        try await group.shutdownGracefully()
    }

    @Test("A transport whose own hello could not be sent is refused at creation, with a clear error")
    func invalidLocalHello() {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        func creation(_ hello: PeerHello) -> ClusterError? {
            do {
                _ = try PeerTransport(local: hello, group: group, logger: Logger(label: "peer-test"), onMessage: { _ in })
                return nil
            } catch { return error }
        }
        let good = PeerHello(clusterID: "c1", clusterName: "c", nodeID: 1, nodeName: "n1", restoreGeneration: 1, peerAddress: "127.0.0.1:0")
        #expect(creation(good) == nil)
        var long = good
        long.nodeName = String(repeating: "n", count: PeerHello.stringBytesMax + 1)
        #expect(creation(long)?.code == .invalidParameter)
        #expect(creation(long)?.message.contains("node name") == true)
        var address = good
        address.peerAddress = "nowhere"
        #expect(creation(address)?.code == .invalidParameter)
    }

    @Test("A node that answers at a member's address but is another member is not sent to")
    func wrongMemberAtAddress() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let a = try await endpoint(1, group: group)
        let c = try await endpoint(3, group: group)
        // Node 1 believes node 2 listens where node 3 does; node 3 knows node 1.
        a.transport.setPeers([2: "127.0.0.1:\(c.port)"])
        c.transport.setPeers([1: "127.0.0.1:\(a.port)"])
        a.transport.send(RaftMessage(from: 1, to: 2, term: 1, body: .timeoutNow))
        try await waitUntil("node 1 broke the handshake off") { a.transport.counts.handshakesBroken >= 1 }
        #expect(a.transport.counts.sent == 0)
        await a.transport.stop()
        await c.transport.stop()
        try await group.shutdownGracefully()
    }

    @Test("A peer that goes away and comes back on the same address is redialed; messages flow again")
    func reconnect() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let a = try await endpoint(1, group: group)
        // A port below the kernel's ephemeral range (32768 and up), so that no outgoing
        // connection of a test running beside this one takes it while node 2 is away.
        var bound: Endpoint?
        var random = RandomSource(seed: UInt64(getpid()))
        for _ in 0..<100 where bound == nil {
            bound = try? await endpoint(2, port: 20_000 + Int(random.next() % 10_000), group: group)
        }
        let b = try #require(bound)
        connect([a, b])
        a.transport.send(RaftMessage(from: 1, to: 2, term: 1, body: .timeoutNow))
        try await waitUntil("first message") { b.inbox.count == 1 }
        await b.transport.stop()
        let restarted = try await endpoint(2, port: b.port, group: group)
        restarted.transport.setPeers([1: "127.0.0.1:\(a.port)"])
        var delivered = false
        // Until the redial succeeds, messages may be dropped or queued: keep sending, as a
        // leader's heartbeats do.
        for term in UInt64(2)...UInt64(60_000) {
            a.transport.send(RaftMessage(from: 1, to: 2, term: term, body: .timeoutNow))
            if restarted.inbox.count > 0 {
                delivered = true
                break
            }
            try await Task.sleep(for: .milliseconds(1))
        }
        #expect(delivered, "the restarted peer received a message")
        await a.transport.stop()
        await restarted.transport.stop()
        try await group.shutdownGracefully()
    }

    @Test("A snapshot image streams in chunks and reaches the node whole and durable, with its message; an empty image too")
    func snapshotStream() async throws {
        let directory = TemporaryDirectory("peer-snapshots")
        defer { directory.remove() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let a = try await endpoint(1, group: group)
        let b = try await endpoint(2, snapshotDirectory: directory.file("received"), group: group)
        connect([a, b])
        a.transport.send(RaftMessage(from: 1, to: 2, term: 3, body: .heartbeat(commit: 0, context: 0)))
        try await waitUntil("the connection is up") { b.inbox.count == 1 }
        var random = RandomSource(seed: 5)
        for (number, size) in [7 * Limits.peerSnapshotChunkBytes / 2, 0].enumerated() {
            let image = (0..<size).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            let imagePath = directory.file("image-\(number)")
            try SystemFile(path: imagePath, flags: O_CREAT | O_WRONLY).write(image, at: 0)
            let metadata = SnapshotMetadata(index: 100 + UInt64(number), term: 3, configuration: RaftConfiguration(voters: [1, 2]))
            let message = RaftMessage(from: 1, to: 2, term: 3, body: .installSnapshot(metadata))
            let result = Mutex<Bool?>(nil)
            a.transport.sendSnapshot(message, imagePath: imagePath) { sent in result.withLock { $0 = sent } }
            try await waitUntil("snapshot \(number) received") { b.inbox.snapshots.withLock { $0.count } == number + 1 }
            try await waitUntil("the sender finished") { result.withLock { $0 } != nil }
            #expect(result.withLock { $0 } == true)
            let received = b.inbox.snapshots.withLock { $0[number] }
            #expect(received.message == message)
            #expect(try SystemFile(path: received.path, flags: O_RDONLY).readAll() == image, "image \(number) arrived byte for byte")
        }
        #expect(try FileSystem.list(directory.file("received")).allSatisfy { !$0.hasPrefix(".") }, "no temporary file is left")
        #expect(a.transport.counts.snapshotsSent == 2 && b.transport.counts.snapshotsReceived == 2)
        #expect(b.inbox.count == 1, "the snapshot messages went to onSnapshot, not onMessage")

        let nobody = Mutex<Bool?>(nil)
        let toNobody = RaftMessage(from: 1, to: 9, term: 3, body: .installSnapshot(SnapshotMetadata(index: 1, term: 1, configuration: RaftConfiguration(voters: [1]))))
        a.transport.sendSnapshot(toNobody, imagePath: directory.file("image-0")) { sent in nobody.withLock { $0 = sent } }
        #expect(nobody.withLock { $0 } == false, "a peer without a connection gets no snapshot, at once")
        await a.transport.stop()
        await b.transport.stop()
        try await group.shutdownGracefully()
    }

    @Test("A broken snapshot stream closes the connection and leaves no file: a chunk out of order, a cut chunk, a message without its image")
    func brokenSnapshotStreams() async throws {
        let directory = TemporaryDirectory("peer-snapshots")
        defer { directory.remove() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let b = try await endpoint(2, snapshotDirectory: directory.file("received"), handshakeSeconds: 600, group: group)
        b.transport.setPeers([1: "127.0.0.1:1"])
        let hello = PeerFrame(kind: .hello, body: PeerHello(clusterID: "c1", clusterName: "cluster-c1", nodeID: 1, nodeName: "n1", restoreGeneration: 1, peerAddress: "127.0.0.1:1").encoded).encoded
        func chunk(offset: UInt64, bytes: [UInt8]) -> [UInt8] {
            PeerFrame(kind: .snapshotChunk, body: SnapshotChunk(index: 5, term: 1, offset: offset, totalBytes: 10, bytes: bytes).encoded).encoded
        }
        let started = chunk(offset: 0, bytes: [1, 2, 3, 4])
        var cut = SnapshotChunk(index: 5, term: 1, offset: 4, totalBytes: 10, bytes: [5, 6]).encoded
        cut.removeLast()
        let message = PeerFrame(kind: .raftMessage, body: RaftMessageCoding.encode(RaftMessage(
            from: 1, to: 2, term: 1, body: .installSnapshot(SnapshotMetadata(index: 5, term: 1, configuration: RaftConfiguration(voters: [1, 2])))))).encoded
        let streams: [(String, [UInt8])] = [
            ("a chunk out of order", started + chunk(offset: 6, bytes: [7])),
            ("a chunk cut short", started + PeerFrame(kind: .snapshotChunk, body: cut).encoded),
            ("a message without its whole image", started + message),
            ("a chunk before the stream started", chunk(offset: 4, bytes: [5])),
        ]
        for (what, stream) in streams {
            let answer = try await Task.detached { try Self.sendAndReadUntilClosed(hello + stream, port: b.port) }.value
            var decoder = PeerFrameDecoder()
            decoder.append(answer)
            #expect(try decoder.next()?.kind == .welcome, "\(what): the handshake passed, then the node closed")
            try await waitUntil("\(what): no file left behind") {
                ((try? FileSystem.list(directory.file("received"))) ?? []).isEmpty
            }
        }
        // The peer goes away in the middle of an image: once its first chunk is on disk, close.
        func received() -> [String] { (try? FileSystem.list(directory.file("received"))) ?? [] }
        var connection: RawConnection? = try RawConnection(port: b.port)
        connection?.send(bytes: hello + started)
        try await waitUntil("the image was started") { !received().isEmpty }
        connection = nil
        try await waitUntil("a peer gone mid-image: no file left behind") { received().isEmpty }
        #expect(b.inbox.snapshots.withLock { $0.isEmpty } && b.inbox.count == 0)
        await b.transport.stop()
        try await group.shutdownGracefully()
    }

    /// Connects to 127.0.0.1:`port`, sends `bytes`, and reads until the node closes the
    /// connection (a 20 s receive timeout fails the test instead of hanging it).
    static func sendAndReadUntilClosed(_ bytes: [UInt8], port: Int) throws -> [UInt8] {
        let connection = try RawConnection(port: port)
        connection.send(bytes: bytes)
        guard let answer = connection.bytesUntilClosed() else {
            throw ClusterError(.invalidData, "the node did not close the connection")
        }
        return answer
    }
}
