import ClusDBModel
import ClusDBTestSupport
import Foundation
import Testing

@Suite("clusdb command line against a live node", .serialized)
struct CommandLineTests {
    @Test("reg set/get/ls/rm/export/import work and keep the documented forms")
    func registryCommands() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let server = try ServerProcess(dataDirectory: dir.file("data"))
        defer { server.stop() }
        let c = ["--cluster", server.endpoint]
        func ok(_ args: [String], stdin: Data? = nil) throws -> String {
            let result = try runClusdb(c + args, stdin: stdin)
            #expect(result.status == 0, "clusdb \(args): \(result.stderr)")
            return result.stdout
        }
        _ = try ok(["reg", "set", #"Resources\Web"#, "Port", "REG_DWORD", "0x1F90"])
        _ = try ok(["reg", "set", #"resources\WEB"#, "Names", "REG_MULTI_SZ", #"["a","b c"]"#])
        _ = try ok(["reg", "set", #"Resources\Web"#, "", "REG_SZ", "default text"])
        _ = try ok(["reg", "set", #"Resources\Web\Deep"#, "Blob", "REG_BINARY", "DEADbeef"])
        _ = try ok(["reg", "set", "Quorum", "Big", "REG_QWORD", "18446744073709551615"])
        _ = try ok(["reg", "set", "Quorum", "Path", "REG_EXPAND_SZ", "%ROOT%/x"])
        _ = try ok(["reg", "set", "Quorum", "Nothing", "REG_NONE", ""])
        #expect(try ok(["reg", "get", #"Resources\Web"#, "Port"]) == "8080\n")
        #expect(try ok(["reg", "get", #"Resources\Web"#, "names"]) == "[\"a\",\"b c\"]\n")
        let value = try JSONDecoder().decode(NamedValue.self, from: Data(try ok(["reg", "get", #"Resources\Web"#, "Port", "--json"]).utf8))
        #expect(value.value == .dword(8080))
        #expect(try ok(["reg", "get", #"Resources\Web"#]) == "(default)\tREG_SZ\tdefault text\nNames\tREG_MULTI_SZ\t[\"a\",\"b c\"]\nPort\tREG_DWORD\t8080\n")
        #expect(try ok(["reg", "ls", "Resources"]) == "Web\\\n")
        let listing = try JSONDecoder().decode(KeyListing.self, from: Data(try ok(["reg", "ls", #"Resources\Web"#, "--json"]).utf8))
        #expect(listing.keys == ["Deep"])
        #expect(listing.values.map(\.name) == ["", "Names", "Port"])

        // Export, wipe, import: the same bytes come back.
        let export = try ok(["reg", "export"])
        let tree = try ExportedKey(jsonBytes: Array(export.utf8))
        #expect(tree.valueCount == 7)
        _ = try ok(["reg", "rm", "Resources", "--recursive"])
        _ = try ok(["reg", "rm", "Quorum", "--recursive"])
        #expect(try ok(["reg", "export"]) == "{\n  \"keys\": {},\n  \"values\": {}\n}\n")
        let file = dir.file("export.json")
        try export.write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try ok(["reg", "import", file]).hasPrefix("imported 4 keys and 7 values at index "))
        #expect(try ok(["reg", "export"]) == export)
        #expect(try ok(["reg", "export", #"Resources\Web\Deep"#]).contains("\"deadbeef\""))
        // Import from stdin below a key.
        _ = try ok(["reg", "import", "-", "--key", "Copy"], stdin: Data(export.utf8))
        #expect(try ok(["reg", "get", #"Copy\Resources\Web"#, "Port"]) == "8080\n")

        // Deleting values and leaf keys.
        _ = try ok(["reg", "rm", #"Resources\Web"#, "Port"])
        _ = try ok(["reg", "rm", #"Resources\Web\Deep"#])
        #expect(try ok(["reg", "ls", #"Resources\Web"#]) == "(default)\tREG_SZ\nNames\tREG_MULTI_SZ\n")
    }

    @Test("Failures print one line 'clusdb: ERROR_NAME (code): message', exit 1, and change nothing")
    func errors() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let server = try ServerProcess(dataDirectory: dir.file("data"))
        defer { server.stop() }
        let c = ["--cluster", server.endpoint]
        _ = try runClusdb(c + ["reg", "set", #"A\B"#, "v", "REG_SZ", "x"])
        let before = try runClusdb(c + ["reg", "export"]).stdout
        let cases: [([String], String)] = [
            (["reg", "get", "A", "missing"], "ERROR_FILE_NOT_FOUND (2)"),
            (["reg", "get", "Nope"], "ERROR_FILE_NOT_FOUND (2)"),
            (["reg", "rm", "A"], "ERROR_ACCESS_DENIED (5)"),
            (["reg", "rm", #"A\B"#, "missing"], "ERROR_FILE_NOT_FOUND (2)"),
            (["reg", "rm", "Nope"], "ERROR_FILE_NOT_FOUND (2)"),
            (["reg", "set", #"\A"#, "v", "REG_SZ", "x"], "ERROR_INVALID_PARAMETER (87)"),
            (["reg", "set", "A", "v", "REG_DWORD", "4294967296"], "ERROR_INVALID_PARAMETER (87)"),
            (["reg", "set", "A", "v", "REG_LINK", "x"], "ERROR_INVALID_PARAMETER (87)"),
            (["reg", "set", "A", "v", "REG_BINARY", "abc"], "ERROR_INVALID_PARAMETER (87)"),
            (["reg", "set", "A", "v", "REG_MULTI_SZ", #"["a",""]"#], "ERROR_INVALID_PARAMETER (87)"),
            (["reg", "import", dir.file("no-such-file.json")], "ERROR_FILE_NOT_FOUND (2)"),
        ]
        for (args, expected) in cases {
            let result = try runClusdb(c + args)
            #expect(result.status == 1, "\(args)")
            #expect(result.stderr.hasPrefix("clusdb: \(expected): "), "\(args): \(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1, "\(args): \(result.stderr)")
        }
        let badImport = dir.file("bad.json")
        try #"{"values": {"a": {"type": "REG_DWORD", "data": 1}, "A": {"type": "REG_DWORD", "data": 2}}}"#.write(toFile: badImport, atomically: true, encoding: .utf8)
        let imported = try runClusdb(c + ["reg", "import", badImport])
        #expect(imported.status == 1 && imported.stderr.contains("ERROR_INVALID_PARAMETER (87)"))
        #expect(try runClusdb(c + ["reg", "export"]).stdout == before)

        // Usage errors exit 2 with the same one-line form.
        for args in [["reg", "set", "A"], ["reg", "bogus"], ["--no-such-flag"]] {
            let result = try runClusdb(c + args)
            #expect(result.status == 2, "\(args)")
            #expect(result.stderr.hasPrefix("clusdb: ERROR_INVALID_PARAMETER (87): "), "\(args): \(result.stderr)")
        }
        // Nobody listening: ERROR_CLUSTER_NODE_DOWN.
        let down = try runClusdb(["--cluster", "127.0.0.1:1", "status"])
        #expect(down.status == 1 && down.stderr.hasPrefix("clusdb: ERROR_CLUSTER_NODE_DOWN (5050): "))
    }

    @Test("status --json has the fixed shape")
    func status() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let server = try ServerProcess(dataDirectory: dir.file("data"), extraArguments: ["--name", "alpha", "--cluster-name", "prod"])
        defer { server.stop() }
        _ = try runClusdb(["--cluster", server.endpoint, "reg", "set", "K", "v", "REG_DWORD", "1"])
        let result = try runClusdb(["--cluster", server.endpoint, "status", "--json"])
        #expect(result.status == 0)
        let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        let cluster = json?["cluster"] as? [String: Any]
        #expect(cluster?["name"] as? String == "prod")
        #expect((cluster?["id"] as? String)?.count == 36)
        #expect(json?["quorumOwner"] as? String == "alpha")
        // A new cluster starts in term 1; its node campaigns into term 2, whose no-op is index 1.
        #expect(json?["term"] as? Int == 2)
        #expect(json?["commitIndex"] as? Int == 2)
        // What ClusAPI reads before it sends writes in client sessions (a member beyond the fixed shape).
        #expect(json?["clientSessions"] as? Bool == true)
        let members = json?["members"] as? [[String: Any]]
        #expect(members?.count == 1)
        let member = members?.first
        for field in ["name", "clientAddr", "peerAddr", "role", "appliedIndex", "reachable"] {
            #expect(member?[field] != nil, "member field \(field)")
        }
        #expect(member?["role"] as? String == "leader")
        #expect(member?["appliedIndex"] as? Int == 2)
    }

    @Test("Clusters file: a registered name opens; endpoints of another cluster are refused with 5893")
    func clustersFile() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let server = try ServerProcess(dataDirectory: dir.file("data"), extraArguments: ["--cluster-name", "prod"])
        defer { server.stop() }
        let file = dir.file("clusters.json")
        try """
            {"clusters": {"prod": {"endpoints": ["\(server.endpoint)"]}, "staging": {"endpoints": ["\(server.endpoint)"]}}}
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let env = ["CLUSDB_CLUSTERS": file]
        #expect(try runClusdb(["--cluster", "prod", "status"], environment: env).status == 0)
        let wrong = try runClusdb(["--cluster", "staging", "status"], environment: env)
        #expect(wrong.status == 1 && wrong.stderr.hasPrefix("clusdb: ERROR_CLUSTER_INSTANCE_ID_MISMATCH (5893): "))
        let unknown = try runClusdb(["--cluster", "nope", "status"], environment: env)
        #expect(unknown.status == 1 && unknown.stderr.contains("ERROR_INVALID_PARAMETER (87)"))
        // $CLUSDB_CLUSTER is the default cluster.
        #expect(try runClusdb(["status"], environment: env.merging(["CLUSDB_CLUSTER": "prod"]) { $1 }).status == 0)
    }

    @Test("serve refuses a data directory in use and a taken port; SIGTERM stops it cleanly")
    func serveErrors() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let server = try ServerProcess(dataDirectory: dir.file("data"))
        _ = try runClusdb(["--cluster", server.endpoint, "reg", "set", "K", "v", "REG_DWORD", "7"])
        let sameDirectory = try runClusdb(["serve", "--data-dir", dir.file("data"), "--client-addr", "127.0.0.1:0"])
        #expect(sameDirectory.status == 1)
        #expect(sameDirectory.stderr.contains("clusdb: ERROR_SHARING_VIOLATION (32): "))
        let samePort = try runClusdb(["serve", "--data-dir", dir.file("other"), "--client-addr", server.endpoint])
        #expect(samePort.status == 1)
        #expect(samePort.stderr.contains("clusdb: ERROR_ADDRESS_ALREADY_ASSOCIATED (1227): "))
        // The port is bound first: nothing was created and the node never said it was ready.
        #expect(!FileManager.default.fileExists(atPath: dir.file("other")), "serve left \(dir.file("other")) behind")
        #expect(!samePort.stderr.contains("node ready"), "\(samePort.stderr)")
        #expect(samePort.stdout.isEmpty, "\(samePort.stdout)")
        // An existing (empty) data directory is left as it was.
        try FileManager.default.createDirectory(atPath: dir.file("kept"), withIntermediateDirectories: false)
        let kept = try runClusdb(["serve", "--data-dir", dir.file("kept"), "--client-addr", server.endpoint])
        #expect(kept.status == 1 && !kept.stderr.contains("node ready"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.file("kept")).isEmpty)
        let multi = try runClusdb(["serve", "--data-dir", dir.file("third"), "--initial-cluster", "node1=127.0.0.1:1,node2=127.0.0.1:2"])
        #expect(multi.status == 1 && multi.stderr.contains("ERROR_CALL_NOT_IMPLEMENTED (120)"))
        #expect(server.stop(signal: SIGTERM) == 0)
        let again = try ServerProcess(dataDirectory: dir.file("data"))
        defer { again.stop() }
        #expect(try runClusdb(["--cluster", again.endpoint, "reg", "get", "K", "v"]).stdout == "7\n")
        // Files are private to the owner.
        for name in ["hive.sqlite", "node.json", "quorum"] {
            let attributes = try FileManager.default.attributesOfItem(atPath: dir.file("data/\(name)"))
            let mode = (attributes[.posixPermissions] as? Int ?? 0) & 0o077
            #expect(mode == 0, "\(name) is readable by others")
        }
    }
}
