import ClusDBModel
import ClusDBNode
import HTTPTypes
import Logging
import NIOCore
import NIOHTTPTypes

/// Answers `POST /v1/registry/set-value` — the write every client sends most — on the
/// connection's event loop, and passes every other request to the Hummingbird router.
///
/// Why it exists: through the router a request crosses two threads (the event loop hands it to
/// a Swift Concurrency task, which hands the answer back), and with one client each hop is a
/// thread wake-up on the critical path. Here the event loop parses the body and proposes the
/// write through ``ClusterNode/propose(_:answer:)``, which queues it for the node's commit thread
/// (an event loop never waits for the disk); the commit or apply thread hands the result back to
/// the event loop once. A refusal (invalid input, a full queue) is answered before `propose`
/// returns, on this event loop.
///
/// What it answers is exactly what the router would: the same JSON, the same error bodies and
/// statuses (``ErrorAnswer``), `Date` and `Server` headers, `Connection: close` honoured. A body
/// the strict parser of ``ClientProtocol/SetValueRequest/init(fastJSON:)`` does not take, or one
/// over ``Limits/requestBodyMaxBytes``, goes to the router unchanged, which answers with the full
/// decoder's messages.
///
/// HTTP/1.1 pipelining keeps its order: while the router has requests of this connection
/// unanswered, set-value requests go to the router too; while a write of this handler waits for
/// the node, everything inbound after it — request parts, the client's half-close, decoding
/// errors, a graceful-shutdown notice — waits here in order (at most
/// ``Limits/pipelinedRequestPartsMax``) and reading pauses once anything is held. Reading also pauses while the socket
/// is not writable, so a client that never reads its answers cannot grow the server's buffers.
/// After a request with `Connection: close` (compared as Hummingbird's router compares it) the
/// output is closed once it is answered, and later requests are ignored, as the router does.
final class SetValueHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// Proposes a write and answers it once: ``ClusterNode/propose(_:answer:)`` in service,
    /// a stand-in in tests that decides when the answer comes.
    typealias Propose = @Sendable (HiveCommand, @escaping ClusterNode.ProposalAnswer) -> Void

    /// The path this handler answers.
    static let path = "\(ClientProtocol.prefix)/registry/set-value"

    private enum State {
        /// Between requests.
        case idle
        /// Reading the body of a set-value request this handler will answer.
        case collecting(HTTPRequest, ByteBuffer)
        /// Passing the current request's parts on to the router; `thenClose` when it asked to
        /// close the connection.
        case forwarding(thenClose: Bool)
        /// A write waits for the node; `closeAfter` when the client asked to close.
        case awaitingNode(closeAfter: Bool)
        /// The connection is closing (the client asked, or it pipelined too much): later
        /// requests are dropped unanswered, as the router drops them.
        case closing
    }

    /// Something inbound that arrived while a write waited for the node.
    private enum Held {
        case part(HTTPRequestPart)
        case event(Any)
        case error(any Error)
    }

    private let proposeWrite: Propose
    private let logger: Logger
    private var state = State.idle
    /// Requests passed to the router whose answer has not been written to its end yet.
    private var routerRequestsInFlight = 0
    /// What arrived while a write waited for the node, in order.
    private var held = CircularBuffer<Held>()
    /// True while ``takeUpHeld(context:)`` works through ``held``: an answer given inline during
    /// it must not start a second, nested pass.
    private var takingUpHeld = false
    /// A read the pipeline asked for while a write waited or the socket was not writable.
    private var readHeld = false
    /// A graceful-shutdown notice that arrived while a request of this handler was being read:
    /// Hummingbird's connection handler never saw that request and would close under it.
    private var quiesceHeld: Any?
    private var removed = false

    /// Creates the handler for one connection of `node`.
    convenience init(node: ClusterNode, logger: Logger) {
        self.init(logger: logger) { command, answer in node.propose(command, answer: answer) }
    }

    /// Creates the handler with the write path `propose`.
    init(logger: Logger, propose: @escaping Propose) {
        self.proposeWrite = propose
        self.logger = logger
    }

    private var awaitingNode: Bool {
        if case .awaitingNode = state { return true }
        return false
    }

    /// A write waits for the node and something the client sent after it waits here.
    private var holdsBehindWrite: Bool { awaitingNode && !held.isEmpty }

    func handlerRemoved(context: ChannelHandlerContext) {
        removed = true
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch state {
        case .closing: return
        case .awaitingNode: hold(.part(part), context: context)
        case .idle, .collecting, .forwarding:
            precondition(held.isEmpty, "held items are taken up before the next request is read")
            process(part, context: context)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch state {
        case .awaitingNode:
            hold(.event(event), context: context)
        case .collecting where event is ChannelShouldQuiesceEvent:
            quiesceHeld = event
        case .idle, .collecting, .forwarding, .closing:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if awaitingNode {
            // A decoding error answered by the router now would overtake the write's answer.
            hold(.error(error), context: context)
            return
        }
        context.fireErrorCaught(error)
    }

    private func hold(_ item: Held, context: ChannelHandlerContext) {
        guard held.count < Limits.pipelinedRequestPartsMax else {
            logger.warning("closing a connection that pipelined too much behind a write", metadata: ["held": "\(held.count)"])
            state = .closing
            held.removeAll()
            context.close(promise: nil)
            return
        }
        held.append(item)
    }

    // MARK: Outbound

    func read(context: ChannelHandlerContext) {
        // While a write waits, reading goes on until something arrives behind it: a client that
        // waits for its answer (nearly all) sends nothing meanwhile, and pausing and resuming
        // would cost two epoll_ctl calls per write (9% of an event loop at 64 clients, see
        // docs/PERFORMANCE.md). One read can add at most one socket buffer to `held`, whose
        // count is capped anyway.
        if holdsBehindWrite || !context.channel.isWritable {
            readHeld = true
            return
        }
        context.read()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable && !holdsBehindWrite { releaseRead(context: context) }
        context.fireChannelWritabilityChanged()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            // Hummingbird answers a request it could not parse without a head having passed
            // here, so the count may already be 0.
            routerRequestsInFlight = max(0, routerRequestsInFlight - 1)
        }
        context.write(data, promise: promise)
    }

    private func releaseRead(context: ChannelHandlerContext) {
        guard readHeld else { return }
        readHeld = false
        context.read()
    }

    // MARK: Requests

    private func process(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        switch (state, part) {
        case (.idle, .head(let head)):
            if routerRequestsInFlight == 0 && head.method == .post && head.path == Self.path {
                state = .collecting(head, context.channel.allocator.buffer(capacity: 0))
            } else {
                forwardToRouter(head, [], context: context)
            }
        case (.collecting(let head, var body), .body(var chunk)):
            if body.readableBytes + chunk.readableBytes > Limits.requestBodyMaxBytes {
                // The router answers it with its own error.
                forwardToRouter(head, [.body(body), .body(chunk)], context: context)
                return
            }
            state = .idle  // Drops the buffer's second reference, so the append does not copy.
            body.writeBuffer(&chunk)
            state = .collecting(head, body)
        case (.collecting(let head, let body), .end):
            guard let request = body.withUnsafeReadableBytes({ ClientProtocol.SetValueRequest(fastJSON: $0) }) else {
                forwardToRouter(head, [.body(body), part], context: context)
                return
            }
            state = .awaitingNode(closeAfter: Self.asksToClose(head))
            propose(request, head: head, context: context)
        case (.forwarding(let thenClose), .end):
            state = thenClose ? .closing : .idle
            context.fireChannelRead(wrapInboundOut(part))
        case (.forwarding, _):
            context.fireChannelRead(wrapInboundOut(part))
        case (.idle, .body), (.idle, .end), (.collecting, .head):
            // HTTP decoders never produce this order; let the router judge it.
            context.fireChannelRead(wrapInboundOut(part))
        case (.awaitingNode, _), (.closing, _):
            preconditionFailure("parts are held while a write awaits the node, and dropped while closing")
        }
    }

    /// Whether a request asks to close the connection after its answer: exactly the router's
    /// test, so both sides agree on when the connection ends.
    private static func asksToClose(_ head: HTTPRequest) -> Bool {
        head.headerFields[.connection] == "close"
    }

    /// Hands a request's head and its parts so far to the router; the rest follow as they arrive.
    private func forwardToRouter(_ head: HTTPRequest, _ parts: [HTTPRequestPart], context: ChannelHandlerContext) {
        routerRequestsInFlight += 1
        state = .forwarding(thenClose: Self.asksToClose(head))
        context.fireChannelRead(wrapInboundOut(.head(head)))
        for part in parts { process(part, context: context) }
        releaseQuiesce(context: context)
    }

    /// Passes on a held graceful-shutdown notice: the router now knows of every request.
    private func releaseQuiesce(context: ChannelHandlerContext) {
        guard let quiesce = quiesceHeld else { return }
        quiesceHeld = nil
        context.fireUserInboundEventTriggered(quiesce)
    }

    private func propose(_ request: ClientProtocol.SetValueRequest, head: HTTPRequest, context: ChannelHandlerContext) {
        let command: HiveCommand
        do {
            // The router's own reading of the header, first as there, so both answer alike.
            let session = try ClientAPI.session(of: head)
            let write = HiveCommand.setValue(
                key: try KeyPath(request.key), name: request.name, value: request.value, createKey: request.createKey)
            command = session.map { .sessioned($0, write) } ?? write
        } catch {
            answer(.failure(error), context: context)
            return
        }
        let eventLoop = context.eventLoop
        let target = NIOLoopBound((handler: self, context: context), eventLoop: eventLoop)
        proposeWrite(command) { result in
            // A refusal runs inside `propose`, on this event loop; a result comes from a node thread.
            if eventLoop.inEventLoop {
                target.value.handler.answer(result, context: target.value.context)
            } else {
                eventLoop.execute { target.value.handler.answer(result, context: target.value.context) }
            }
        }
    }

    /// Writes the answer, then takes up what waited behind the write.
    private func answer(_ result: Result<CommitResult, ClusterError>, context: ChannelHandlerContext) {
        let closeAfter: Bool
        switch state {
        case .awaitingNode(let close): closeAfter = close
        case .closing: return  // The connection is going; nobody reads this answer.
        case .idle, .collecting, .forwarding: preconditionFailure("an answer arrives only for the write that awaits the node")
        }
        state = .idle
        if removed { return }
        let status: HTTPResponse.Status
        let body: [UInt8]
        switch result {
        case .success(let committed):
            if case .failed(let error) = committed.outcome {
                (status, body) = (ErrorAnswer.status(error), ErrorAnswer.body(error))
            } else {
                (status, body) = (.ok, ClientProtocol.WriteResponse(index: committed.index).jsonBytes)
            }
        case .failure(let error):
            (status, body) = (ErrorAnswer.status(error), ErrorAnswer.body(error))
        }
        let head = HTTPResponse(
            status: status,
            headerFields: [
                .contentType: "application/json", .contentLength: "\(body.count)", .date: HTTPDate.now,
                .server: "clusdb",
            ])
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(context.channel.allocator.buffer(bytes: body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        if closeAfter {
            // As the router does: close the output after the answer and let the client close;
            // a full close could reset the connection over bytes it pipelined and lose the answer.
            state = .closing
            held.removeAll()
            let channel = context.channel
            channel.close(mode: .output).whenFailure { _ in channel.close(promise: nil) }
            return
        }
        takeUpHeld(context: context)
    }

    /// Takes up, in order, what arrived while the write waited — as one read cycle, since the
    /// router's channel handler delivers reads at read-complete — until another write waits.
    private func takeUpHeld(context: ChannelHandlerContext) {
        // An answer given inline during the pass below returns here; the pass goes on.
        guard !takingUpHeld else { return }
        takingUpHeld = true
        var delivered = false
        while !awaitingNode, let item = held.popFirst() {
            switch item {
            case .part(let part):
                if case .closing = state { continue }
                process(part, context: context)
                delivered = true
            case .event(let event): userInboundEventTriggered(context: context, event: event)
            case .error(let error): context.fireErrorCaught(error)
            }
        }
        takingUpHeld = false
        if delivered { context.fireChannelReadComplete() }
        if holdsBehindWrite { return }
        if case .idle = state { releaseQuiesce(context: context) }
        if context.channel.isWritable { releaseRead(context: context) }
    }
}
