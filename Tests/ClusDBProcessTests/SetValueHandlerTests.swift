#if canImport(Glibc)
import Glibc
#endif
import ClusDBModel
import ClusDBTestSupport
import Foundation
import Testing

/// Goal: set-value answered on the event loop (`SetValueHandler`) is indistinguishable from the
/// router's answers — same bodies, statuses and headers — and HTTP/1.1 pipelining keeps its order
/// when the two kinds of answer mix on one connection. Method: raw HTTP/1.1 over a blocking
/// socket against a live node, several requests in one send.
@Suite("HTTP API: set-value on the event loop", .serialized)
struct SetValueHandlerTests {
    typealias Answer = RawConnection.Answer

    static func post(_ path: String, _ body: String, close: Bool = false) -> String {
        "POST /v1/\(path) HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            + (close ? "Connection: close\r\n" : "") + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }

    /// A key path as a JSON string's content.
    static func escaped(_ key: String) -> String { key.replacingOccurrences(of: "\\", with: "\\\\") }

    /// A set-value body the event loop answers.
    static func fastBody(_ key: String, _ name: String, _ value: UInt32, createKey: Bool = true) -> String {
        #"{"key":"\#(escaped(key))","name":"\#(name)","type":"REG_DWORD","data":\#(value),"createKey":\#(createKey)}"#
    }

    /// The same request with a member the strict parser declines and the router ignores.
    static func routerBody(_ key: String, _ name: String, _ value: UInt32, createKey: Bool = true) -> String {
        #"{"key":"\#(escaped(key))","name":"\#(name)","type":"REG_DWORD","data":\#(value),"createKey":\#(createKey),"note":"router"}"#
    }

    /// The number a query-value answer holds for a `REG_DWORD` (JSON member order is not fixed).
    static func dwordValue(_ body: String) -> UInt32? {
        guard let value = try? JSONDecoder().decode(RegistryValue.self, from: Data(body.utf8)),
            case .dword(let number) = value
        else { return nil }
        return number
    }

    @Test("Pipelined requests are answered in order whether the event loop or the router answers them")
    func pipelining() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let server = try ServerProcess(dataDirectory: dir.file("data"))
        defer { server.stop() }
        let connection = try RawConnection(port: server.port)
        // The first write commits inline; the second (answered only once applied) usually has to
        // wait for the apply stage, so what follows it waits in the handler and is taken up
        // after its answer. Either way every answer must come in order.
        connection.send(
            Self.post("registry/set-value", Self.fastBody(#"P\A"#, "v", 1))
                + Self.post("registry/set-value", Self.fastBody(#"P\A"#, "w", 2, createKey: false))
                + Self.post("registry/query-value", #"{"key":"P\\A","name":"v"}"#)
                + "GET /v1/status HTTP/1.1\r\nHost: test\r\n\r\n"
                + Self.post("registry/set-value", Self.routerBody(#"P\A"#, "v", 3))
                + Self.post("registry/query-value", #"{"key":"P\\A","name":"v"}"#)
                + Self.post("registry/set-value", Self.fastBody(#"P\B"#, "v", 4, createKey: false)))
        var answers: [Answer] = []
        while answers.count < 7, let answer = connection.answer() { answers.append(answer) }
        try #require(answers.count == 7, "\(answers)")
        #expect(answers.map(\.status) == [200, 200, 200, 200, 200, 200, 404])
        // Index 1 is the start's no-op (each start is a new Raft term).
        #expect(answers[0].body == #"{"index":2}"#)
        #expect(answers[1].body == #"{"index":3}"#)
        #expect(Self.dwordValue(answers[2].body) == 1)
        #expect(answers[3].body.contains(#""commitIndex":3"#))
        #expect(answers[4].body == #"{"index":4}"#)
        #expect(Self.dwordValue(answers[5].body) == 3)
        #expect(answers[6].body.contains("ERROR_FILE_NOT_FOUND"))
        // Nothing is owed to the router now: the event loop answers these, and closes the output
        // after the one that asks; the request behind it is not carried out.
        connection.send(
            Self.post("registry/set-value", Self.fastBody(#"P\A"#, "x", 5))
                + Self.post("registry/set-value", Self.fastBody(#"P\A"#, "y", 6), close: true)
                + Self.post("registry/set-value", Self.fastBody(#"P\A"#, "z", 7)))
        // The failed write of P\B was committed like any other (its outcome is the error).
        #expect(connection.answer()?.body == #"{"index":6}"#)
        #expect(connection.answer()?.body == #"{"index":7}"#)
        #expect(connection.isClosedByServer(), "Connection: close is honoured")
        let check = try RawConnection(port: server.port)
        check.send(Self.post("registry/query-value", #"{"key":"P\\A","name":"z"}"#))
        #expect(check.answer()?.status == 404, "a request after Connection: close is dropped")
    }

    @Test("An answer from the event loop reads exactly like the router's: status, body and headers")
    func sameAnswers() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let server = try ServerProcess(dataDirectory: dir.file("data"))
        defer { server.stop() }
        let connection = try RawConnection(port: server.port)
        // Each pair: the event loop's answer, then the router's to the same request.
        let pairs: [(String, String)] = [
            (Self.fastBody(#"S\A"#, "v", 1), Self.routerBody(#"S\A"#, "v", 1)),
            (Self.fastBody(#"S\Missing"#, "v", 1, createKey: false), Self.routerBody(#"S\Missing"#, "v", 1, createKey: false)),
            (Self.fastBody(#"\S"#, "v", 1), Self.routerBody(#"\S"#, "v", 1)),
            (Self.fastBody(#"S\A\\B"#, "v", 1), Self.routerBody(#"S\A\\B"#, "v", 1)),
        ]
        var index = 1  // the start's no-op
        for (fast, routed) in pairs {
            connection.send(Self.post("registry/set-value", fast))
            let first = try #require(connection.answer())
            connection.send(Self.post("registry/set-value", routed))
            let second = try #require(connection.answer())
            #expect(first.status == second.status, "\(fast)")
            if first.status == 200 {
                // Two commits: the indexes differ by one, the shape does not.
                index += 2
                #expect(first.body == #"{"index":\#(index - 1)}"#)
                #expect(second.body == #"{"index":\#(index)}"#)
            } else {
                #expect(first.body == second.body, "\(fast)")
                let error = try JSONDecoder().decode(ClientProtocol.ErrorResponse.self, from: Data(first.body.utf8))
                #expect(!error.error.message.isEmpty)
                // A committed failed outcome takes an index too.
                if error.clusterError.code == .fileNotFound { index += 2 }
            }
            for answer in [first, second] {
                #expect(answer.headers["content-type"] == "application/json")
                #expect(answer.headers["server"] == "clusdb")
                #expect(answer.headers["date"]?.hasSuffix(" GMT") == true, "\(answer.headers)")
                #expect(answer.headers["content-length"] == "\(answer.body.utf8.count)")
            }
        }
    }

    @Test("A set-value body that arrives in pieces, or chunked, is answered once it is complete")
    func bodyInPieces() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let server = try ServerProcess(dataDirectory: dir.file("data"))
        defer { server.stop() }
        let connection = try RawConnection(port: server.port)
        let request = Self.post("registry/set-value", Self.fastBody(#"C\A"#, "v", 7))
        let bytes = Array(request.utf8)
        connection.send(String(decoding: bytes[..<(bytes.count - 20)], as: UTF8.self))
        usleep(50_000)
        connection.send(String(decoding: bytes[(bytes.count - 20)...], as: UTF8.self))
        #expect(connection.answer()?.body == #"{"index":2}"#, "after the start's no-op")
        let body = Self.fastBody(#"C\A"#, "v", 8)
        let middle = body.index(body.startIndex, offsetBy: 10)
        let first = String(body[..<middle])
        let rest = String(body[middle...])
        connection.send(
            "POST /v1/registry/set-value HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
                + String(first.utf8.count, radix: 16) + "\r\n" + first + "\r\n")
        usleep(50_000)
        connection.send(String(rest.utf8.count, radix: 16) + "\r\n" + rest + "\r\n0\r\n\r\n")
        #expect(connection.answer()?.body == #"{"index":3}"#)
        connection.send(Self.post("registry/query-value", #"{"key":"C\\A","name":"v"}"#))
        #expect(Self.dwordValue(connection.answer()?.body ?? "") == 8)
    }
}
