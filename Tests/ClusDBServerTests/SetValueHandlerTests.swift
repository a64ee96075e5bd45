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

    /// Stands where the router's channel handler stands: records every inbound part (fully),
    /// read-complete, user event and error that the handler lets through.
    final class RouterSide: ChannelInboundHandler {
        typealias InboundIn = HTTPRequestPart
        var log: [String] = []

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head): log.append("head \(head.method.rawValue) \(head.path ?? "")")
            case .body(let buffer): log.append("body \(String(buffer: buffer))")
            case .end: log.append("end")
            }
        }

        func channelReadComplete(context: ChannelHandlerContext) { log.append("read-complete") }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            switch event {
            case is ChannelShouldQuiesceEvent: log.append("quiesce")
            case let event as ChannelEvent where event == .inputClosed: log.append("input-closed")
            default: log.append("event")
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) { log.append("error") }

        /// What arrived since the last look.
        func take() -> [String] {
            defer { log.removeAll() }
            return log
        }

        /// What arrived since the last look, without read-completes (the embedded channel sends
        /// one per inbound write).
        func takeParts() -> [String] { take().filter { $0 != "read-complete" } }
    }

    /// Stands between the handler and the socket: counts the reads the handler lets through and
    /// records how it closes.
    final class SocketSide: ChannelOutboundHandler {
        typealias OutboundIn = Any
        var reads = 0
        var closes: [CloseMode] = []

        func read(context: ChannelHandlerContext) {
            reads += 1
            context.read()
        }

        func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
            closes.append(mode)
            context.close(mode: mode, promise: promise)
        }
    }

    /// The handler between the two stand-ins, with a write path the test answers by hand.
    struct Harness {
        let writes = HeldWrites()
        let router = RouterSide()
        let socket = SocketSide()
        let channel: EmbeddedChannel

        init() {
            channel = EmbeddedChannel(
                handlers: [socket, SetValueHandler(logger: SetValueHandlerUnitTests.logger, propose: writes.propose), router])
        }

        /// Sends one whole request in one read cycle.
        func send(_ method: HTTPRequest.Method, _ path: String, _ text: String, close: Bool = false) throws {
            try channel.writeInbound(SetValueHandlerUnitTests.head(method, path, close: close))
            try channel.writeInbound(SetValueHandlerUnitTests.body(text))
            try channel.writeInbound(HTTPRequestPart.end(nil))
            channel.pipeline.fireChannelReadComplete()
        }

        /// The router's answer to one forwarded request.
        func routerAnswers() throws {
            try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .ok)))
            try channel.writeOutbound(HTTPResponsePart.end(nil))
            while try channel.readOutbound(as: HTTPResponsePart.self) != nil {}
        }
    }

    static func head(_ method: HTTPRequest.Method, _ path: String, close: Bool = false) -> HTTPRequestPart {
        var fields: HTTPFields = [:]
        if close { fields[.connection] = "close" }
        return .head(HTTPRequest(method: method, scheme: nil, authority: "test", path: path, headerFields: fields))
    }

    static func body(_ text: String) -> HTTPRequestPart { .body(ByteBuffer(string: text)) }

    static let setValuePath = "/v1/registry/set-value"
    static let plainBody = #"{"key":"A\\B","name":"v","type":"REG_DWORD","data":7,"createKey":true}"#
    static let queryBody = #"{"key":"A\\B","name":"v"}"#

    /// The request parts of one forwarded request.
    static func parts(_ method: HTTPRequest.Method, _ path: String, _ text: String) -> [String] {
        ["head \(method.rawValue) \(path)", "body \(text)", "end"]
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
                #expect(head.headerFields[.contentLength] != nil)
            case .body(let buffer): text += String(buffer: buffer)
            case .end:
                answers.append((status ?? .internalServerError, text))
                status = nil
            }
        }
        return answers
    }

    @Test("A plain set-value is answered by the handler; the router sees nothing of it")
    func answersSetValue() throws {
        let harness = Harness()
        try harness.send(.post, Self.setValuePath, Self.plainBody)
        #expect(harness.writes.commands == [.setValue(key: try KeyPath(#"A\B"#), name: "v", value: .dword(7), createKey: true)])
        #expect(try Self.answers(harness.channel).isEmpty, "nothing before the node answers")
        harness.writes.answerNext(.success(CommitResult(index: 12, outcome: .done)))
        let answers = try Self.answers(harness.channel)
        #expect(answers.map(\.0) == [.ok])
        #expect(answers.map(\.1) == [#"{"index":12}"#])
        #expect(harness.router.takeParts().isEmpty)
        #expect(try harness.channel.finish().isClean)
    }

    @Test("Failures read as the router writes them: a committed error outcome, a refused write, a bad key")
    func answersFailures() throws {
        let harness = Harness()
        let missing = ClusterError(.fileNotFound, "key \"A\\B\" does not exist")
        let busy = ClusterError(.busy, "full")
        try harness.send(.post, Self.setValuePath, Self.plainBody)
        harness.writes.answerNext(.success(CommitResult(index: 3, outcome: .failed(missing))))
        try harness.send(.post, Self.setValuePath, Self.plainBody)
        harness.writes.answerNext(.failure(busy))
        try harness.send(.post, Self.setValuePath, #"{"key":"\\A","name":"v","type":"REG_DWORD","data":7}"#)
        #expect(harness.writes.commands.isEmpty, "an invalid key is refused before proposing")
        let answers = try Self.answers(harness.channel)
        try #require(answers.count == 3)
        #expect(answers.map(\.0) == [.notFound, .serviceUnavailable, .badRequest])
        #expect(answers[0].1 == String(decoding: ErrorAnswer.body(missing), as: UTF8.self))
        #expect(answers[1].1 == String(decoding: ErrorAnswer.body(busy), as: UTF8.self))
        #expect(answers[2].1.contains("ERROR_INVALID_PARAMETER"))
        #expect(try harness.channel.finish().isClean)
    }

    @Test("Other requests, and set-value bodies the strict parser declines, reach the router unchanged")
    func forwardsTheRest() throws {
        let harness = Harness()
        try harness.send(.post, "/v1/registry/query-value", Self.queryBody)
        #expect(harness.router.takeParts() == Self.parts(.post, "/v1/registry/query-value", Self.queryBody))
        try harness.routerAnswers()
        let unusual = #"{"key":"A","name":"v","type":"REG_DWORD","data":7,"extra":1}"#
        try harness.send(.post, Self.setValuePath, unusual)
        #expect(harness.router.takeParts() == Self.parts(.post, Self.setValuePath, unusual))
        try harness.routerAnswers()
        try harness.send(.get, Self.setValuePath, "")
        #expect(harness.router.takeParts() == Self.parts(.get, Self.setValuePath, ""))
        #expect(harness.writes.commands.isEmpty)
        _ = try harness.channel.finish()
    }

    @Test("While the router owes an answer, set-value waits its turn there too")
    func routerFirst() throws {
        let harness = Harness()
        try harness.send(.post, "/v1/registry/enum-key", #"{"key":""}"#)
        try harness.send(.post, Self.setValuePath, Self.plainBody)
        #expect(
            harness.router.takeParts()
                == Self.parts(.post, "/v1/registry/enum-key", #"{"key":""}"#) + Self.parts(.post, Self.setValuePath, Self.plainBody))
        #expect(harness.writes.commands.isEmpty)
        // The router answers both; the next set-value is the handler's again.
        try harness.routerAnswers()
        try harness.routerAnswers()
        try harness.send(.post, Self.setValuePath, Self.plainBody)
        #expect(harness.writes.commands.count == 1)
        #expect(harness.router.takeParts().isEmpty)
        _ = try harness.channel.finish()
    }

    @Test("Requests pipelined behind a waiting write are held with reading paused, then taken up in order as one read cycle")
    func pipelinedBehindAWrite() throws {
        let harness = Harness()
        try harness.send(.post, Self.setValuePath, Self.plainBody)
        try harness.send(.post, "/v1/registry/query-value", Self.queryBody)
        try harness.send(.post, Self.setValuePath, Self.plainBody)
        harness.channel.pipeline.read()
        #expect(harness.socket.reads == 0, "reading pauses while the write waits")
        #expect(harness.writes.commands.count == 1, "the second write waits behind the query")
        #expect(harness.router.take().allSatisfy { $0 == "read-complete" }, "the query waits behind the first write")
        harness.writes.answerNext(.success(CommitResult(index: 1, outcome: .done)))
        #expect(try Self.answers(harness.channel).map(\.1) == [#"{"index":1}"#])
        // The query went to the router and the set-value behind it followed it there, then a
        // read-complete so the router's channel handler delivers them.
        #expect(
            harness.router.take()
                == Self.parts(.post, "/v1/registry/query-value", Self.queryBody) + Self.parts(.post, Self.setValuePath, Self.plainBody)
                + ["read-complete"])
        #expect(harness.socket.reads == 1, "the paused read resumes")
        #expect(harness.writes.commands.isEmpty)
        _ = try harness.channel.finish()
    }

    @Test("A write that waits alone does not pause reading (no epoll change per write)")
    func waitingAloneKeepsReading() throws {
        let harness = Harness()
        try harness.send(.post, Self.setValuePath, Self.plainBody)
        harness.channel.pipeline.read()
        #expect(harness.socket.reads == 1, "nothing is held behind the write, so the read goes through")
        try harness.send(.post, Self.setValuePath, Self.plainBody)
        #expect(harness.writes.commands.count == 1, "the second write is held behind the first")
        harness.channel.pipeline.read()
        #expect(harness.socket.reads == 1, "with a request held, reading pauses")
        harness.writes.answerNext(.success(CommitResult(index: 1, outcome: .done)))
        #expect(harness.socket.reads == 2, "the paused read resumes once the held request is taken up")
        harness.writes.answerNext(.success(CommitResult(index: 2, outcome: .done)))
        #expect(try Self.answers(harness.channel).map(\.1) == [#"{"index":1}"#, #"{"index":2}"#])
        _ = try harness.channel.finish()
    }

    @Test("A second write pipelined behind a waiting one is proposed after the first is answered; Connection: close closes the output")
    func writesInOrder() throws {
        let harness = Harness()
        try harness.send(.post, Self.setValuePath, Self.plainBody)
        try harness.send(.post, Self.setValuePath, Self.plainBody, close: true)
        try harness.send(.post, Self.setValuePath, Self.plainBody)
        #expect(harness.writes.commands.count == 1)
        harness.writes.answerNext(.success(CommitResult(index: 1, outcome: .done)))
        #expect(harness.writes.commands.count == 1, "the second write is proposed once the first is answered")
        harness.writes.answerNext(.success(CommitResult(index: 2, outcome: .done)))
        #expect(try Self.answers(harness.channel).map(\.1) == [#"{"index":1}"#, #"{"index":2}"#])
        #expect(harness.writes.commands.isEmpty, "nothing after the request that asked to close is proposed")
        #expect(harness.socket.closes == [.output], "the output closes after the answer; the client closes the rest")
    }

    @Test("After a router request with Connection: close, later set-values are dropped as the router drops them")
    func routerClose() throws {
        let harness = Harness()
        try harness.send(.post, "/v1/registry/query-value", Self.queryBody, close: true)
        try harness.routerAnswers()
        try harness.send(.post, Self.setValuePath, Self.plainBody)
        #expect(harness.writes.commands.isEmpty)
        #expect(harness.router.takeParts() == Self.parts(.post, "/v1/registry/query-value", Self.queryBody))
        _ = try harness.channel.finish()
    }

    @Test("The client's half-close and decoding errors behind a waiting write wait for its answer")
    func eventsKeepTheirPlace() throws {
        struct DecodingFailure: Error {}
        let harness = Harness()
        try harness.send(.post, Self.setValuePath, Self.plainBody)
        harness.channel.pipeline.fireErrorCaught(DecodingFailure())
        harness.channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(harness.router.take().allSatisfy { $0 == "read-complete" }, "held while the write waits")
        harness.writes.answerNext(.success(CommitResult(index: 1, outcome: .done)))
        #expect(harness.router.take() == ["error", "input-closed"])
        #expect(try Self.answers(harness.channel).map(\.1) == [#"{"index":1}"#])
        _ = try harness.channel.finish()
    }

    @Test("Reading pauses while the socket is not writable, so unread answers cannot pile up")
    func writability() throws {
        let harness = Harness()
        harness.channel.isWritable = false
        harness.channel.pipeline.fireChannelWritabilityChanged()
        harness.channel.pipeline.read()
        #expect(harness.socket.reads == 0)
        harness.channel.isWritable = true
        harness.channel.pipeline.fireChannelWritabilityChanged()
        #expect(harness.socket.reads == 1)
        harness.channel.pipeline.read()
        #expect(harness.socket.reads == 2)
        _ = try harness.channel.finish()
    }

    @Test("A graceful-shutdown notice waits until the write in progress is answered")
    func quiesceAfterAnswer() throws {
        let harness = Harness()
        harness.channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(harness.router.take() == ["quiesce"], "passed on at once between requests")
        try harness.channel.writeInbound(Self.head(.post, Self.setValuePath))
        harness.channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        try harness.channel.writeInbound(Self.body(Self.plainBody))
        try harness.channel.writeInbound(HTTPRequestPart.end(nil))
        harness.channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(harness.router.takeParts().isEmpty, "held while the request is read and while it waits for the node")
        harness.writes.answerNext(.success(CommitResult(index: 1, outcome: .done)))
        #expect(harness.router.takeParts() == ["quiesce", "quiesce"], "passed on after the answer")
        #expect(try Self.answers(harness.channel).map(\.1) == [#"{"index":1}"#])
        _ = try harness.channel.finish()
    }

    @Test("A connection that pipelines more than the limit behind a waiting write is closed; the late answer is dropped")
    func pipelineLimit() throws {
        let harness = Harness()
        try harness.send(.post, Self.setValuePath, Self.plainBody)
        for _ in 0..<(Limits.pipelinedRequestPartsMax / 3 + 1) {
            try harness.send(.post, "/v1/registry/query-value", Self.queryBody)
        }
        #expect(!harness.channel.isActive)
        #expect(harness.socket.closes == [.all])
        harness.writes.answerNext(.success(CommitResult(index: 1, outcome: .done)))
        #expect(try Self.answers(harness.channel).isEmpty)
        #expect(harness.router.takeParts().isEmpty, "nothing held reaches the router")
    }
}
