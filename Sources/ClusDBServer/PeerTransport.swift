import ClusDBModel
import ClusDBPeer
import ClusDBRaft
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// Carries Raft messages between nodes over TCP (issue 11, point 1): it listens on the node's
/// peer address, dials each peer it has a message for, keeps one connection per peer and
/// direction, and redials a lost one after a capped, jittered back-off.
///
/// Delivery is at most once and may lose messages (a queue full, a connection lost with frames
/// in it): Raft is built for a network that loses, delays and reorders (its leader retries), so
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
        /// Handshakes that failed on this node's side: refused by it, refused by the peer, or
        /// broken off (a bad frame before the handshake completed, a peer that is not the
        /// member expected at its address, no hello in time).
        public var refusals = 0
    }

    private struct Peer {
        var address: String
        var channel: (any Channel)?
        var established = false
        var dialing = false
        var failedAttempts = 0
        var queued: [RaftMessage] = []
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
    private let state = Mutex(State())

    /// Creates a transport; nothing listens or dials before ``start()``.
    /// - Parameters:
    ///   - local: this node's hello (its peer address is where it listens).
    ///   - onMessage: called on an event loop with each message for this node.
    ///   - onNewerGeneration: called when a peer holds a newer restore generation than this node.
    public init(
        local: PeerHello, group: any EventLoopGroup, options: Options = Options(), logger: Logger,
        onMessage: @escaping @Sendable (RaftMessage) -> Void,
        onNewerGeneration: @escaping @Sendable (UInt64, PeerHello) -> Void = { _, _ in }
    ) throws(ClusterError) {
        let (host, port) = try ServerConfiguration.parseAddress(local.peerAddress)
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
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([
                        ByteToMessageHandler(PeerFrameCodec()),
                        PeerConnectionHandler(role: .listening, transport: self, logger: logger),
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
                state.peers[id] = Peer(address: address)
            }
            return closing
        }
        for channel in closing { channel.close(promise: nil) }
    }

    /// Sends `message` to its receiver, or drops it (see the type's documentation).
    public func send(_ message: RaftMessage) {
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
    }

    // MARK: Connections

    private func write(_ messages: [RaftMessage], to channel: any Channel) {
        var written = 0
        for message in messages {
            // A peer that does not read fills the connection; drop rather than grow without bound.
            guard channel.isWritable else { break }
            let frame = PeerFrame(kind: .raftMessage, body: RaftMessageCoding.encode(message)).encoded
            channel.write(channel.allocator.buffer(bytes: frame), promise: nil)
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
        guard let address = state.withLock({ $0.stopped ? nil : $0.peers[id]?.address }) else { return }
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
                    try channel.pipeline.syncOperations.addHandlers([
                        ByteToMessageHandler(PeerFrameCodec()),
                        PeerConnectionHandler(role: .dialing(id), transport: self, logger: logger),
                    ])
                }
            }
        // From the host this node listens on, so the link's addresses name both ends.
        if listenHost != "0.0.0.0", listenHost != "::", let source = try? SocketAddress(ipAddress: listenHost, port: 0) {
            bootstrap = bootstrap.bind(to: source)
        }
        bootstrap.connect(host: target.host, port: target.port).whenComplete { [self] result in
            switch result {
            case .success(let channel):
                let keep = state.withLock { state -> Bool in
                    guard !state.stopped, var peer = state.peers[id], peer.address == address else { return false }
                    // The handshake may already have set it (see outgoingEstablished).
                    if peer.channel == nil { peer.channel = channel }
                    peer.dialing = false
                    state.peers[id] = peer
                    return peer.channel === channel
                }
                if !keep { channel.close(promise: nil) }
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

    func outgoingEstablished(_ id: NodeID, channel: any Channel) {
        let queued = state.withLock { state -> [RaftMessage] in
            // The dial's own completion normally records the channel first; take it here too, so
            // the order of the two on the event loop does not matter.
            guard var peer = state.peers[id], peer.channel == nil || peer.channel === channel else { return [] }
            peer.channel = channel
            peer.dialing = false
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
        state.withLock { $0.incoming[ObjectIdentifier(channel)] = channel }
    }

    func incomingClosed(_ channel: any Channel) {
        _ = state.withLock { $0.incoming.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    func refused() {
        state.withLock { $0.counts.refusals += 1 }
    }

    func deliver(_ message: RaftMessage) {
        state.withLock { $0.counts.delivered += 1 }
        onMessage(message)
    }

    func learnedNewerGeneration(_ generation: UInt64, from peer: PeerHello) {
        logger.warning(
            "a peer holds a newer restore generation: this node's copy predates a restore",
            metadata: ["peer": "\(peer.nodeName)", "generation": "\(generation)", "local": "\(local.restoreGeneration)"])
        onNewerGeneration(generation, peer)
    }
}
