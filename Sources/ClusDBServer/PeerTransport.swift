#if canImport(Glibc)
import Glibc
#endif
import ClusDBModel
import ClusDBPeer
import ClusDBRaft
import ClusDBStore
import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// Carries Raft messages between nodes over TCP (issue 11, point 1): it listens on the node's
/// peer address, dials each peer it has a message for, keeps one connection per peer and
/// direction, and redials a lost one after a capped, jittered back-off.
///
/// Delivery is at most once and may lose messages (a queue full, a connection lost with frames
/// in it) or reorder them (those queued while a connection was set up against those sent just
/// as it came up): Raft is built for a network that loses, delays and reorders (its leader retries), so
/// the transport never blocks a sender. Each connection starts with the handshake of
/// ``PeerConnectionHandler``; a peer of another cluster or restore generation never gets a
/// message through.
///
/// Outgoing connections are opened from the host of the node's own peer address, so that each
/// link between two nodes can be told apart by its addresses (firewall rules, partition tests).
public final class PeerTransport: Sendable {
    /// Limits and timings.
    public struct Options: Sendable {
        /// First delay before redialing a peer, in milliseconds; doubled per failed attempt.
        public var reconnectDelayMinMilliseconds = 50
        /// Longest delay before redialing, in milliseconds.
        public var reconnectDelayMaxMilliseconds = 2_000
        /// Seconds a connecting peer has to complete the handshake, and a dial to connect.
        public var handshakeSeconds = 10
        /// Messages kept for a peer while its connection is being set up; more are dropped.
        public var queuedMessagesMax = 1_024
        /// Bytes written to a peer's connection and not yet sent; past it messages are dropped
        /// until the peer catches up (the connection's high-water mark).
        public var unsentBytesMax = 16 << 20

        /// The defaults.
        public init() {}
    }

    /// What the transport has done, for status and tests.
    public struct Counts: Sendable, Equatable {
        /// Messages written to a connection.
        public var sent = 0
        /// Messages dropped (no connection and a full queue, an unknown peer, a connection
        /// that could not take more).
        public var dropped = 0
        /// Messages received and handed to the node.
        public var delivered = 0
        /// Snapshot images streamed to a peer to their end.
        public var snapshotsSent = 0
        /// Snapshot images received whole and handed to the node.
        public var snapshotsReceived = 0
        /// Handshakes this node refused (another cluster or restore generation, not a member,
        /// the wrong host), with a refusal frame.
        public var refusalsSent = 0
        /// Handshakes a peer refused with a refusal frame.
        public var refusalsReceived = 0
        /// Connections closed before their handshake completed for any other reason: a bad
        /// frame, not the member expected at the address, no handshake in time.
        public var handshakesBroken = 0
    }

    private struct Peer {
        var address: String
        var channel: (any Channel)?
        var established = false
        var dialing = false
        var failedAttempts = 0
        var queued: [RaftMessage] = []
        /// True while a snapshot image streams to this peer (one at a time).
        var sendingSnapshot = false
    }

    private struct State {
        var peers: [NodeID: Peer] = [:]
        var incoming: [ObjectIdentifier: any Channel] = [:]
        var listener: (any Channel)?
        var stopped = false
        var counts = Counts()
        var random = SystemRandomNumberGenerator()
    }

    /// This node's introduction, sent in every handshake.
    let local: PeerHello
    let options: Options
    private let listenHost: String
    private let listenPort: Int
    private let group: any EventLoopGroup
    private let logger: Logger
    private let onMessage: @Sendable (RaftMessage) -> Void
    private let onNewerGeneration: @Sendable (UInt64, PeerHello) -> Void
    private let onSnapshot: @Sendable (RaftMessage, String) -> Void
    private let state = Mutex(State())
    /// Where received snapshot images are written; nil for a transport that takes none.
    let snapshotDirectory: String?
    /// Runs the file work of snapshots being received, off the event loops.
    private let threadPool = NIOThreadPool(numberOfThreads: 1)

