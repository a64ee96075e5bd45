import NIOCore
import NIOPosix

// RawAnswerer: the cheapest HTTP/1.1 answer NIO gives, for Benchmarks/ceiling/run.sh. It finds
// the end of each request head, reads Content-Length, skips the body and answers a fixed 200
// with a small JSON body: no HTTP decoder, no HTTP types, no router, no node. What wrk reaches
// against it is the machine's ceiling for this load with NIO on the serving side.
//   swift run -c release --package-path Benchmarks/ceiling RawAnswerer [PORT]   (default 24090)

/// Answers every request of one connection, in order.
final class RawAnswerHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    static let body = #"{"index":12345,"outcome":"done"}"#
    static let answer =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n"
        + "Date: Thu, 03 Dec 2026 19:50:00 GMT\r\nServer: clusdb\r\n\r\n\(body)"
    /// Bytes of a request not complete yet.
    private var pending: ByteBuffer?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if pending == nil { pending = incoming } else { pending!.writeBuffer(&incoming) }
        var complete = 0
        while var buffer = pending {
            let view = buffer.readableBytesView
            guard let end = view.firstRange(of: [13, 10, 13, 10]) else { break }
            let headLength = end.upperBound - view.startIndex
            let bodyLength = Self.contentLength(view[view.startIndex..<end.lowerBound])
            guard buffer.readableBytes >= headLength + bodyLength else { break }
            buffer.moveReaderIndex(forwardBy: headLength + bodyLength)
            pending = buffer.readableBytes > 0 ? buffer : nil
            complete += 1
        }
        for _ in 0..<complete {
            var out = context.channel.allocator.buffer(capacity: 256)
            out.writeString(Self.answer)
            context.write(wrapOutboundOut(out), promise: nil)
        }
        if complete > 0 { context.flush() }
    }

    private static let contentLengthName = Array("content-length:".utf8)

    /// The Content-Length of a request head, 0 without one: the head's bytes scanned once, the
    /// header name compared in ASCII lower case, no string made.
    static func contentLength(_ head: ByteBufferView.SubSequence) -> Int {
        var lineStart = head.startIndex
        while lineStart < head.endIndex {
            let lineEnd = head[lineStart...].firstIndex(of: 10) ?? head.endIndex
            let line = head[lineStart..<lineEnd]
            if line.count > contentLengthName.count,
                zip(line, contentLengthName).allSatisfy({ ($0 | 0x20) == $1 })
            {
                var length = 0
                for byte in line.dropFirst(contentLengthName.count) where byte >= 48 && byte <= 57 {
                    length = length * 10 + Int(byte - 48)
                }
                return length
            }
            lineStart = lineEnd < head.endIndex ? head.index(after: lineEnd) : head.endIndex
        }
        return 0
    }
}

let port = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 24090 : 24090
let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
let channel = try ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 256)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(RawAnswerHandler()) }
    }
    .bind(host: "127.0.0.1", port: port).wait()
print("raw answerer on 127.0.0.1:\(port)")
try channel.closeFuture.wait()
