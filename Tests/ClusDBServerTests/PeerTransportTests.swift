#if canImport(Glibc)
import Glibc
#endif
import ClusDBModel
import ClusDBPeer
import ClusDBRaft
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
        _ id: NodeID, cluster: String = "c1", generation: UInt64 = 1, port: Int = 0, group: MultiThreadedEventLoopGroup
    ) async throws -> Endpoint {
        let hello = PeerHello(
            clusterID: cluster, clusterName: "cluster-\(cluster)", nodeID: id, nodeName: "n\(id)", restoreGeneration: generation,
            peerAddress: "127.0.0.1:\(port)")
        var options = PeerTransport.Options()
        options.reconnectDelayMinMilliseconds = 5
        options.reconnectDelayMaxMilliseconds = 50
        let inbox = Inbox()
        // Refusals and closed connections are logged at warning level; the tests count them.
        var logger = Logger(label: "peer-test-n\(id)")
        logger.logLevel = .error
        let transport = try PeerTransport(
            local: hello, group: group, options: options, logger: logger,
            onMessage: { message in inbox.messages.withLock { $0.append(message) } },
            onNewerGeneration: { generation, _ in inbox.newerGenerations.withLock { $0.append(generation) } })
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
            for message in PeerWireSamples.everyBody(&random) where messages.count < count {
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
        try await waitUntil("both sides refused") { a.transport.counts.refusals >= 2 && stranger.transport.counts.refusals >= 2 }
        #expect(a.inbox.count == 0 && stranger.inbox.count == 0)

        // Node 3 predates a restore (generation 0); node 1 is at generation 1.
        let stale = try await endpoint(3, generation: 0, group: group)
        connect([a, stale])
        a.transport.send(RaftMessage(from: 1, to: 3, term: 1, body: .timeoutNow))
        stale.transport.send(RaftMessage(from: 3, to: 1, term: 1, body: .timeoutNow))
        try await waitUntil("the stale node learned of the newer generation") { stale.inbox.newerGenerations.withLock { $0.contains(1) } }
        try await waitUntil("node 1 refused the stale node") { a.transport.counts.refusals >= 3 }
        #expect(a.inbox.count == 0 && stale.inbox.count == 0)
        for endpoint in [a, stranger, stale] { await endpoint.transport.stop() }
        try await group.shutdownGracefully()
    }

    @Test("Random bytes, an oversized frame or a hello of another cluster close the connection; the node keeps receiving from its peers")
    func badInput() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let a = try await endpoint(1, group: group)
        let b = try await endpoint(2, group: group)
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

    @Test("A node that answers at a member's address but is another member is not sent to")
    func wrongMemberAtAddress() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let a = try await endpoint(1, group: group)
        let c = try await endpoint(3, group: group)
        // Node 1 believes node 2 listens where node 3 does.
        a.transport.setPeers([2: "127.0.0.1:\(c.port)"])
        a.transport.send(RaftMessage(from: 1, to: 2, term: 1, body: .timeoutNow))
        try await waitUntil("node 1 broke the handshake off") { a.transport.counts.refusals >= 1 }
        #expect(c.inbox.count == 0)
        #expect(a.transport.counts.sent == 0)
        await a.transport.stop()
        await c.transport.stop()
        try await group.shutdownGracefully()
    }

    @Test("A peer that goes away and comes back on the same address is redialed; messages flow again")
    func reconnect() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let a = try await endpoint(1, group: group)
        let b = try await endpoint(2, group: group)
        connect([a, b])
        a.transport.send(RaftMessage(from: 1, to: 2, term: 1, body: .timeoutNow))
        try await waitUntil("first message") { b.inbox.count == 1 }
        await b.transport.stop()
        let restarted = try await endpoint(2, port: b.port, group: group)
        var delivered = false
        // Until the redial succeeds, messages may be dropped or queued: keep sending, as a
        // leader's heartbeats do.
        for term in UInt64(2)...UInt64(200_000) {
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

    /// Connects to 127.0.0.1:`port`, sends `bytes`, and reads until the other side closes
    /// (a 20 s receive timeout fails the test instead of hanging it).
    static func sendAndReadUntilClosed(_ bytes: [UInt8], port: Int) throws -> [UInt8] {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        precondition(socket >= 0)
        defer { close(socket) }
        var timeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw ClusterError(.invalidParameter, "connect failed: errno \(errno)") }
        _ = bytes.withUnsafeBytes { Glibc.send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4_096)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            if count == 0 { return answer }
            // A reset after the server closed with unread input also means closed.
            if count < 0 && errno == ECONNRESET { return answer }
            guard count > 0 else { throw ClusterError(.invalidData, "the node did not close the connection (errno \(errno))") }
            answer.append(contentsOf: buffer[0..<count])
        }
    }
}