    /// Creates a transport; nothing listens or dials before ``start()``.
    /// - Throws: `ERROR_INVALID_PARAMETER` for a peer address that is not `HOST:PORT`, or a name
    ///   or id longer than a hello carries.
    /// - Parameters:
    ///   - local: this node's hello (its peer address is where it listens).
    ///   - onMessage: called on an event loop with each message for this node.
    ///   - onNewerGeneration: called when a peer holds a newer restore generation than this node.
    ///   - snapshotDirectory: where received snapshot images are written (nil: none are taken,
    ///     and a peer that streams one is disconnected).
    ///   - onSnapshot: called on an event loop with each snapshot message and the path of its
    ///     image, whole and durable; the node takes the file from there.
    public init(
        local: PeerHello, group: any EventLoopGroup, options: Options = Options(), logger: Logger,
        onMessage: @escaping @Sendable (RaftMessage) -> Void,
        onNewerGeneration: @escaping @Sendable (UInt64, PeerHello) -> Void = { _, _ in },
        snapshotDirectory: String? = nil,
        onSnapshot: @escaping @Sendable (RaftMessage, String) -> Void = { _, _ in }
    ) throws(ClusterError) {
        self.snapshotDirectory = snapshotDirectory
        self.onSnapshot = onSnapshot
        let (host, port) = try ServerConfiguration.parseAddress(local.peerAddress)
        // The hello goes out on every connection; its strings are bounded (PeerHello.stringBytesMax).
        for (name, value) in [("cluster id", local.clusterID), ("cluster name", local.clusterName), ("node name", local.nodeName), ("peer address", local.peerAddress)]
        where value.utf8.count > PeerHello.stringBytesMax {
            throw ClusterError(.invalidParameter, "the \(name) is over \(PeerHello.stringBytesMax) bytes")
        }
        self.local = local
        self.options = options
        self.listenHost = host
        self.listenPort = port
        self.group = group
        self.logger = logger
        self.onMessage = onMessage
        self.onNewerGeneration = onNewerGeneration
    }

