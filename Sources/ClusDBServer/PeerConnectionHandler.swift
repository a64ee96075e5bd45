import ClusDBModel
import ClusDBPeer
import ClusDBRaft
import Logging
import NIOCore

/// One peer connection after its frames are cut (``PeerFrameCodec``): the handshake, then Raft
/// messages in one direction — from the node that dialed to the node that listens. Each node
/// sends over the connections it dialed and receives over the ones it accepted, so a link
/// between two nodes is two connections, one per direction of need (issue 11).
///
/// Snapshot images arrive as ``SnapshotChunk`` frames followed by their
/// ``ClusDBRaft/RaftMessage/Body/installSnapshot`` message; each chunk is written to a file on
/// the transport's thread pool as it arrives (reading pauses meanwhile), and the message reaches
/// the node with the durable file's path.
///
/// The dialing side sends its ``PeerHello`` at once and waits for a welcome or a refusal; the
/// listening side waits for the hello (at most ``PeerTransport/Options/handshakeSeconds``),
/// checks it with ``PeerHello/verdict(on:)`` and answers. Anything out of place — a frame the
/// state does not expect, a message not from the peer or not for this node, a frame that fails
/// its checks — is logged and closes the connection; it never reaches the node.
final class PeerConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = PeerFrame
    typealias OutboundOut = ByteBuffer

    /// Which end of the connection this is.
    enum Role {
        /// This node dialed the peer it expects to be `NodeID`.
        case dialing(NodeID)
        /// The peer dialed this node.
        case listening
    }

    private enum State {
        case awaitingHello
        case established(PeerHello)
        case closing
    }

    private let role: Role
    private let transport: PeerTransport
    private let codec: PeerFrameCodec
    private let logger: Logger
    private var state = State.awaitingHello
    private var handshakeTimeout: Scheduled<Void>?
    /// True while a file operation of a snapshot being received runs on the transport's thread
    /// pool: later frames wait in ``waiting``, in order, and reading pauses.
    private var busy = false
    /// Frames that arrived while ``busy``: at most what one read decoded, since reading pauses.
    private var waiting = CircularBuffer<PeerFrame>()
    /// The snapshot image being received on this connection, if any.
    private var reception: (stream: SnapshotReception, file: ReceivedSnapshotFile)?
    /// Set once the connection is closed: a file operation that ends afterwards cleans up.
    private var inactive = false

    init(role: Role, transport: PeerTransport, codec: PeerFrameCodec, logger: Logger) {
        self.role = role
        self.transport = transport
        self.codec = codec
        self.logger = logger
    }

    func channelActive(context: ChannelHandlerContext) {
        switch role {
        case .dialing(let id):
            transport.outgoingActive(id, channel: context.channel)
            write(PeerFrame(kind: .hello, body: transport.local.encoded), context: context)
        case .listening:
            transport.incomingOpened(context.channel)
        }
        // Both ends: a peer that connects (or accepts) and then says nothing is let go.
        let handler = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        let seconds = transport.options.handshakeSeconds
        handshakeTimeout = context.eventLoop.scheduleTask(in: .seconds(Int64(seconds))) {
            guard case .awaitingHello = handler.value.handler.state else { return }
            handler.value.handler.close(handler.value.context, because: "no handshake within \(seconds) s")
        }
        context.fireChannelActive()
    }

    /// The handshake passed: lift the codec's limits and the timeout.
    private func establish(_ peer: PeerHello) {
        state = .established(peer)
        codec.handshakeDone()
        handshakeTimeout?.cancel()
        handshakeTimeout = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshakeTimeout?.cancel()
        handshakeTimeout = nil
        inactive = true
        discardReception(context)
        if case .dialing(let id) = role { transport.outgoingClosed(id, channel: context.channel) }
        if case .listening = role { transport.incomingClosed(context.channel) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        close(context, because: "\(error)")
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        if busy {
            waiting.append(frame)
            return
        }
        process(frame, context: context)
    }

    private func process(_ frame: PeerFrame, context: ChannelHandlerContext) {
        do throws(ClusterError) {
            switch (role, state, frame.kind) {
            case (.listening, .awaitingHello, .hello):
                try answerHello(try PeerHello(decoding: frame.body), context: context)
            case (.dialing(let expected), .awaitingHello, .welcome):
                try takeWelcome(try PeerHello(decoding: frame.body), expected: expected, context: context)
            case (.dialing, .awaitingHello, .refusal):
                let refusal = try PeerRefusal.decode(frame.body)
                transport.count(\.refusalsReceived)
                logger.warning("a peer refused this node's connection", metadata: ["peer": "\(peerName(context))", "error": "\(refusal)"])
                state = .closing
                context.close(promise: nil)
            case (.listening, .established(let peer), .raftMessage):
                let message = try RaftMessageCoding.decode(frame.body)
                guard message.from == peer.nodeID, message.to == transport.local.nodeID else {
                    throw ClusterError(.invalidData, "a message from \(message.from) to \(message.to) on the connection of node \(peer.nodeID) to \(transport.local.nodeID)")
                }
                if case .installSnapshot(let metadata) = message.body {
                    try completeSnapshot(message, metadata, context: context)
                } else {
                    transport.deliver(message)
                }
            case (.listening, .established(let peer), .snapshotChunk):
                try receive(try SnapshotChunk(decoding: frame.body), from: peer, context: context)
            case (_, .closing, _):
                return
            default:
                throw ClusterError(.invalidData, "unexpected \(frame.kind) frame (\(role), \(state))")
            }
        } catch {
            close(context, because: "\(error)")
        }
    }

    // MARK: Snapshots

    /// Takes a chunk of a snapshot image: the first one (offset 0) starts a new image (an
    /// unfinished earlier one is dropped: the leader started over), the others continue it.
    private func receive(_ chunk: SnapshotChunk, from peer: PeerHello, context: ChannelHandlerContext) throws(ClusterError) {
        guard let directory = transport.snapshotDirectory else {
            throw ClusterError(.invalidData, "a snapshot chunk for a node that takes no snapshots")
        }
        if chunk.offset == 0 {
            let stream = try SnapshotReception(first: chunk)
            let previous = reception?.file
            reception = nil
            runBlocking(context) { () throws(ClusterError) -> ReceivedSnapshotFile in
                previous?.discard()
                let file = try ReceivedSnapshotFile(directory: directory, from: peer.nodeID, index: chunk.index, term: chunk.term)
                do throws(ClusterError) {
                    try file.write(chunk.bytes, at: 0)
                } catch {
                    file.discard()
                    throw error
                }
                return file
            } then: { handler, file in
                handler.reception = (stream, file)
            }
            return
        }
        guard var current = reception else {
            throw ClusterError(.invalidData, "a snapshot chunk at offset \(chunk.offset) with no image started")
        }
        try current.stream.take(chunk)
        reception = current
        let file = current.file
        runBlocking(context) { () throws(ClusterError) in try file.write(chunk.bytes, at: chunk.offset) } then: { _, _ in }
    }

    /// The snapshot message after its image: makes the image durable, then hands both to the node.
    private func completeSnapshot(_ message: RaftMessage, _ metadata: SnapshotMetadata, context: ChannelHandlerContext) throws(ClusterError) {
        guard let current = reception, current.stream.completes(metadata) else {
            throw ClusterError(.invalidData, "a message for snapshot \(metadata.index) (term \(metadata.term)) without its whole image")
        }
        reception = nil
        let file = current.file
        runBlocking(context) { () throws(ClusterError) -> String in
            try file.finish()
            return file.path
        } then: { handler, path in
            handler.transport.deliverSnapshot(message, imagePath: path)
        }
    }

    /// Runs file work on the transport's thread pool; meanwhile reading pauses and frames wait,
    /// so everything on the connection is still taken in order. A failure closes the connection.
    private func runBlocking<T: Sendable>(
        _ context: ChannelHandlerContext, _ work: @escaping @Sendable () throws(ClusterError) -> T,
        then: @escaping (PeerConnectionHandler, T) -> Void
    ) {
        busy = true
        try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: false)
        let bound = NIOLoopBound((handler: self, context: context, then: then), eventLoop: context.eventLoop)
        transport.runBlocking(on: context.eventLoop, work).whenComplete { result in
            let (handler, context, then) = bound.value
            handler.busy = false
            switch result {
            case .success(let value):
                then(handler, value)
            case .failure(let error):
                handler.discardReception(context)
                handler.close(context, because: "\(error)")
            }
            // The connection closed while the file work ran: its image will never be finished.
            if handler.inactive { handler.discardReception(context) }
            while !handler.busy, let next = handler.waiting.popFirst() {
                if case .closing = handler.state { break }
                handler.process(next, context: context)
            }
            if !handler.busy { try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true) }
        }
    }

    /// Drops the image being received (its file is removed on the thread pool).
    private func discardReception(_ context: ChannelHandlerContext) {
        guard let file = reception?.file else { return }
        reception = nil
        transport.runBlocking(on: context.eventLoop) { file.discard() }.whenComplete { _ in }
    }

    // MARK: Handshake

    private func answerHello(_ peer: PeerHello, context: ChannelHandlerContext) throws(ClusterError) {
        let verdict = transport.local.verdict(on: peer)
        if case .refuse(let error) = verdict {
            refuse(error, context: context)
            return
        }
        // Then only a member, and only from the host it is configured at: a node of this
        // cluster that is no member must not even make this one believe it is stale.
        if let problem = transport.refusalOfUnknownPeer(peer, remote: context.remoteAddress) {
            refuse(problem, context: context)
            return
        }
        switch verdict {
        case .accept:
            establish(peer)
            write(PeerFrame(kind: .welcome, body: transport.local.encoded), context: context)
            logger.info("accepted a peer connection", metadata: ["peer": "\(peer.nodeName)", "id": "\(peer.nodeID)", "address": "\(peerName(context))"])
        case .refuse:
            preconditionFailure("refused above")
        case .peerIsNewer(let generation):
            transport.learnedNewerGeneration(generation, from: peer)
            refuse(
                ClusterError(
                    .clusterInstanceIDMismatch,
                    "node \(transport.local.nodeName) holds restore generation \(transport.local.restoreGeneration), older than \(generation): it takes no part until it has the restored database"),
                context: context)
        }
    }

    private func takeWelcome(_ peer: PeerHello, expected: NodeID, context: ChannelHandlerContext) throws(ClusterError) {
        guard peer.nodeID == expected else {
            throw ClusterError(.invalidParameter, "the node at \(peerName(context)) is \(peer.nodeName) (id \(peer.nodeID)), not the member with id \(expected)")
        }
        switch transport.local.verdict(on: peer) {
        case .accept:
            establish(peer)
            logger.info("connected to a peer", metadata: ["peer": "\(peer.nodeName)", "id": "\(peer.nodeID)", "address": "\(peerName(context))"])
            transport.outgoingEstablished(expected, channel: context.channel)
        case .refuse(let error):
            throw error
        case .peerIsNewer(let generation):
            transport.learnedNewerGeneration(generation, from: peer)
            throw ClusterError(.clusterInstanceIDMismatch, "node \(peer.nodeName) holds the newer restore generation \(generation)")
        }
    }

    /// Sends a refusal, logs it, and closes once it is written.
    private func refuse(_ error: ClusterError, context: ChannelHandlerContext) {
        transport.count(\.refusalsSent)
        logger.warning("refused a peer connection", metadata: ["address": "\(peerName(context))", "error": "\(error)"])
        state = .closing
        let frame = PeerFrame(kind: .refusal, body: PeerRefusal.encode(error)).encoded
        let closed = context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: frame)))
        let channel = context.channel
        closed.whenComplete { _ in channel.close(promise: nil) }
    }

    private func close(_ context: ChannelHandlerContext, because reason: String) {
        switch state {
        case .closing: return
        case .awaitingHello: transport.count(\.handshakesBroken)
        case .established: break
        }
        state = .closing
        logger.warning("closing a peer connection", metadata: ["address": "\(peerName(context))", "reason": "\(reason)"])
        context.close(promise: nil)
    }

    private func write(_ frame: PeerFrame, context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: frame.encoded)), promise: nil)
    }

    private func peerName(_ context: ChannelHandlerContext) -> String {
        context.remoteAddress.map { "\($0)" } ?? "?"
    }
}
