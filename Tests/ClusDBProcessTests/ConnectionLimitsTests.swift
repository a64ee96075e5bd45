#if canImport(Glibc)
import Glibc
#endif
import ClusAPI
import ClusDBModel
import ClusDBTestSupport
import Foundation
import Testing

/// Goal: a slow or stalled client can neither stop the node's housekeeping nor exhaust it, and
/// every cap refuses with its documented error (`docs/HTTP_API.md`, "Limits"). Method: raw
/// sockets against a live `clusdb serve` whose limits are shrunk through `CLUSDB_SERVER_LIMITS`;
/// every wait is for an event (an answer, the server's close, a log line, a status that changed),
/// never for time to pass.
@Suite("Connection limits", .serialized)
struct ConnectionLimitsTests {
    /// The ClusDB error in an answer's body.
    static func error(_ answer: TestSocket.Answer?) -> ClusterError? {
        guard let answer else { return nil }
        return (try? JSONDecoder().decode(ClientProtocol.ErrorResponse.self, from: answer.body))?.clusterError
    }

    /// A set-value body (`name` = `v`, a `REG_DWORD`).
    static func setValueBody(_ key: String, _ value: UInt32) -> String {
        #"{"key":"\#(key)","name":"v","type":"REG_DWORD","data":\#(value),"createKey":true}"#
    }

    @Test("A streamed backup whose client stops reading is cut off, its pin released, and checkpoints resume")
    func stalledBackupClient() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let server = try ServerProcess(dataDirectory: dir.file("data"), environment: ["CLUSDB_SERVER_LIMITS": "answerStallSeconds=1"])
        defer { server.stop() }
        let cluster = try await openCluster(server.endpoint)
        defer { cluster.close() }
        try await cluster.setValue(key: "Quorum", name: "MaxQuorumLogSize", value: .dword(65_536), createKey: true)
        // 16 MiB of hive: far more than the loopback socket buffers (4 MiB) take, so the stream
        // cannot end into them while the client reads nothing.
        let big = RegistryValue.binary([UInt8](repeating: 0xA5, count: Limits.valueDataMaxBytes))
        for index in 0..<16 { try await cluster.setValue(key: "Big", name: "v\(index)", value: big, createKey: true) }

        let stalled = try TestSocket(port: server.port, receiveBuffer: 4_096)
        stalled.send(TestSocket.post("backup/stream", "{}"))
        // The answer began, so the backup is pinned; from here on this client takes no bytes.
        #expect(String(decoding: stalled.readPrefix(12), as: UTF8.self) == "HTTP/1.1 200")
        let pinned = try await cluster.status().checkpointIndex
        // Half the last image's size in log (the checkpoint cadence rule) and far past
        // MaxQuorumLogSize: without the pin, the node would write a checkpoint now.
        for index in 0..<10 { try await cluster.setValue(key: "Later", name: "v\(index)", value: big, createKey: true) }

