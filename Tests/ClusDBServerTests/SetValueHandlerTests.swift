@testable import ClusDBServer
import ClusDBModel
import ClusDBNode
import HTTPTypes
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTPTypes
import Synchronization
import Testing

/// Goal: `SetValueHandler` answers exactly the set-value requests it should, hands every other
/// request to the router untouched, and keeps HTTP/1.1 pipelining in order while a write waits
/// for the node. Method: an embedded channel with the handler alone; a stand-in write path that
/// holds each answer until the test releases it; inbound parts that reach the end of the pipeline
/// are what the router would have seen.
@Suite("Set-value handler on the event loop")
struct SetValueHandlerUnitTests {
    /// The stand-in write path: records commands and keeps their answers for the test to give.
    final class HeldWrites: Sendable {
        private let state = Mutex<[(HiveCommand, ClusterNode.ProposalAnswer)]>([])

        var propose: SetValueHandler.Propose {
            { command, answer in self.state.withLock { $0.append((command, answer)) } }
        }

        var commands: [HiveCommand] { state.withLock { $0.map(\.0) } }

        /// Answers the oldest waiting write.
        func answerNext(_ result: Result<CommitResult, ClusterError>) {
            let answer = state.withLock { $0.removeFirst().1 }
            answer(result)
        }
    }

    static let logger = Logger(label: "test")

    static func head(_ method: HTTPRequest.Method, _ path: String, close: Bool = false) -> HTTPRequestPart {
        var fields: HTTPFields = [:]
        if close { fields[.connection] = "close" }
        return .head(HTTPRequest(method: method, scheme: nil, authority: "test", path: path, headerFields: fields))
    }

    static func body(_ text: String) -> HTTPRequestPart { .body(ByteBuffer(string: text)) }

    static let setValuePath = "/v1/registry/set-value"
    static let plainBody = #"{"key":"A\\B","name":"v","type":"REG_DWORD","data":7,"createKey":true}"#

    /// Sends one whole request.
    static func send(_ channel: EmbeddedChannel, _ method: HTTPRequest.Method, _ path: String, _ text: String, close: Bool = false) throws {
        try channel.writeInbound(head(method, path, close: close))
        try channel.writeInbound(body(text))
        try channel.writeInbound(HTTPRequestPart.end(nil))
    }

    /// Everything the handler wrote towards the client, as (status, body) per answer.
    static func answers(_ channel: EmbeddedChannel) throws -> [(HTTPResponse.Status, String)] {
        var answers: [(HTTPResponse.Status, String)] = []
        var status: HTTPResponse.Status?
        var text = ""
        while let part = try channel.readOutbound(as: HTTPResponsePart.self) {
            switch part {
            case .head(let head):
                status = head.status
                text = ""
                #expect(head.headerFields[.contentType] == "application/json")
                #expect(head.headerFields[.server] == "clusdb")
                #expect(head.headerFields[.date] != nil)
            case .body(let buffer): text += String(buffer: buffer)
            case .end:
                answers.append((status ?? .internalServerError, text))
                status = nil
            }
        }
        return answers
    }

    /// The request parts that reached the router.
    static func forwarded(_ channel: EmbeddedChannel) throws -> [String] {
        var parts: [String] = []
        while let part = try channel.readInbound(as: HTTPRequestPart.self) {
            switch part {
            case .head(let head): parts.append("head \(head.method.rawValue) \(head.path ?? "")")
            case .body(let buffer): parts.append("body \(String(buffer: buffer))")
            case .end: parts.append("end")
            }
        }
        return parts
    }

    @Test("A plain set-value is answered by the handler; the router sees nothing of it")
    func answersSetValue() throws {
        let writes = HeldWrites()
        let channel = EmbeddedChannel(handler: SetValueHandler(logger: Self.logger, propose: writes.propose))
        try Self.send(channel, .post, Self.setValuePath, Self.plainBody)
        #expect(writes.commands == [.setValue(key: try KeyPath(#"A\B"#), name: "v", value: .dword(7), createKey: true)])
        #expect(try Self.answers(channel).isEmpty, "nothing before the node answers")
        writes.answerNext(.success(CommitResult(index: 12, outcome: .done)))
        let answers = try Self.answers(channel)
        #expect(answers.map(\.0) == [.ok])
        #expect(answers.map(\.1) == [#"{"index":12}"#])
        #expect(try Self.forwarded(channel).isEmpty)
        #expect(try channel.finish().isClean)
    }

