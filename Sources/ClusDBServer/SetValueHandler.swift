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
/// write through ``ClusterNode/propose(_:answer:)``: on an idle node it commits the write itself
/// and answers without any hop; on a busy node the commit or apply thread hands the result back
/// to the event loop once.
///
/// What it answers is exactly what the router would: the same JSON, the same error bodies and
/// statuses (``ErrorAnswer``), `Date` and `Server` headers, `Connection: close` honoured. A body
/// the strict parser of ``ClientProtocol/SetValueRequest/init(fastJSON:)`` does not take, or one
/// over ``Limits/requestBodyMaxBytes``, goes to the router unchanged, which answers with the full
/// decoder's messages.
///
/// HTTP/1.1 pipelining keeps its order: while the router has requests of this connection
/// unanswered, set-value requests go to the router too; while a write of this handler waits for
/// the node, later request parts wait here (at most ``Limits/pipelinedRequestPartsMax``) and
/// reading pauses.
final class SetValueHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// The path this handler answers.
    static let path = "\(ClientProtocol.prefix)/registry/set-value"

    private enum State {
        /// Between requests.
        case idle
        /// Reading the body of a set-value request this handler will answer.
        case collecting(HTTPRequest, ByteBuffer)
        /// Passing the current request's parts on to the router.
        case forwarding
        /// A write waits for the node; `closeAfter` when the client asked to close.
        case awaitingNode(closeAfter: Bool)
    }

    /// Proposes a write and answers it once: ``ClusterNode/propose(_:answer:)`` in service,
    /// a stand-in in tests that decides when the answer comes.
    typealias Propose = @Sendable (HiveCommand, @escaping ClusterNode.ProposalAnswer) -> Void

    private let proposeWrite: Propose
    private let logger: Logger
    private var state = State.idle
    /// Requests passed to the router whose answer has not been written to its end yet.
    private var routerRequestsInFlight = 0
    /// Request parts that arrived while a write waited for the node, in order.
    private var held = CircularBuffer<HTTPRequestPart>()
    /// A read the pipeline asked for while a write waited for the node.
    private var readHeld = false
    /// A graceful-shutdown notice that arrived while a write waited: passed on after its answer,
    /// so the connection is not closed under it.
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

    func handlerRemoved(context: ChannelHandlerContext) {
        removed = true
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if case .awaitingNode = state {
            guard held.count < Limits.pipelinedRequestPartsMax else {
                logger.warning(
                    "closing a connection that pipelined too much behind a write",
                    metadata: ["parts": "\(held.count)"])
                context.close(promise: nil)
                return
            }
            held.append(part)
            return
        }
        process(part, context: context)
    }

    func read(context: ChannelHandlerContext) {
        if case .awaitingNode = state {
            readHeld = true
            return
        }
        context.read()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            // Hummingbird answers a request it could not parse without a head having passed
            // here, so the count may already be 0.
            routerRequestsInFlight = max(0, routerRequestsInFlight - 1)
        }
        context.write(data, promise: promise)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            switch state {
            case .collecting, .awaitingNode:
                // Hummingbird's connection handler would close at once: it never saw this request.
                quiesceHeld = event
                return
            case .idle, .forwarding:
                break
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: Requests

    private func process(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        switch (state, part) {
        case (.idle, .head(let head)):
            if routerRequestsInFlight == 0 && head.method == .post && head.path == Self.path {
                state = .collecting(head, context.channel.allocator.buffer(capacity: 0))
            } else {
                forwardToRouter([part], context: context)
            }
        case (.collecting(let head, var body), .body(var chunk)):
            if body.readableBytes + chunk.readableBytes > Limits.requestBodyMaxBytes {
                // The router answers it with its own error.
                forwardToRouter([.head(head), .body(body), .body(chunk)], context: context)
                return
            }
            state = .idle  // Drops the buffer's second reference, so the append does not copy.
            body.writeBuffer(&chunk)
            state = .collecting(head, body)
        case (.collecting(let head, let body), .end):
            guard let request = body.withUnsafeReadableBytes({ ClientProtocol.SetValueRequest(fastJSON: $0) }) else {
                forwardToRouter([.head(head), .body(body), part], context: context)
                return
            }
            state = .awaitingNode(closeAfter: head.headerFields[.connection]?.lowercased() == "close")
            propose(request, context: context)
        case (.forwarding, .end):
            state = .idle
            context.fireChannelRead(wrapInboundOut(part))
        case (.forwarding, _):
            context.fireChannelRead(wrapInboundOut(part))
        case (.idle, .body), (.idle, .end), (.collecting, .head):
            // HTTP decoders never produce this order; let the router judge it.
            context.fireChannelRead(wrapInboundOut(part))
        case (.awaitingNode, _):
            preconditionFailure("parts are held while a write awaits the node")
        }
    }

    /// Hands a request's parts so far to the router; the rest follow as they arrive.
    private func forwardToRouter(_ parts: [HTTPRequestPart], context: ChannelHandlerContext) {
        routerRequestsInFlight += 1
        state = .forwarding
        for part in parts {
            if case .end = part { state = .idle }
            context.fireChannelRead(wrapInboundOut(part))
        }
        releaseQuiesce(context: context)
    }

    /// Passes on a held graceful-shutdown notice: the router now knows of every request.
    private func releaseQuiesce(context: ChannelHandlerContext) {
        guard let quiesce = quiesceHeld else { return }
        quiesceHeld = nil
        context.fireUserInboundEventTriggered(quiesce)
    }

    private func propose(_ request: ClientProtocol.SetValueRequest, context: ChannelHandlerContext) {
        let command: HiveCommand
        do {
            command = .setValue(
                key: try KeyPath(request.key), name: request.name, value: request.value, createKey: request.createKey)
        } catch {
            answer(.failure(error), context: context)
            return
        }
        let eventLoop = context.eventLoop
        let target = NIOLoopBound((handler: self, context: context), eventLoop: eventLoop)
        proposeWrite(command) { result in
            // On an idle node this runs inside `propose`, on this event loop.
            if eventLoop.inEventLoop {
                target.value.handler.answer(result, context: target.value.context)
            } else {
                eventLoop.execute { target.value.handler.answer(result, context: target.value.context) }
            }
        }
    }

    /// Writes the answer, then takes up what waited behind the write.
    private func answer(_ result: Result<CommitResult, ClusterError>, context: ChannelHandlerContext) {
        guard case .awaitingNode(let closeAfter) = state else {
            preconditionFailure("an answer arrives only for the write that awaits the node")
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
            // As Hummingbird does: the flushed answer goes out before the close.
            context.close(promise: nil)
            return
        }
        // Take up what was pipelined behind the write, in order, as one read cycle: the router's
        // channel handler delivers reads at read-complete.
        let replaying = !held.isEmpty
        while let part = held.popFirst() {
            process(part, context: context)
            if case .awaitingNode = state { break }
        }
        if replaying { context.fireChannelReadComplete() }
        if case .awaitingNode = state { return }
        if case .idle = state { releaseQuiesce(context: context) }
        if readHeld {
            readHeld = false
            context.read()
        }
    }
}
