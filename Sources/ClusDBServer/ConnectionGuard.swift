import ClusDBModel
import HTTPTypes
import Logging
import NIOCore
import NIOHTTPTypes

/// Keeps one client connection within the service's limits (`docs/HTTP_API.md`, "Limits"), so
/// that slow or stalled clients cannot exhaust the node or stop its housekeeping.
///
/// It sits first among the HTTP handlers (after decoding, before ``SetValueHandler`` and the
/// router), so it sees every request part and every answer part of the connection, whichever of
/// them answers. It puts ``ConnectionFront`` in front of the HTTP decoder, which counts the
/// connection and reports raw bytes (an incomplete request head produces no part).
///
/// - Caps across the service (``ServerLoad``): a request that finds ``ServerLimits/requestsInFlightMax``
///   requests in flight, or whose declared body does not fit into
///   ``ServerLimits/requestBytesBufferedMax``, is answered here with `503` and `ERROR_BUSY` naming the
///   limit, and its parts go no further; the connection stays open. A body without a declared length
///   that outgrows the byte budget closes the connection: nothing can be answered in the middle of
///   a body that is already being handled.
/// - Timeouts (closing the connection, since an incomplete request cannot be answered): a head that
///   is not complete ``ServerLimits/requestHeadSeconds`` after its first byte; a body not complete
///   ``ServerLimits/requestBodySeconds`` after its head (plus a second per
///   ``ServerLimits/requestBodyMinBytesPerSecond`` received); a connection idle (nothing being read,
///   no answer owed) for ``ServerLimits/connectionIdleSeconds``; a client that takes no bytes of its
///   answer (the socket stays unwritable) for ``ServerLimits/answerStallSeconds`` — which is what ends
///   a streamed backup whose client stopped reading, and with it the backup's pin on checkpoints.
///
/// Why not Hummingbird's `idleTimeout`: its handler sits behind ``SetValueHandler`` and never sees
/// the set-value requests answered on the event loop, so it would close a connection busy with
/// them; it restarts its clock on every body part, so a body dripping one byte a second never
/// times out; and it waits forever once a request is read, however long the answer stalls.
///
/// Answers stay in request order under HTTP/1.1 pipelining: a refusal is written only once every
/// request before it on the connection has been answered to its end.
///
/// The timer: one per connection, always armed, never further ahead than the shortest limit.
/// Every deadline is at least that far from the moment it is set, so no state change ever has to
/// move the timer; each firing works out the deadlines from the state and closes or re-arms. That
/// keeps timer work off the per-request path (set-value's latency is a few hundred microseconds).
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// A request read from the connection whose answer is not yet written to its end.
    private final class Owed {
        /// Why this handler answers it instead of passing it on; nil when passed on.
        let refusal: ClusterError?
        /// The request asked to close the connection (only acted on for refusals; the router and
        /// ``SetValueHandler`` close after their own answers).
        let closeAfter: Bool
        /// Body bytes taken from the service's budget for it.
        var reservedBytes: Int
        /// Body bytes received for it.
        var receivedBytes = 0
        /// Its request slot and bytes went back to the service.
        var released = false

        init(refusal: ClusterError?, closeAfter: Bool, reservedBytes: Int) {
            self.refusal = refusal
            self.closeAfter = closeAfter
            self.reservedBytes = reservedBytes
        }
    }

    private let load: ServerLoad
    private let logger: Logger
    /// Answers owed, in request order.
    private var owed = CircularBuffer<Owed>()
    /// The request whose parts are being read (head seen, end not yet), if any.
    private var reading: Owed?
    /// When the head of the request being read arrived.
    private var readingSince: NIODeadline?
    /// Body bytes of the request being read so far (for the rate allowance).
    private var readingBytes = 0
    /// The request being read was refused: its parts go no further.
    private var swallowing = false
    /// When the first byte of a head that is not complete yet arrived.
    private var headStartedAt: NIODeadline?
    /// When the connection last became idle (opened, or its last answer ended).
    private var idleSince = NIODeadline.now()
    /// Since when the socket has not been writable (the client takes no bytes).
    private var unwritableSince: NIODeadline?
    private var timer: Scheduled<Void>?
    /// The connection is being closed: nothing more is read or answered here.
    private var closing = false
    /// A refusal asked to close the connection and its output is closed: what the client still
    /// sends is dropped, while the timer goes on, so a client that never closes its side is closed.
    private var outputClosed = false

    /// Creates the guard of one connection.
    init(load: ServerLoad, logger: Logger) {
        self.load = load
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        do {
            try context.pipeline.syncOperations.addHandler(ConnectionFront(guard: self, load: load), position: .first)
        } catch {
            logger.error("could not set up a client connection's limits; closing it", metadata: ["error": "\(error)"])
            context.close(promise: nil)
            return
        }
        idleSince = .now()
        armTimer(context: context, now: idleSince)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        shutDown()
    }

    func channelInactive(context: ChannelHandlerContext) {
        shutDown()
        context.fireChannelInactive()
    }

    /// Gives every slot and byte of this connection back and stops the timer.
    private func shutDown() {
        closing = true
        timer?.cancel()
        timer = nil
        while let request = owed.popFirst() { release(request) }
        if let reading { release(reading) }
        reading = nil
    }

    // MARK: Raw bytes (from ConnectionFront)

    /// Bytes arrived from the client: when no request is being read they start a head.
    func bytesArrived() {
        if readingSince == nil && headStartedAt == nil { headStartedAt = .now() }
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if closing || outputClosed { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            startRequest(head, context: context)
        case .body(let chunk):
            readingBytes += chunk.readableBytes
            if let request = reading, !request.released, request.refusal == nil {
                request.receivedBytes += chunk.readableBytes
                let extra = request.receivedBytes - request.reservedBytes
                if extra > 0 {
                    guard load.reserveBytes(extra) else {
                        close(
                            context: context, level: .warning,
                            "closing a connection whose request body outgrew the service's buffered-bytes limit (requestBytesBufferedMax, \(load.limits.requestBytesBufferedMax) bytes)"
                        )
                        return
                    }
                    request.reservedBytes += extra
                }
            }
            if !swallowing { context.fireChannelRead(data) }
        case .end:
            reading = nil
            readingSince = nil
            readingBytes = 0
            if owed.isEmpty { idleSince = .now() }
            if swallowing {
                swallowing = false
            } else {
                context.fireChannelRead(data)
            }
        }
    }

    private func startRequest(_ head: HTTPRequest, context: ChannelHandlerContext) {
        let now = NIODeadline.now()
        headStartedAt = nil
        readingSince = now
        readingBytes = 0
        guard owed.count < Limits.pipelinedRequestsMax else {
            close(context: context, level: .warning, "closing a connection that pipelined more than \(Limits.pipelinedRequestsMax) requests (pipelinedRequestsMax)")
            return
        }
        let closeAfter = head.headerFields[.connection] == "close"
        let request: Owed
        if !load.startRequest() {
            request = Owed(
                refusal: ClusterError(
                    .busy,
                    "the node has \(load.limits.requestsInFlightMax) requests in flight, its limit (requestsInFlightMax); retry later"),
                closeAfter: closeAfter, reservedBytes: 0)
        } else {
            // The declared length is reserved up front, so a request that cannot fit is refused
            // before its body is read; one over its endpoint's cap is left to the router, which
            // refuses it after reading up to the cap, so only the cap is reserved.
            let declared = head.headerFields[.contentLength].flatMap { Int($0) } ?? 0
            let reserved = min(max(declared, 0), ServerLimits.bodyMaxBytes(path: head.path))
            if load.reserveBytes(reserved) {
                request = Owed(refusal: nil, closeAfter: closeAfter, reservedBytes: reserved)
            } else {
                load.endRequest()
                request = Owed(
                    refusal: ClusterError(
                        .busy,
                        "the node holds request bodies up to its limit of \(load.limits.requestBytesBufferedMax) bytes (requestBytesBufferedMax), and this body declares \(declared) bytes; retry later"
                    ),
                    closeAfter: closeAfter, reservedBytes: 0)
            }
        }
        owed.append(request)
        reading = request
        if request.refusal != nil {
            swallowing = true
            writeRefusals(context: context)
        } else {
            swallowing = false
            context.fireChannelRead(wrapInboundOut(.head(head)))
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            unwritableSince = nil
        } else if unwritableSince == nil {
            unwritableSince = .now()
        }
        context.fireChannelWritabilityChanged()
    }

    // MARK: Outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        context.write(data, promise: promise)
        guard case .end = unwrapOutboundIn(data) else { return }
        // The answer of the oldest request passed on. Hummingbird answers a request it could not
        // parse without a head having passed here; then nothing is owed.
        if let first = owed.first, first.refusal == nil {
            owed.removeFirst()
            release(first)
        }
        writeRefusals(context: context)
        if owed.isEmpty && reading == nil { idleSince = .now() }
    }

    /// Writes the refusals that are now at the front of the queue.
    private func writeRefusals(context: ChannelHandlerContext) {
        while !closing && !outputClosed, let first = owed.first, let refusal = first.refusal {
            owed.removeFirst()
            logger.debug("refused a request", metadata: ["error": "\(refusal.message)"])
            let body = ErrorAnswer.body(refusal)
            var fields: HTTPFields = [
                .contentType: "application/json", .contentLength: "\(body.count)", .date: HTTPDate.now, .server: "clusdb",
            ]
            if first.closeAfter { fields[.connection] = "close" }
            context.write(wrapOutboundOut(.head(HTTPResponse(status: ErrorAnswer.status(refusal), headerFields: fields))), promise: nil)
            context.write(wrapOutboundOut(.body(context.channel.allocator.buffer(bytes: body))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            if first.closeAfter {
                // As the router does: close the output after the answer and let the client close.
                outputClosed = true
                let channel = context.channel
                channel.close(mode: .output).whenFailure { _ in channel.close(promise: nil) }
            }
        }
    }

    private func release(_ request: Owed) {
        guard !request.released else { return }
        request.released = true
        guard request.refusal == nil else { return }
        load.endRequest()
        load.releaseBytes(request.reservedBytes)
    }

    // MARK: Timeouts

    /// The earliest deadline the connection is under now, and what passing it means.
    /// A stalled answer is a warning (it may have held a backup's pin); a slow request is
    /// information; an idle connection closing is routine.
    private func deadline() -> (at: NIODeadline, what: String, level: Logger.Level)? {
        let limits = load.limits
        var earliest: (at: NIODeadline, what: String, level: Logger.Level)?
        func consider(_ at: NIODeadline, _ level: Logger.Level, _ what: @autoclosure () -> String) {
            if earliest.map({ at < $0.at }) ?? true { earliest = (at, what(), level) }
        }
        if let since = readingSince {
            let allowance = Int64(limits.requestBodySeconds) * 1_000_000_000
                + Int64(readingBytes) * 1_000_000_000 / Int64(limits.requestBodyMinBytesPerSecond)
            consider(
                since + .nanoseconds(allowance), .info,
                "closing a connection whose request body was not complete in time (requestBodySeconds \(limits.requestBodySeconds) s, plus 1 s per requestBodyMinBytesPerSecond \(limits.requestBodyMinBytesPerSecond) bytes; \(readingBytes) bytes received)"
            )
        } else if let started = headStartedAt {
            consider(
                started + .seconds(Int64(limits.requestHeadSeconds)), .info,
                "closing a connection whose request head was not complete within requestHeadSeconds (\(limits.requestHeadSeconds) s)")
        } else if owed.isEmpty {
            consider(
                idleSince + .seconds(Int64(limits.connectionIdleSeconds)), .debug,
                "closing a connection idle for connectionIdleSeconds (\(limits.connectionIdleSeconds) s)")
        }
        if let since = unwritableSince {
            consider(
                since + .seconds(Int64(limits.answerStallSeconds)), .warning,
                "closing a connection whose client took no bytes of its answer for answerStallSeconds (\(limits.answerStallSeconds) s); a streamed backup on it ends and releases its pin on checkpoints"
            )
        }
        return earliest
    }

    /// The farthest the timer is ever set ahead: the shortest limit, so that a deadline set later
    /// can never fall before it.
    private var timerStep: TimeAmount {
        let limits = load.limits
        let seconds = min(limits.requestHeadSeconds, limits.requestBodySeconds, limits.connectionIdleSeconds, limits.answerStallSeconds)
        return .seconds(Int64(seconds))
    }

    private func armTimer(context: ChannelHandlerContext, now: NIODeadline) {
        guard !closing else { return }
        var at = now + timerStep
        if let due = deadline(), due.at < at { at = due.at }
        let target = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: at) {
            target.value.handler.timerFired(context: target.value.context)
        }
    }

    private func timerFired(context: ChannelHandlerContext) {
        timer = nil
        guard !closing else { return }
        let now = NIODeadline.now()
        if let due = deadline(), due.at <= now {
            close(context: context, level: due.level, due.what)
            return
        }
        armTimer(context: context, now: now)
    }

    private func close(context: ChannelHandlerContext, level: Logger.Level, _ message: String) {
        logger.log(level: level, "\(message)", metadata: ["remote": "\(context.remoteAddress.map { "\($0)" } ?? "?")"])
        closing = true
        context.close(promise: nil)
    }
}
