import ClusDBModel
import ClusDBTestSupport
import Foundation
import Testing

/// Goal: a write sent again in its client session (the `ClusDB-Session` header; a client whose
/// answer was lost does this) is applied once and answered with the first outcome — on the
/// router and on the event loop's set-value alike — a number reused for another write is refused,
/// and a malformed header changes nothing.
/// Method: raw HTTP/1.1 against a live node; each retry comes after another write changed what
/// the retried write would do if applied again.
@Suite("HTTP API: client sessions make a retried write apply once")
struct ClientSessionTests {
    static func post(_ path: String, _ body: String, session: String?) -> String {
        "POST /v1/\(path) HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            + (session.map { "ClusDB-Session: \($0)\r\n" } ?? "") + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }

    static func set(_ name: String, _ value: UInt32, extra: String = "") -> String {
        #"{"key":"S","name":"\#(name)","type":"REG_DWORD","data":\#(value),"createKey":true\#(extra)}"#
    }

    static func value(_ connection: RawConnection, _ name: String) -> UInt32? {
        connection.send(post("registry/query-value", #"{"key":"S","name":"\#(name)"}"#, session: nil))
        return connection.answer().flatMap { SetValueHandlerTests.dwordValue($0.body) }
    }

    @Test("A retried delete is answered with its first outcome and deletes nothing the second time")
    func retriedDelete() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let server = try ServerProcess(dataDirectory: dir.file("data"))
        defer { server.stop() }
        let connection = try RawConnection(port: server.port)
        connection.send(Self.post("registry/set-value", Self.set("v", 1), session: nil))
        #expect(connection.answer()?.status == 200)
        let delete = Self.post("registry/delete-value", #"{"key":"S","name":"v"}"#, session: "77/1")
        connection.send(delete)
        let first = try #require(connection.answer())
        #expect(first.status == 200)
        // The value comes back; the retry of the delete must not take it again.
        connection.send(Self.post("registry/set-value", Self.set("v", 2), session: nil))
        #expect(connection.answer()?.status == 200)
        connection.send(delete)
        let retry = try #require(connection.answer())
        #expect(retry.status == 200, "the first outcome (done), not ERROR_FILE_NOT_FOUND: \(retry.body)")
        #expect(Self.value(connection, "v") == 2, "the retry deleted the value again")
        // Without a session the same request is a new write.
        connection.send(Self.post("registry/delete-value", #"{"key":"S","name":"v"}"#, session: nil))
        #expect(connection.answer()?.status == 200)
        #expect(Self.value(connection, "v") == nil)
    }

    @Test("A retried set-value is applied once, whether the event loop or the router answers it")
    func retriedSetValue() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let server = try ServerProcess(dataDirectory: dir.file("data"))
        defer { server.stop() }
        let connection = try RawConnection(port: server.port)
        // The plain body is the event loop's (FastJSON takes it); the extra member sends it to
        // the router.
        for (sequence, extra) in [(1, ""), (2, #","note":"router""#)] {
            let write = Self.post("registry/set-value", Self.set("w", 10, extra: extra), session: "88/\(sequence)")
            connection.send(write)
            #expect(connection.answer()?.status == 200)
            connection.send(Self.post("registry/set-value", Self.set("w", 20), session: nil))
            #expect(connection.answer()?.status == 200)
            connection.send(write)
            #expect(connection.answer()?.status == 200)
            #expect(Self.value(connection, "w") == 20, "the retry of write \(sequence) was applied again")
        }
        // An older number of the same session is refused and changes nothing.
        connection.send(Self.post("registry/set-value", Self.set("w", 30), session: "88/1"))
        let older = try #require(connection.answer())
        #expect(older.status == 400 && older.body.contains("ERROR_INVALID_PARAMETER"), "\(older.body)")
        #expect(Self.value(connection, "w") == 20)
        // The session's last number with another write is refused too: answering it with the
        // first write's outcome would say a write happened that did not.
        connection.send(Self.post("registry/set-value", Self.set("w", 40), session: "88/2"))
        let reused = try #require(connection.answer())
        #expect(reused.status == 400 && reused.body.contains("another command"), "\(reused.body)")
        #expect(Self.value(connection, "w") == 20)
    }

    @Test("A malformed session header is ERROR_INVALID_PARAMETER on both paths and nothing is written", arguments: ["0/1", "5/0", "5", "a/b", "5/1/2", "-5/1", ""])
    func malformedHeader(_ header: String) throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let server = try ServerProcess(dataDirectory: dir.file("data"))
        defer { server.stop() }
        let connection = try RawConnection(port: server.port)
        for extra in ["", #","note":"router""#] {
            connection.send(Self.post("registry/set-value", Self.set("x", 1, extra: extra), session: header))
            let answer = try #require(connection.answer())
            #expect(answer.status == 400 && answer.body.contains("ClusDB-Session"), "\(header): \(answer.body)")
        }
        connection.send(Self.post("registry/delete-key", #"{"key":"S","recursive":true}"#, session: header))
        #expect(connection.answer()?.status == 400)
        #expect(Self.value(connection, "x") == nil)
    }
}
