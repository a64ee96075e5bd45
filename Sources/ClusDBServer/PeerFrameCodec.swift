import ClusDBPeer
import NIOCore

/// Cuts a peer connection's bytes into checked ``PeerFrame``s with the same checks as
/// ``PeerFrameDecoder`` (``PeerFrame/header(_:)``, ``PeerFrame/frame(_:body:)``): a length over
/// the limit fails as soon as the header is in, so at most one frame's worth is ever buffered.
/// A failure reaches the next handler as an error, which closes the connection.
final class PeerFrameCodec: ByteToMessageDecoder {
    typealias InboundOut = PeerFrame

    private var header: PeerFrame.Header?

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if header == nil {
            guard let bytes = buffer.readBytes(length: PeerFrame.headerBytes) else { return .needMoreData }
            header = try PeerFrame.header(bytes)
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