    @Test("Failures read as the router writes them: a committed error outcome, a refused write, a bad key")
    func answersFailures() throws {
        let writes = HeldWrites()
        let channel = EmbeddedChannel(handler: SetValueHandler(logger: Self.logger, propose: writes.propose))
        let missing = ClusterError(.fileNotFound, "key \"A\\B\" does not exist")
        let busy = ClusterError(.busy, "full")
        try Self.send(channel, .post, Self.setValuePath, Self.plainBody)
        writes.answerNext(.success(CommitResult(index: 3, outcome: .failed(missing))))
        try Self.send(channel, .post, Self.setValuePath, Self.plainBody)
        writes.answerNext(.failure(busy))
        try Self.send(channel, .post, Self.setValuePath, #"{"key":"\\A","name":"v","type":"REG_DWORD","data":7}"#)
        #expect(writes.commands.isEmpty, "an invalid key is refused before proposing")
        let answers = try Self.answers(channel)
        try #require(answers.count == 3)
        #expect(answers.map(\.0) == [.notFound, .serviceUnavailable, .badRequest])
        #expect(answers[0].1 == String(decoding: ErrorAnswer.body(missing), as: UTF8.self))
        #expect(answers[1].1 == String(decoding: ErrorAnswer.body(busy), as: UTF8.self))
        #expect(answers[2].1.contains("ERROR_INVALID_PARAMETER"))
        #expect(try channel.finish().isClean)
    }

    @Test("Other requests, and set-value bodies the strict parser declines, reach the router unchanged")
    func forwardsTheRest() throws {
        let writes = HeldWrites()
        let channel = EmbeddedChannel(handler: SetValueHandler(logger: Self.logger, propose: writes.propose))
        try Self.send(channel, .post, "/v1/registry/query-value", #"{"key":"A","name":"v"}"#)
        #expect(try Self.forwarded(channel) == [#"head POST /v1/registry/query-value"#, #"body {"key":"A","name":"v"}"#, "end"])
        // The router answers it; then a set-value body with an unknown member goes to the router too.
        try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .ok)))
        try channel.writeOutbound(HTTPResponsePart.end(nil))
        let unusual = #"{"key":"A","name":"v","type":"REG_DWORD","data":7,"extra":1}"#
        try Self.send(channel, .post, Self.setValuePath, unusual)
        #expect(try Self.forwarded(channel) == ["head POST \(Self.setValuePath)", "body \(unusual)", "end"])
        try Self.send(channel, .get, Self.setValuePath, "")
        #expect(try Self.forwarded(channel) == ["head GET \(Self.setValuePath)", "body ", "end"])
        #expect(writes.commands.isEmpty)
        _ = try channel.finish()
    }

    @Test("While the router owes an answer, set-value waits its turn there too")
    func routerFirst() throws {
        let writes = HeldWrites()
        let channel = EmbeddedChannel(handler: SetValueHandler(logger: Self.logger, propose: writes.propose))
        try Self.send(channel, .post, "/v1/registry/enum-key", #"{"key":""}"#)
        try Self.send(channel, .post, Self.setValuePath, Self.plainBody)
        #expect(try Self.forwarded(channel).count == 6, "both requests went to the router, in order")
        #expect(writes.commands.isEmpty)
        // The router answers both; the next set-value is the handler's again.
        for _ in 0..<2 {
            try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .ok)))
            try channel.writeOutbound(HTTPResponsePart.end(nil))
        }
        while try channel.readOutbound(as: HTTPResponsePart.self) != nil {}
        try Self.send(channel, .post, Self.setValuePath, Self.plainBody)
        #expect(writes.commands.count == 1)
        #expect(try Self.forwarded(channel).isEmpty)
        _ = try channel.finish()
    }

    @Test("Requests pipelined behind a waiting write are held, then taken up in order after its answer")
    func pipelinedBehindAWrite() throws {
        let writes = HeldWrites()
        let channel = EmbeddedChannel(handler: SetValueHandler(logger: Self.logger, propose: writes.propose))
        try Self.send(channel, .post, Self.setValuePath, Self.plainBody)
        try Self.send(channel, .post, "/v1/registry/query-value", #"{"key":"A\\B","name":"v"}"#)
        try Self.send(channel, .post, Self.setValuePath, Self.plainBody)
        #expect(writes.commands.count == 1, "the second write waits behind the query")
        #expect(try Self.forwarded(channel).isEmpty, "the query waits behind the first write")
        writes.answerNext(.success(CommitResult(index: 1, outcome: .done)))
        #expect(try Self.answers(channel).map(\.1) == [#"{"index":1}"#])
        // The query went to the router and the set-value behind it followed it there.
        #expect(try Self.forwarded(channel).count == 6)
        #expect(writes.commands.isEmpty)
        _ = try channel.finish()
    }

    @Test("A second write pipelined behind a waiting one is proposed only after the first is answered")
    func writesInOrder() throws {
        let writes = HeldWrites()
        let channel = EmbeddedChannel(handler: SetValueHandler(logger: Self.logger, propose: writes.propose))
        try Self.send(channel, .post, Self.setValuePath, Self.plainBody)
        try Self.send(channel, .post, Self.setValuePath, Self.plainBody, close: true)
        #expect(writes.commands.count == 1)
        writes.answerNext(.success(CommitResult(index: 1, outcome: .done)))
        #expect(writes.commands.count == 1, "the second write is proposed once the first is answered")
        writes.answerNext(.success(CommitResult(index: 2, outcome: .done)))
        #expect(try Self.answers(channel).map(\.1) == [#"{"index":1}"#, #"{"index":2}"#])
        #expect(!channel.isActive, "Connection: close is honoured")
    }

    /// Records the user events that pass the handler (where Hummingbird's connection handler sits).
    final class EventRecorder: ChannelInboundHandler {
        typealias InboundIn = HTTPRequestPart
        var quiesceEvents = 0

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if event is ChannelShouldQuiesceEvent { quiesceEvents += 1 }
            context.fireUserInboundEventTriggered(event)
        }
    }

    @Test("A graceful-shutdown notice waits until the write in progress is answered")
    func quiesceAfterAnswer() throws {
        let writes = HeldWrites()
        let recorder = EventRecorder()
        let channel = EmbeddedChannel(handlers: [SetValueHandler(logger: Self.logger, propose: writes.propose), recorder])
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(recorder.quiesceEvents == 1, "passed on at once between requests")
        try Self.send(channel, .post, Self.setValuePath, Self.plainBody)
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(recorder.quiesceEvents == 1, "held while the write waits for the node")
        writes.answerNext(.success(CommitResult(index: 1, outcome: .done)))
        #expect(recorder.quiesceEvents == 2, "passed on after the answer")
        #expect(try Self.answers(channel).map(\.1) == [#"{"index":1}"#])
        _ = try channel.finish()
    }
}
