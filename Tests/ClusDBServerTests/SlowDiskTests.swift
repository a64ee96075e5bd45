import ClusDBModel
import ClusDBNode
import ClusDBServer
import ClusDBStore
import ClusDBTestSupport
import Dispatch
import Foundation
import Logging
import Testing

/// A slow disk stalls writes, never everything: the fsync of a write runs on the node's commit
/// thread, never on a network event loop or a thread of Swift's cooperative pool, so while the
/// disk holds one, reads and status calls on other connections are still answered.
///
/// Method: the service runs in this process on a data directory whose `log.append` sync is held
/// by a ``SyncGate`` until the test releases it. While it is held, requests on sixteen other
/// connections (spread over both event loops) must all be answered — an ordering, not a timing:
/// each answer is checked to arrive while the gate still holds the sync.
@Suite("Service: a slow disk stalls writes, never everything")
struct SlowDiskTests {
    /// Runs `body` on a thread of its own (the raw connections block; the service shares this
    /// process's cooperative pool).
    static func offPool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: body()) }.start()
        }
    }

    static func post(_ path: String, _ body: String) -> String {
        "POST /v1/\(path) HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }

    @Test("While a write's fsync is held, status and reads on other connections are answered")
    func readsWhileSyncHeld() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let data = dir.file("data")
        var logger = Logger(label: "slow-disk")
        logger.logLevel = .error
        let configuration = ServerConfiguration(
            node: NodeConfiguration(
                dataDirectory: data, nodeName: "n1", clusterName: nil, clientAddress: "127.0.0.1:0", peerAddress: "127.0.0.1:0"),
            clientHost: "127.0.0.1", clientPort: 0)
        let (ports, portSink) = AsyncStream.makeStream(of: Int.self)
        let server = Task { try await ClusDBServer.run(configuration, logger: logger) { portSink.yield($0) } }
        defer { server.cancel() }
        var iterator = ports.makeAsyncIterator()
        let port = try #require(await iterator.next())

        let setBody = #"{"key":"Disk","name":"v","type":"REG_DWORD","data":1,"createKey":true}"#
        let first = await Self.offPool { (try? RawConnection(port: port)).flatMap { $0.send(Self.post("registry/set-value", setBody)); return $0.answer() } }
        #expect(first?.status == 200)

        let gate = try SyncGate(root: data, site: .logAppend)
        FileLayer.install(gate)
        defer { FileLayer.remove(gate) }
        let heldBody = #"{"key":"Disk","name":"held","type":"REG_DWORD","data":2,"createKey":true}"#
        let held = Task { await Self.offPool { (try? RawConnection(port: port)).flatMap { $0.send(Self.post("registry/set-value", heldBody)); return $0.answer() } } }
        try await waitUntil("the write is in its fsync") { gate.waiting }

        // Sixteen connections while the sync is held: status and reads of the earlier write.
        let answers = await withTaskGroup(of: (RawConnection.Answer?, Bool).self) { group in
            for number in 0..<16 {
                group.addTask {
                    await Self.offPool {
                        guard let connection = try? RawConnection(port: port) else { return (nil, false) }
                        if number % 2 == 0 {
                            connection.send("GET /v1/status HTTP/1.1\r\nHost: test\r\n\r\n")
                        } else {
                            connection.send(Self.post("registry/query-value", #"{"key":"Disk","name":"v"}"#))
                        }
                        let answer = connection.answer()
                        return (answer, gate.waiting)
                    }
                }
            }
            return await group.reduce(into: [(RawConnection.Answer?, Bool)]()) { $0.append($1) }
        }
        #expect(answers.count == 16)
        for (answer, stillHeld) in answers {
            #expect(answer?.status == 200, "\(String(describing: answer))")
            #expect(stillHeld, "answered only after the held sync went on")
        }
        #expect(answers.contains { $0.0?.body.contains("\"data\":1") == true }, "reads see the earlier write")
        #expect(gate.waiting, "the write's fsync was held throughout")
        gate.release()
        #expect(await held.value?.status == 200)
    }
}
