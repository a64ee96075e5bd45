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
    private let logger: Logger
    private var state = State.awaitingHello

    init(role: Role, transport: PeerTransport, logger: Logger) {
        self.role = role
        self.transport = transport
        self.logger = logger
    }

    func channelActive(context: ChannelHandlerContext) {
        switch role {
        case .dialing:
            write(PeerFrame(kind: .hello, body: transport.local.encoded), context: context)
        case .listening:
            transport.incomingOpened(context.channel)
            let handler = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
            context.eventLoop.scheduleTask(in: .seconds(Int64(transport.options.handshakeSeconds))) {
                guard case .awaitingHello = handler.value.handler.state else { return }
                handler.value.handler.close(handler.value.context, because: "no hello within \(handler.value.handler.transport.options.handshakeSeconds) s")
            }
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .dialing(let id) = role { transport.outgoingClosed(id, channel: context.channel) }
        if case .listening = role { transport.incomingClosed(context.channel) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        close(context, because: "\(error)")
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        do throws(ClusterError) {
            switch (role, state, frame.kind) {
            case (.listening, .awaitingHello, .hello):
                try answerHello(try PeerHello(decoding: frame.body), context: context)
            case (.dialing(let expected), .awaitingHello, .welcome):
                try takeWelcome(try PeerHello(decoding: frame.body), expected: expected, context: context)
            case (.dialing, .awaitingHello, .refusal):
                let refusal = try PeerRefusal.decode(frame.body)
                transport.refused()
                logger.warning("a peer refused this node's connection", metadata: ["peer": "\(peerName(context))", "error": "\(refusal)"])
                state = .closing
                context.close(promise: nil)
            case (.listening, .established(let peer), .raftMessage):
                let message = try RaftMessageCoding.decode(frame.body)
                guard message.from == peer.nodeID, message.to == transport.local.nodeID else {
                    throw ClusterError(.invalidData, "a message from \(message.from) to \(message.to) on the connection of node \(peer.nodeID) to \(transport.local.nodeID)")
                }
                transport.deliver(message)
            case (_, .closing, _):
                return
            default:
                throw ClusterError(.invalidData, "unexpected \(frame.kind) frame (\(role), \(state))")
            }
        } catch {
            close(context, because: "\(error)")
        }
    }

    private func answerHello(_ peer: PeerHello, context: ChannelHandlerContext) throws(ClusterError) {
        switch transport.local.verdict(on: peer) {
        case .accept:
            state = .established(peer)
            write(PeerFrame(kind: .welcome, body: transport.local.encoded), context: context)
            logger.info("accepted a peer connection", metadata: ["peer": "\(peer.nodeName)", "id": "\(peer.nodeID)", "address": "\(peerName(context))"])
        case .refuse(let error):
            refuse(error, context: context)
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
            state = .established(peer)
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
        transport.refused()
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
        case .awaitingHello: transport.refused()  // a handshake that failed counts as refused
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