        try await waitUntil("the node closes the stalled connection") { server.stderrText.contains("took no bytes of its answer") }
        try await waitUntil("the backup stream releases its pin") {
            server.stderrText.contains("a streamed backup ended before it was complete; its pin on checkpoints is released")
        }
        #expect(stalled.waitForClose() == .closed)
        // Checkpoints resume: each write gives the node its next chance to start one.
        var checkpointIndex = pinned
        for round in 0..<100_000 where checkpointIndex <= pinned {
            try await cluster.setValue(key: "After", name: "v", value: .dword(UInt32(round)), createKey: true)
            checkpointIndex = try await cluster.status().checkpointIndex
        }
        #expect(checkpointIndex > pinned, "no checkpoint after the backup was cut off (still at \(pinned))")
        // And a backup can be taken again.
        let result = try runClusdb(["--cluster", server.endpoint, "backup", dir.file("backup")])
        #expect(result.status == 0, "\(result.stderr)")
    }

    @Test("1,000 idle connections and 100 clients dripping a body leave the node serving others")
    func idleAndDrippingClients() async throws {
        raiseOpenFileLimit()
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        // Timeouts far away, so every connection of this test stays open throughout.
        let server = try ServerProcess(
            dataDirectory: dir.file("data"),
            environment: ["CLUSDB_SERVER_LIMITS": "connectionIdleSeconds=3600,requestHeadSeconds=3600,requestBodySeconds=3600"])
        defer { server.stop() }
        let pid = server.process.processIdentifier
        let startRSS = residentKilobytes(of: pid) ?? -1

        // Idle keep-alive connections: each asked once, then sits.
        var idle: [TestSocket] = []
        for _ in 0..<1_000 {
            let socket = try TestSocket(port: server.port)
            socket.send(TestSocket.status)
            #expect(socket.answer()?.status == 200)
            idle.append(socket)
        }
        // Dripping clients: a head announcing 1,000 bytes of body, then one byte at a time.
        var dripping: [TestSocket] = []
        for _ in 0..<100 {
            let socket = try TestSocket(port: server.port)
            socket.send(
                "POST /v1/registry/set-value HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
            dripping.append(socket)
        }
        let cluster = try await openCluster(server.endpoint)
        defer { cluster.close() }
        // The normal client's rounds pace the drip (one byte per dripping client per round), so
        // nothing here waits for time to pass.
        for round in 0..<50 {
            for socket in dripping { #expect(socket.send(" ")) }
            try await cluster.setValue(key: "Busy", name: "v", value: .dword(UInt32(round)), createKey: true)
            #expect(try await cluster.queryValue(key: "Busy", name: "v") == .dword(UInt32(round)))
        }
        #expect(idle.allSatisfy { $0.isOpen }, "an idle connection was closed")
        #expect(dripping.allSatisfy { $0.isOpen }, "a dripping connection was closed")
        let loadedRSS = residentKilobytes(of: pid) ?? -1
        print(
            "clusdb serve VmRSS: \(startRSS) KiB at start, \(loadedRSS) KiB with 1,000 idle connections and 100 dripping bodies open")
    }

    @Test("Past connectionsMax a connection is answered 503 ERROR_BUSY naming the limit and closed")
    func connectionCap() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let server = try ServerProcess(dataDirectory: dir.file("data"), environment: ["CLUSDB_SERVER_LIMITS": "connectionsMax=4"])
        defer { server.stop() }
        var held: [TestSocket] = []
        for _ in 0..<4 {
            let socket = try TestSocket(port: server.port)
            socket.send(TestSocket.status)
            #expect(socket.answer()?.status == 200)
            held.append(socket)
        }
        let extra = try TestSocket(port: server.port)
        let refusal = extra.answer()
        #expect(refusal?.status == 503)
        #expect(Self.error(refusal)?.code == .busy)
        #expect(Self.error(refusal)?.message.contains("connectionsMax") == true, "\(String(describing: Self.error(refusal)))")
        #expect(refusal?.headers["connection"] == "close")
        #expect(extra.waitForClose() == .closed)
        // A connection closes; once the node has seen it, a new one is served.
        held.removeFirst()
        var served = false
        for _ in 0..<100_000 where !served {
            let socket = try TestSocket(port: server.port)
            socket.send(TestSocket.status)
            served = socket.answer()?.status == 200
        }
        #expect(served)
    }

    @Test("Past requestsInFlightMax and requestBytesBufferedMax requests are answered 503 ERROR_BUSY naming the limit")
    func requestCaps() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let server = try ServerProcess(
            dataDirectory: dir.file("data"), environment: ["CLUSDB_SERVER_LIMITS": "requestsInFlightMax=1,requestBytesBufferedMax=1000"])
        defer { server.stop() }

        // One request in flight: its body is not complete.
        let body = Self.setValueBody("K", 7)
        let request = Array(TestSocket.post("registry/set-value", body).utf8)
        var holder = try TestSocket(port: server.port)
        holder.send(Array(request.dropLast(10)))
        let other = try TestSocket(port: server.port)
        var refusal: TestSocket.Answer?
        for _ in 0..<100_000 where refusal == nil {
            other.send(TestSocket.status)
            guard let answer = other.answer() else { break }
            if answer.status == 503 {
                refusal = answer
            } else if holder.hasBytesWaiting {
                // The holder's head reached the node while this status request was in flight,
                // and was refused itself: hold the slot again.
                holder = try TestSocket(port: server.port)
                holder.send(Array(request.dropLast(10)))
            }
        }
        #expect(Self.error(refusal)?.code == .busy)
        #expect(Self.error(refusal)?.message.contains("requestsInFlightMax") == true, "\(String(describing: Self.error(refusal)))")
        // The held request completes and is answered; its slot is free before its answer leaves,
        // and the refused client's connection is still usable.
        holder.send(Array(request.suffix(10)))
        #expect(holder.answer()?.status == 200)
        other.send(TestSocket.status)
        #expect(other.answer()?.status == 200)

        // A declared body that does not fit into the buffered-bytes budget.
        let large = Self.setValueBody("K", 8) + String(repeating: " ", count: 2_000)
        other.send(TestSocket.post("registry/set-value", large))
        let tooMuch = other.answer()
        #expect(tooMuch?.status == 503)
        #expect(Self.error(tooMuch)?.code == .busy)
        #expect(Self.error(tooMuch)?.message.contains("requestBytesBufferedMax") == true, "\(String(describing: Self.error(tooMuch)))")
        // Its body was dropped, not taken for a request; the connection goes on.
        other.send(TestSocket.post("registry/query-value", #"{"key":"K","name":"v"}"#))
        let query = other.answer()
        #expect(query?.status == 200)
        #expect(query.map { String(decoding: $0.body, as: UTF8.self).contains("7") } == true)

        // A body without a declared length that outgrows the budget closes its connection.
        let chunked = try TestSocket(port: server.port)
        chunked.send(
            "POST /v1/registry/set-value HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n5dc\r\n"
                + String(repeating: " ", count: 1_500) + "\r\n")
        #expect(chunked.waitForClose() == .closed)
    }

    @Test("Body caps: 16 MiB for a normal request (ERROR_INVALID_PARAMETER naming it), an import of 100,000 values is one batch")
    func bodyCaps() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let server = try ServerProcess(dataDirectory: dir.file("data"))
        defer { server.stop() }
        let socket = try TestSocket(port: server.port)
        let oversized = Self.setValueBody("K", 1) + String(repeating: " ", count: Limits.requestBodyMaxBytes)
        socket.send(TestSocket.post("registry/set-value", oversized))
        let answer = socket.answer()
        #expect(answer?.status == 400)
        #expect(Self.error(answer)?.code == .invalidParameter)
        #expect(Self.error(answer)?.message.contains("requestBodyMaxBytes") == true, "\(String(describing: Self.error(answer)))")

        // 100,000 values of 200 characters: an import body far over 16 MiB, still one batch.
        var values: [String] = []
        let data = String(repeating: "x", count: 200)
        for index in 0..<100_000 { values.append(#""v\#(index)":{"type":"REG_SZ","data":"\#(data)"}"#) }
        let tree = #"{"keys":{"Imported":{"keys":{},"values":{"# + values.joined(separator: ",") + "}}},\"values\":{}}"
        #expect(tree.utf8.count > Limits.requestBodyMaxBytes)
        let file = dir.file("import.json")
        try Data(tree.utf8).write(to: URL(fileURLWithPath: file))
        let imported = try runClusdb(["--cluster", server.endpoint, "reg", "import", file])
        #expect(imported.status == 0, "\(imported.stderr)")
        let value = try runClusdb(["--cluster", server.endpoint, "reg", "get", "Imported", "v99999"])
        #expect(value.stdout.contains(data), "\(value.stdout) \(value.stderr)")
    }

    @Test("Slow heads, slow bodies and idle connections are closed after their limits")
    func timeouts() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let server = try ServerProcess(
            dataDirectory: dir.file("data"),
            environment: [
                "CLUSDB_SERVER_LIMITS": "requestHeadSeconds=1,requestBodySeconds=1,connectionIdleSeconds=1",
                // Each close is logged naming its limit (idle closes at debug level).
                "CLUSDB_LOG_LEVEL": "debug",
            ])
        defer { server.stop() }
        // A head that never completes.
        let slowHead = try TestSocket(port: server.port)
        slowHead.send("POST /v1/registry/set-value HTTP/1.1\r\nHost: te")
        // A body that never completes.
        let slowBody = try TestSocket(port: server.port)
        slowBody.send(Array(TestSocket.post("registry/set-value", Self.setValueBody("K", 1)).utf8.dropLast(5)))
        // A keep-alive connection that goes idle after one answer.
        let idle = try TestSocket(port: server.port)
        idle.send(TestSocket.status)
        #expect(idle.answer()?.status == 200)

        #expect(slowHead.waitForClose() == .closed)
        #expect(slowBody.waitForClose() == .closed)
        #expect(idle.waitForClose() == .closed)
        let log = server.stderrText
        for line in [
            "request head was not complete within requestHeadSeconds", "request body was not complete in time (requestBodySeconds",
            "idle for connectionIdleSeconds",
        ] {
            #expect(log.contains(line), "the log has no \"\(line)\"")
        }
        // Nothing of the unfinished write was applied, and the node serves the next client.
        let fresh = try TestSocket(port: server.port)
        fresh.send(TestSocket.post("registry/query-value", #"{"key":"K","name":"v"}"#))
        #expect(Self.error(fresh.answer())?.code == .fileNotFound)
    }

    @Test("ClusAPI sends a request again, once, when the node closed its pooled connection for idleness")
    func clientRetriesAnIdleClosedConnection() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let server = try ServerProcess(
            dataDirectory: dir.file("data"),
            environment: ["CLUSDB_SERVER_LIMITS": "connectionIdleSeconds=1", "CLUSDB_LOG_LEVEL": "debug"])
        defer { server.stop() }
        let cluster = try await openCluster(server.endpoint)
        defer { cluster.close() }
        try await cluster.setValue(key: "Idle", name: "first", value: .dword(1), createKey: true)
        // The connection the write used goes back to the client's pool; the node closes it.
        let closes = { server.stderrText.components(separatedBy: "idle for connectionIdleSeconds").count - 1 }
        try await waitUntil("the node closes the idle connection") { closes() >= 1 }
        try await cluster.setValue(key: "Idle", name: "second", value: .dword(2), createKey: true)
        #expect(try await cluster.queryValue(key: "Idle", name: "first") == .dword(1))
        #expect(try await cluster.queryValue(key: "Idle", name: "second") == .dword(2))
    }
}
