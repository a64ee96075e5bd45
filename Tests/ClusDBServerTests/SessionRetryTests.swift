#if canImport(Glibc)
import Glibc
#endif
@testable import ClusAPI
import ClusDBModel
import Foundation
import Synchronization
import Testing

/// Goal: a write whose answer is lost is sent again by the client library with the same session
/// and number (so the node applies it once), and a write without a session is not (its outcome
/// stays unknown). Method: a stand-in node on a loopback socket that reads each request, records
/// its session header, and drops the connection without answering the first time.
@Suite("ClusAPI: a write whose answer was lost is retried in its session")
struct SessionRetryTests {
    /// A one-thread HTTP stand-in: hangs up on the first `dropFirst` requests, answers the rest
    /// with `{"index":7}`.
    final class StandIn: Sendable {
        /// The session headers of the requests read, in order (nil: none).
        final class Log: Sendable {
            let sessions = Mutex<[String?]>([])
        }

        let port: UInt16
        let log = Log()
        private let listener: Int32

        init(dropFirst: Int, clientSessions: Bool? = true) throws {
            let status = ClientProtocol.StatusResponse(
                cluster: .init(name: "standin", id: "id"), quorumOwner: "n", term: 1, commitIndex: 1, members: [], node: "n",
                restoreGeneration: 0, checkpointIndex: 0, quorumLogBytes: 0, version: "0", clientSessions: clientSessions)
            let statusBody = String(decoding: try JSONEncoder().encode(status), as: UTF8.self)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = 0
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
            }
            try #require(bound == 0 && listen(fd, 8) == 0)
            _ = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
            }
            port = UInt16(bigEndian: address.sin_port)
            listener = fd
            let log = self.log
            Thread {
                var served = 0
                while true {
                    let connection = accept(fd, nil, nil)
                    if connection < 0 {
                        // Shut down by stop(). The descriptor is closed only here, once nothing
                        // uses it: closed earlier, its number could name the next stand-in's
                        // socket while this thread still accepts on it.
                        close(fd)
                        return
                    }
                    while let head = Self.readRequest(connection) {
                        if head.hasPrefix("GET /v1/status") {
                            let answer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(statusBody.utf8.count)\r\n\r\n\(statusBody)"
                            _ = answer.withCString { send(connection, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
                            continue
                        }
                        let session = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("clusdb-session:") }
                            .map { String($0.dropFirst("clusdb-session:".count)).trimmingCharacters(in: .whitespaces) }
                        log.sessions.withLock { $0.append(session) }
                        served += 1
                        if served <= dropFirst { break }
                        let body = #"{"index":7}"#
                        let answer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
                        _ = answer.withCString { send(connection, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
                    }
                    close(connection)
                }
            }.start()
        }

        var sessions: [String?] { log.sessions.withLock { $0 } }

        /// Reads one request (head and `Content-Length` body); nil when the peer closed.
        static func readRequest(_ connection: Int32) -> String? {
            var bytes: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                if let end = String(decoding: bytes, as: UTF8.self).range(of: "\r\n\r\n") {
                    let head = String(String(decoding: bytes, as: UTF8.self)[..<end.lowerBound])
                    let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                        .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                    if bytes.count >= head.utf8.count + 4 + length { return head }
                }
                let count = read(connection, &buffer, buffer.count)
                if count <= 0 { return nil }
                bytes += buffer[..<count]
            }
        }

        /// Stops accepting (the accepting thread closes the socket).
        func stop() {
            shutdown(listener, Int32(SHUT_RDWR))
        }
    }

    @Test("A write with a session is sent again with the same session and number; one without is not")
    func retriedInItsSession() async throws {
        let standIn = try StandIn(dropFirst: 1)
        defer { standIn.stop() }
        let transport = HTTPTransport(endpoints: ["127.0.0.1:\(standIn.port)"])
        defer { transport.invalidate() }
        let body = Data(#"{"key":"K","name":"v","type":"REG_DWORD","data":1,"createKey":true}"#.utf8)
        let answer = try await transport.send("registry/set-value", body: body, session: ClientSession(client: 42, sequence: 9))
        #expect(String(decoding: answer, as: UTF8.self) == #"{"index":7}"#)
        #expect(standIn.sessions == ["42/9", "42/9"], "the lost answer's write went again, in the same session")

        let unsessioned = try StandIn(dropFirst: 1)
        defer { unsessioned.stop() }
        let plain = HTTPTransport(endpoints: ["127.0.0.1:\(unsessioned.port)"])
        defer { plain.invalidate() }
        await #expect(throws: ClusterError.self, "without a session the outcome stays unknown") {
            _ = try await plain.send("registry/set-value", body: body)
        }
        #expect(unsessioned.sessions == [nil], "sent once")
    }

    @Test("A handle sends sessions only to a node whose status says it applies them: a release-1 node would apply a resend twice")
    func sessionsOnlyWhereSupported() async throws {
        for supported in [true, false] {
            let standIn = try StandIn(dropFirst: 1, clientSessions: supported ? true : nil)
            defer { standIn.stop() }
            let cluster = try await openCluster("127.0.0.1:\(standIn.port)")
            defer { cluster.close() }
            do {
                try await cluster.setValue(key: "K", name: "v", value: .dword(1), createKey: true)
                #expect(supported, "without sessions a write whose answer was lost is not resent")
            } catch {
                #expect(!supported && error.code == .clusterNodeDown, "\(error)")
            }
            let sent = standIn.sessions
            if supported {
                #expect(sent.count == 2 && sent[0] != nil && sent[0] == sent[1], "\(sent)")
            } else {
                #expect(sent == [nil], "one send, no session header: \(sent)")
            }
        }
    }

    @Test("A handle's writes take sessions from its pool: one outstanding write per session, numbers rising")
    func sessionPool() {
        let pool = SessionPool()
        let first = pool.take()
        let concurrent = pool.take()
        #expect(first.client != concurrent.client && first.sequence == 1 && concurrent.sequence == 1)
        pool.giveBack(first)
        let next = pool.take()
        #expect(next.client == first.client && next.sequence == 2)
    }

    @Test("After a fork the child starts with no idle session: parent and child never send one number with two writes")
    func poolAfterFork() {
        let process = Mutex<Int32>(100)
        let pool = SessionPool(processID: { process.withLock { $0 } })
        let parents = pool.take()
        pool.giveBack(parents)
        process.withLock { $0 = 200 }  // the child
        let childs = pool.take()
        #expect(childs.client != parents.client, "the child took the parent's next number: \(childs)")
        pool.giveBack(childs)
        #expect(pool.take().client == childs.client, "the child's own sessions are reused")
    }
}
