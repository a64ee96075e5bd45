import ClusAPI
import ClusDBModel
import ClusDBTestSupport
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

/// Goal: bad input over HTTP always gets a ClusDB error body with the right code and changes
/// nothing; batches report the failing command. Method: raw HTTP requests against a live node,
/// comparing `reg export` before and after.
@Suite("HTTP API: bad input", .serialized)
struct HTTPAPITests {
    static func post(_ endpoint: String, _ path: String, _ body: String) async throws -> (Int, ClientProtocol.ErrorResponse?) {
        var request = URLRequest(url: URL(string: "http://\(endpoint)/v1/\(path)")!)
        request.httpMethod = "POST"
        request.httpBody = Data(body.utf8)
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        let (data, response) = try await URLSession.shared.data(for: request)
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        return (status, try? JSONDecoder().decode(ClientProtocol.ErrorResponse.self, from: data))
    }

    @Test("Malformed requests get a ClusDB error and change nothing")
    func badInput() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let server = try ServerProcess(dataDirectory: dir.file("data"))
        defer { server.stop() }
        let cluster = try await openCluster(server.endpoint)
        defer { cluster.close() }
        try await cluster.setValue(key: #"R\K"#, name: "v", value: .dword(1), createKey: true)
        let before = try await cluster.exportJSON()
        let cases: [(String, String, Win32Error, Int?)] = [
            ("registry/set-value", "{", .invalidParameter, nil),
            ("registry/set-value", #"{"key": "R", "name": "v", "type": "REG_DWORD", "data": "x"}"#, .invalidParameter, nil),
            ("registry/set-value", #"{"key": "R", "name": "v", "type": "REG_DWORD", "data": 4294967296}"#, .invalidParameter, nil),
            ("registry/set-value", #"{"key": "R", "name": "v", "type": "REG_LINK", "data": ""}"#, .invalidParameter, nil),
            ("registry/set-value", #"{"key": "R", "name": "v", "type": "REG_SZ", "data": "a\u0000b"}"#, .invalidParameter, nil),
            ("registry/set-value", #"{"key": "\\R", "name": "v", "type": "REG_SZ", "data": "x"}"#, .invalidParameter, nil),
            ("registry/set-value", #"{"key": "Missing", "name": "v", "type": "REG_SZ", "data": "x"}"#, .fileNotFound, nil),
            ("registry/delete-key", #"{"key": "R", "recursive": false}"#, .accessDenied, nil),
            ("registry/delete-key", #"{"key": "", "recursive": true}"#, .accessDenied, nil),
            ("registry/delete-value", #"{"key": "R\\K", "name": "nope"}"#, .fileNotFound, nil),
            ("registry/query-value", #"{"key": "R\\K", "name": "nope"}"#, .fileNotFound, nil),
            ("registry/batch", #"{"key": "R", "commands": [{"command": "frobnicate", "name": "x"}]}"#, .invalidFunction, nil),
            ("registry/batch", #"{"key": "Missing", "commands": [{"command": "deleteValue", "name": "x"}]}"#, .fileNotFound, -1),
            ("registry/batch", #"""
                {"key": "R", "commands": [{"command": "setValue", "name": "new", "type": "REG_DWORD", "data": 5},
                 {"command": "deleteKey", "name": "K"}, {"command": "setValue", "name": "late", "type": "REG_DWORD", "data": 6}]}
                """#, .invalidParameter, 2),
            ("registry/batch", #"{"key": "R", "commands": [{"command": "createKey", "name": "a\\\\b"}]}"#, .invalidParameter, nil),
        ]
        for (path, body, code, failedCommand) in cases {
            let (status, answer) = try await Self.post(server.endpoint, path, body)
            #expect(status != 200, "\(path) \(body)")
            #expect(answer?.clusterError.code == code, "\(path) \(body): \(String(describing: answer))")
            if let failedCommand {
                #expect(answer?.error.failedCommand == failedCommand, "\(path) \(body)")
            }
            #expect(!(answer?.error.message.isEmpty ?? true))
        }
        #expect(try await cluster.exportJSON() == before)
    }

    @Test("ClusAPI batches: all or nothing, with the failing command's index")
    func batches() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let server = try ServerProcess(dataDirectory: dir.file("data"))
        defer { server.stop() }
        let cluster = try await openCluster(server.endpoint)
        defer { cluster.close() }
        #expect(try await cluster.createKey("Root") == .createdNewKey)
        #expect(try await cluster.createKey("root") == .openedExistingKey)
        var good = RegistryBatch(root: "Root")
        try good.createKey(#"A\B"#)
        good.setValue(name: "x", value: .multiString(["1", "2"]))
        good.deleteValue(name: "absent")
        try await cluster.executeBatch(good)
        #expect(try await cluster.queryValue(key: #"Root\A\B"#, name: "x") == .multiString(["1", "2"]))
        let before = try await cluster.exportJSON()
        var bad = RegistryBatch(root: "Root")
        bad.setValue(name: "y", value: .dword(1))
        try bad.deleteKey("A")
        bad.setValue(name: "z", value: .dword(2))
        do {
            try await cluster.executeBatch(bad)
            Issue.record("a batch with a value command after deleteKey succeeded")
        } catch {
            #expect(error.code == .invalidParameter)
            #expect(error.failedCommand == 2)
        }
        #expect(try await cluster.exportJSON() == before)
        try await cluster.openKey(#"root\a"#)
        do {
            try await cluster.openKey("Nope")
            Issue.record("opened a missing key")
        } catch {
            #expect(error.code == .fileNotFound)
        }
        cluster.close()
        do {
            _ = try await cluster.status()
            Issue.record("a closed handle answered")
        } catch {
            #expect(error.code == .invalidHandle)
        }
    }

    @Test("Through the service, a read after a write's answer sees the write, from any connection")
    func readYourWrites() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let server = try ServerProcess(dataDirectory: dir.file("data"))
        defer { server.stop() }
        let writer = try await openCluster(server.endpoint)
        let reader = try await openCluster(server.endpoint)
        defer {
            writer.close()
            reader.close()
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for lane in 0..<4 {
                group.addTask {
                    for round in 0..<50 {
                        let key = "RYW\\l\(lane)"
                        try await writer.setValue(key: key, name: "v", value: .dword(UInt32(round)), createKey: true)
                        #expect(try await reader.queryValue(key: key, name: "v") == .dword(UInt32(round)))
                    }
                }
            }
            try await group.waitForAll()
        }
    }
}