    /// Starts listening on the peer address.
    /// - Returns: the bound port (the kernel's choice when the address asks for port 0).
    /// - Throws: `ERROR_ADDRESS_ALREADY_ASSOCIATED` when the port is taken, `ERROR_INVALID_PARAMETER`
    ///   for an address that cannot be bound.
    public func start() async throws(ClusterError) -> Int {
        threadPool.start()
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    let codec = PeerFrameCodec()
                    try channel.pipeline.syncOperations.addHandlers([
                        ByteToMessageHandler(codec),
                        PeerConnectionHandler(role: .listening, transport: self, codec: codec, logger: logger),
                    ])
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.bind(host: listenHost, port: listenPort).get()
        } catch let error as IOError where error.errnoCode == EADDRINUSE {
            throw ClusterError(.addressAlreadyAssociated, "the peer address \(local.peerAddress) is in use")
        } catch {
            throw ClusterError(.invalidParameter, "cannot listen on the peer address \(local.peerAddress): \(error)")
        }
        state.withLock { $0.listener = channel }
        return channel.localAddress?.port ?? listenPort
    }

    /// Sets the peers and their addresses (`host:port`). Connections to peers no longer listed
    /// are closed; a peer whose address changed is redialed.
    public func setPeers(_ peers: [NodeID: String]) {
        let closing = state.withLock { state -> [any Channel] in
            var closing: [any Channel] = []
            for (id, peer) in state.peers where peers[id] != peer.address {
                if let channel = peer.channel { closing.append(channel) }
                state.peers[id] = nil
            }
            for (id, address) in peers where id != local.nodeID && state.peers[id] == nil {
                // An address that cannot be dialed is left out once, not logged at every send.
                guard (try? ServerConfiguration.parseAddress(address)) != nil else {
                    logger.error("a peer's address is not HOST:PORT; it is not dialed", metadata: ["id": "\(id)", "address": "\(address)"])
                    continue
                }
                state.peers[id] = Peer(address: address)
            }
            return closing
        }
        for channel in closing { channel.close(promise: nil) }
    }

    /// Sends `message` to its receiver, or drops it (see the type's documentation).
    /// - Precondition: not an `installSnapshot` message (those go with their image, through
    ///   ``sendSnapshot(_:imagePath:completion:)``).
    public func send(_ message: RaftMessage) {
        if case .installSnapshot = message.body { preconditionFailure("an installSnapshot message is sent with its image, by sendSnapshot") }
        enum Action {
            case write(any Channel)
            case dial
            case none
        }
        let action = state.withLock { state -> Action in
            guard !state.stopped, var peer = state.peers[message.to] else {
                state.counts.dropped += 1
                return .none
            }
            defer { state.peers[message.to] = peer }
            if peer.established, let channel = peer.channel {
                return .write(channel)
            }
            guard peer.queued.count < options.queuedMessagesMax else {
                state.counts.dropped += 1
                return .none
            }
            peer.queued.append(message)
            if peer.dialing || peer.channel != nil { return .none }
            peer.dialing = true
            return .dial
        }
        switch action {
        case .write(let channel): write([message], to: channel)
        case .dial: dial(message.to)
        case .none: break
        }
    }

    /// What the transport has done so far.
    public var counts: Counts { state.withLock { $0.counts } }

    /// Closes the listener and every connection; later sends are dropped.
    public func stop() async {
        let channels = state.withLock { state -> [any Channel] in
            state.stopped = true
            var channels = Array(state.incoming.values) + state.peers.values.compactMap(\.channel)
            if let listener = state.listener { channels.append(listener) }
            state.listener = nil
            return channels
        }
        for channel in channels { try? await channel.close() }
        try? await threadPool.shutdownGracefully()
    }

    // MARK: Snapshots

    /// Streams the checkpoint image at `imagePath` to the receiver of `message` (an
    /// ``ClusDBRaft/RaftMessage/Body/installSnapshot``) in chunks of
    /// ``Limits/peerSnapshotChunkBytes``, then sends the message, on a thread of its own. Each
    /// chunk is written to the connection only once the one before has gone to the socket, so an
    /// image is never held whole in memory and a slow peer slows the stream instead of growing
    /// the node's buffers. `completion` gets true once everything was written, false when the
    /// peer has no connection, already receives a snapshot, or the stream broke off.
    public func sendSnapshot(_ message: RaftMessage, imagePath: String, completion: @escaping @Sendable (Bool) -> Void) {
        guard case .installSnapshot(let metadata) = message.body else {
            preconditionFailure("sendSnapshot sends installSnapshot messages")
        }
        let channel = state.withLock { state -> (any Channel)? in
            guard !state.stopped, var peer = state.peers[message.to], peer.established, let channel = peer.channel, !peer.sendingSnapshot else {
                return nil
            }
            peer.sendingSnapshot = true
            state.peers[message.to] = peer
            return channel
        }
        guard let channel else {
            completion(false)
            return
        }
        let thread = Thread { [self] in
            let sent = stream(message, metadata: metadata, imagePath: imagePath, over: channel)
            state.withLock { state in
                state.peers[message.to]?.sendingSnapshot = false
                if sent { state.counts.snapshotsSent += 1 }
            }
            completion(sent)
        }
        thread.name = "clusdb-snapsend"
        thread.start()
    }

    private func stream(_ message: RaftMessage, metadata: SnapshotMetadata, imagePath: String, over channel: any Channel) -> Bool {
        func send(_ frame: PeerFrame) throws {
            try channel.writeAndFlush(channel.allocator.buffer(bytes: frame.encoded)).wait()
        }
        do {
            let file = try SystemFile(path: imagePath, flags: O_RDONLY)
            let size = try file.size()
            var offset = 0
            repeat {
                let count = min(Limits.peerSnapshotChunkBytes, size - offset)
                let bytes = try file.read(count: count, at: offset)
                guard bytes.count == count else {
                    throw ClusterError(.invalidData, "\(imagePath) ended at \(offset + bytes.count) bytes of \(size) while it was sent")
                }
                let chunk = SnapshotChunk(index: metadata.index, term: metadata.term, offset: UInt64(offset), totalBytes: UInt64(size), bytes: bytes)
                try send(PeerFrame(kind: .snapshotChunk, body: chunk.encoded))
                offset += count
            } while offset < size
            try send(PeerFrame(kind: .raftMessage, body: RaftMessageCoding.encode(message)))
            logger.info("sent a snapshot", metadata: ["to": "\(message.to)", "index": "\(metadata.index)", "bytes": "\(size)"])
            return true
        } catch {
            logger.warning("sending a snapshot failed", metadata: ["to": "\(message.to)", "index": "\(metadata.index)", "error": "\(error)"])
            return false
        }
    }

    /// Runs blocking file work for a connection handler on the transport's thread pool.
    func runBlocking<T: Sendable>(on eventLoop: any EventLoop, _ work: @escaping @Sendable () throws(ClusterError) -> T) -> EventLoopFuture<T> {
        threadPool.runIfActive(eventLoop: eventLoop) { () throws -> T in try work() }
    }

    func deliverSnapshot(_ message: RaftMessage, imagePath: String) {
        guard state.withLock({ state -> Bool in
            if !state.stopped { state.counts.snapshotsReceived += 1 }
            return !state.stopped
        }) else { return }
        logger.info("received a snapshot", metadata: ["from": "\(message.from)", "path": "\(imagePath)"])
        onSnapshot(message, imagePath)
    }

    // MARK: Connections

    private func write(_ messages: [RaftMessage], to channel: any Channel) {
        var written = 0
        for message in messages {
            // A peer that does not read fills the connection; drop rather than grow without bound.
            guard channel.isWritable else { break }
            let body = RaftMessageCoding.encode(message)
            guard body.count <= Limits.peerFrameBodyBytesMax else {
                // Only an append over RaftOptions.maxAppendBytes' reach could be; the leader
                // resends, so drop it loudly rather than trap.
                logger.error("dropped a Raft message over the peer frame limit", metadata: ["to": "\(message.to)", "bytes": "\(body.count)"])
                continue
            }
            channel.write(channel.allocator.buffer(bytes: PeerFrame(kind: .raftMessage, body: body).encoded), promise: nil)
            written += 1
        }
        channel.flush()
        let dropped = messages.count - written
        state.withLock {
            $0.counts.sent += written
            $0.counts.dropped += dropped
        }
    }

    private func dial(_ id: NodeID) {
        let address = state.withLock { state -> String? in
            guard !state.stopped, var peer = state.peers[id] else { return nil }
            // A connection made meanwhile (the peer re-added, a redial that raced a send).
            guard peer.channel == nil else {
                peer.dialing = false
                state.peers[id] = peer
                return nil
            }
            return peer.address
        }
        guard let address else { return }
        let target: (host: String, port: Int)
        do throws(ClusterError) {
            target = try ServerConfiguration.parseAddress(address)
        } catch {
            logger.error("cannot dial a peer", metadata: ["id": "\(id)", "address": "\(address)", "error": "\(error)"])
            state.withLock { $0.peers[id]?.dialing = false }
            return
        }
        var bootstrap = ClientBootstrap(group: group)
            .connectTimeout(.seconds(Int64(options.handshakeSeconds)))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(
                .writeBufferWaterMark, value: .init(low: options.unsentBytesMax / 2, high: options.unsentBytesMax))
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    let codec = PeerFrameCodec()
                    try channel.pipeline.syncOperations.addHandlers([
                        ByteToMessageHandler(codec),
                        PeerConnectionHandler(role: .dialing(id), transport: self, codec: codec, logger: logger),
                    ])
                }
            }
        // From the host this node listens on, so the link's addresses name both ends.
        if listenHost != "0.0.0.0", listenHost != "::", let source = try? SocketAddress(ipAddress: listenHost, port: 0) {
            bootstrap = bootstrap.bind(to: source)
        }
        bootstrap.connect(host: target.host, port: target.port).whenComplete { [self] result in
            switch result {
            case .success:
                // Recorded by outgoingActive, from the connection's own channelActive: only
                // there is it ordered before the connection's channelInactive.
                break
            case .failure(let error):
                logger.debug("dialing a peer failed", metadata: ["id": "\(id)", "address": "\(address)", "error": "\(error)"])
                state.withLock { $0.peers[id]?.dialing = false }
                redialLater(id)
            }
        }
    }

    /// Schedules the next dial of `id` after the back-off of its failed attempts, jittered to
    /// between half and all of it so that nodes do not redial in step.
    private func redialLater(_ id: NodeID) {
        let delay = state.withLock { state -> Int? in
            guard !state.stopped, var peer = state.peers[id], !peer.dialing, peer.channel == nil else { return nil }
            peer.failedAttempts += 1
            peer.dialing = true
            state.peers[id] = peer
            let exponent = min(peer.failedAttempts - 1, 20)
            let ceiling = min(options.reconnectDelayMaxMilliseconds, options.reconnectDelayMinMilliseconds << exponent)
            return ceiling / 2 + Int.random(in: 0...(ceiling - ceiling / 2), using: &state.random)
        }
        guard let delay else { return }
        // `dialing` stays set until the dial ends, so no send starts a second one meanwhile.
        group.next().scheduleTask(in: .milliseconds(Int64(delay))) { [self] in dial(id) }
    }

    // MARK: Called by PeerConnectionHandler on its event loop

    func outgoingActive(_ id: NodeID, channel: any Channel) {
        let keep = state.withLock { state -> Bool in
            guard !state.stopped, var peer = state.peers[id], peer.channel == nil else { return false }
            peer.channel = channel
            peer.dialing = false
            state.peers[id] = peer
            return true
        }
        // A peer removed meanwhile, or a second connection to it: not needed.
        if !keep { channel.close(promise: nil) }
    }

    func outgoingEstablished(_ id: NodeID, channel: any Channel) {
        let queued = state.withLock { state -> [RaftMessage] in
            guard var peer = state.peers[id], peer.channel === channel else { return [] }
            peer.established = true
            peer.failedAttempts = 0
            let queued = peer.queued
            peer.queued = []
            state.peers[id] = peer
            return queued
        }
        if !queued.isEmpty { write(queued, to: channel) }
    }

    func outgoingClosed(_ id: NodeID, channel: any Channel) {
        let redial = state.withLock { state -> Bool in
            guard var peer = state.peers[id], peer.channel === channel else { return false }
            peer.channel = nil
            peer.established = false
            state.peers[id] = peer
            return !state.stopped
        }
        if redial { redialLater(id) }
    }

    func incomingOpened(_ channel: any Channel) {
        let stopped = state.withLock { state -> Bool in
            if !state.stopped { state.incoming[ObjectIdentifier(channel)] = channel }
            return state.stopped
        }
        if stopped { channel.close(promise: nil) }
    }

    /// Why a peer whose hello is otherwise acceptable is refused: it is not a member this node
    /// knows, or it connects from another host than the one its address names (nil: accepted).
    func refusalOfUnknownPeer(_ peer: PeerHello, remote: SocketAddress?) -> ClusterError? {
        guard let address = state.withLock({ $0.peers[peer.nodeID]?.address }) else {
            return ClusterError(.invalidParameter, "node \(peer.nodeName) (id \(peer.nodeID)) at \(peer.peerAddress) is not a member this node knows")
        }
        // Compared only where both sides are IP addresses: a name cannot be checked without
        // resolving it, and a wildcard listener dials from whichever address routes.
        if let host = try? ServerConfiguration.parseAddress(address).host, let expected = try? SocketAddress(ipAddress: host, port: 0),
            let remoteHost = remote?.ipAddress, expected.ipAddress != remoteHost
        {
            return ClusterError(.invalidParameter, "node \(peer.nodeName) (id \(peer.nodeID)) connects from \(remoteHost), not from its address \(address)")
        }
        return nil
    }

    func incomingClosed(_ channel: any Channel) {
        _ = state.withLock { $0.incoming.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    func count(_ counter: WritableKeyPath<Counts, Int>) {
        state.withLock { $0.counts[keyPath: counter] += 1 }
    }

    func deliver(_ message: RaftMessage) {
        guard state.withLock({ state -> Bool in
            if !state.stopped { state.counts.delivered += 1 }
            return !state.stopped
        }) else { return }
        onMessage(message)
    }

    func learnedNewerGeneration(_ generation: UInt64, from peer: PeerHello) {
        logger.warning(
            "a peer holds a newer restore generation: this node's copy predates a restore",
            metadata: ["peer": "\(peer.nodeName)", "generation": "\(generation)", "local": "\(local.restoreGeneration)"])
        onNewerGeneration(generation, peer)
    }
}
