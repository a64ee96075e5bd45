@testable import ClusDBServer
import ClusDBModel
import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTPTypes
import Testing

/// Goal: `ConnectionGuard` refuses past the service's caps without breaking HTTP/1.1 order, and
/// gives every slot and byte back. Method: the guard alone in an embedded channel; the test plays
/// the router (reading what the guard passes on, writing answers) and the socket.
@Suite("Connection guard")
struct ConnectionGuardTests {
    static func head(_ path: String, contentLength: Int? = nil) -> HTTPRequestPart {
        var fields: HTTPFields = [:]
        if let contentLength { fields[.contentLength] = "\(contentLength)" }
        return .head(HTTPRequest(method: .post, scheme: nil, authority: "test", path: path, headerFields: fields))
    }

    static func channel(_ load: ServerLoad) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ConnectionGuard(load: load, logger: Logger(label: "test")))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    /// The statuses and error codes of every answer written so far, in order.
    static func answers(_ channel: EmbeddedChannel) throws -> [(HTTPResponse.Status, UInt32?)] {
        var result: [(HTTPResponse.Status, UInt32?)] = []
        var status: HTTPResponse.Status?
        var body = Data()
        while let part = try channel.readOutbound(as: HTTPResponsePart.self) {
            switch part {
            case .head(let head): status = head.status
            case .body(let buffer): body.append(contentsOf: buffer.readableBytesView)
            case .end:
                let code = (try? JSONDecoder().decode(ClientProtocol.ErrorResponse.self, from: body))?.error.code
                result.append((status ?? .internalServerError, code))
                body = Data()
            }
        }
        return result
    }

    @Test("A refusal behind an unanswered request waits for its answer; slots come back at each answer's end")
    func refusalKeepsOrder() throws {
        var limits = ServerLimits()
        limits.requestsInFlightMax = 1
        let load = ServerLoad(limits: limits)
        let channel = try Self.channel(load)
        try channel.writeInbound(Self.head("/v1/registry/set-value", contentLength: 2))
        try channel.writeInbound(HTTPRequestPart.body(ByteBuffer(string: "{}")))
        try channel.writeInbound(HTTPRequestPart.end(nil))
        // Pipelined behind it, while it is unanswered: over the cap.
        try channel.writeInbound(Self.head("/v1/status"))
        try channel.writeInbound(HTTPRequestPart.end(nil))
        // The first request went on; the second did not, and nothing is answered yet.
        var passed = 0
        while try channel.readInbound(as: HTTPRequestPart.self) != nil { passed += 1 }
        #expect(passed == 3)
        #expect(try Self.answers(channel).isEmpty)
        #expect(load.snapshot.requests == 1)
        #expect(load.snapshot.bytes == 2)
        // The router answers the first; the refusal follows it.
        try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .ok)))
        try channel.writeOutbound(HTTPResponsePart.end(nil))
        let answers = try Self.answers(channel)
        #expect(answers.map(\.0) == [.ok, .serviceUnavailable])
        #expect(answers.last?.1 == Win32Error.busy.rawValue)
        #expect(load.snapshot.requests == 0)
        #expect(load.snapshot.bytes == 0)
        _ = try channel.finish()
    }

    @Test("A declared body over the byte budget is refused; a closed connection gives back what it held")
    func byteBudget() throws {
        var limits = ServerLimits()
        limits.requestBytesBufferedMax = 100
        let load = ServerLoad(limits: limits)
        let channel = try Self.channel(load)
        try channel.writeInbound(Self.head("/v1/registry/set-value", contentLength: 101))
        try channel.writeInbound(HTTPRequestPart.body(ByteBuffer(string: String(repeating: " ", count: 101))))
        try channel.writeInbound(HTTPRequestPart.end(nil))
        #expect(try channel.readInbound(as: HTTPRequestPart.self) == nil)
        #expect(try Self.answers(channel).map(\.0) == [.serviceUnavailable])
        // One that fits is passed on and holds its bytes until the connection goes.
        try channel.writeInbound(Self.head("/v1/registry/set-value", contentLength: 60))
        #expect(load.snapshot.bytes == 60)
        #expect(load.snapshot.connections == 1)
        _ = try channel.finish()
        #expect(load.snapshot.bytes == 0)
        #expect(load.snapshot.requests == 0)
        #expect(load.snapshot.connections == 0)
    }
}
