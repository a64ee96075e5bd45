import ClusDBModel
import ClusDBPeer
import NIOCore

/// Cuts a peer connection's bytes into checked ``PeerFrame``s with the same checks as
/// ``PeerFrameDecoder`` (``PeerFrame/header(_:)``, ``PeerFrame/frame(_:body:)``): a length over
/// the limit fails as soon as the header is in, so at most one frame's worth is ever buffered.
/// A failure reaches the next handler as an error, which closes the connection.
///
/// Until the handshake is done (``handshakeDone()``) only handshake frames of at most
/// ``handshakeBodyBytesMax`` are taken, so a connection that has not said who it is cannot make
/// the node buffer a large frame.
final class PeerFrameCodec: ByteToMessageDecoder {
    typealias InboundOut = PeerFrame

    /// Largest body of a hello, welcome or refusal (four strings of at most 1,024 bytes, two
    /// integers; a refusal's message of at most 4,096 bytes), with room to spare.
    static let handshakeBodyBytesMax = 8 << 10

    private var header: PeerFrame.Header?
    private var handshaking = true

    /// Lifts the handshake's limits: frames of every kind and size pass from now on.
    func handshakeDone() { handshaking = false }

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if header == nil {
            guard let bytes = buffer.readBytes(length: PeerFrame.headerBytes) else { return .needMoreData }
            let next = try PeerFrame.header(bytes)
            if handshaking {
                guard [.hello, .welcome, .refusal].contains(next.kind) else {
                    throw ClusterError(.invalidData, "a \(next.kind) frame before the handshake")
                }
                guard next.bodyLength <= Self.handshakeBodyBytesMax else {
                    throw ClusterError(.invalidData, "a handshake frame of \(next.bodyLength) bytes (at most \(Self.handshakeBodyBytesMax))")
                }
            }
            header = next
        }
        guard let pending = header, let body = buffer.readBytes(length: pending.bodyLength) else { return .needMoreData }
        header = nil
        context.fireChannelRead(wrapInboundOut(try PeerFrame.frame(pending, body: body)))
        return .continue
    }

    func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // Whole frames still in the buffer are delivered; a partial one at EOF is dropped with
        // the connection (Raft tolerates a lost message).
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}
