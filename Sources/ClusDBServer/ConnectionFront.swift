import ClusDBModel
import NIOCore

/// The raw-bytes side of ``ConnectionGuard``, first in the connection's pipeline (before the HTTP
/// decoder): it counts the connection against ``ServerLimits/connectionsMax`` and tells the guard
/// when bytes arrive, because a request head that is not complete yet produces no HTTP part.
///
/// A connection beyond the cap is answered at once with `503` and an `ERROR_BUSY` body naming the
/// limit (no request is needed: the answer comes before anything is read), then its output is
/// closed. Whatever the client sends is dropped, and the connection is closed when the client
/// closes its side, or ``ServerLimits/requestHeadSeconds`` later. (Closing at once could reset the
/// connection over a request already sent, and the client would lose the answer.)
final class ConnectionFront: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let connectionGuard: ConnectionGuard
    private let load: ServerLoad
    private var admitted = false
    private var counted = false
    private var refusing = false

    /// Creates the front of one connection, reporting to `guard`.
    init(guard connectionGuard: ConnectionGuard, load: ServerLoad) {
        self.connectionGuard = connectionGuard
        self.load = load
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { admit(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        admit(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        giveBack()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        giveBack()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if refusing { return }
        connectionGuard.bytesArrived()
        context.fireChannelRead(data)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if refusing, let event = event as? ChannelEvent, event == .inputClosed {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func giveBack() {
        if counted { load.closeConnection() }
        counted = false
    }

    private func admit(context: ChannelHandlerContext) {
        guard !admitted else { return }
        admitted = true
        if load.openConnection() {
            counted = true
            return
        }
        refusing = true
        let error = ClusterError(
            .busy, "the node has \(load.limits.connectionsMax) client connections open, its limit (connectionsMax); retry later")
        let body = ErrorAnswer.body(error)
        let head =
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n"
            + "Connection: close\r\nDate: \(HTTPDate.now)\r\nServer: clusdb\r\n\r\n"
        var buffer = context.channel.allocator.buffer(capacity: head.utf8.count + body.count)
        buffer.writeString(head)
        buffer.writeBytes(body)
        let channel = context.channel
        context.writeAndFlush(NIOAny(buffer)).whenComplete { _ in
            channel.close(mode: .output).whenFailure { _ in channel.close(promise: nil) }
        }
        channel.eventLoop.scheduleTask(in: .seconds(Int64(load.limits.requestHeadSeconds))) {
            channel.close(promise: nil)
        }
    }
}
