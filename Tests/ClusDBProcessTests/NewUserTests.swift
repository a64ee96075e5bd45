import ClusAPI
import ClusDBModel
import ClusDBTestSupport
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

/// Goal: what a new user meets first (issue 9) reads right: bad input is refused with one line
/// that says what and where and changes nothing, data may come from stdin or a file, progress
/// shows only on a terminal, `serve` on a taken port leaves nothing behind, and `--help` claims
/// nothing untrue. Method: real `clusdb` processes against a live node, comparing `reg export`
/// before and after every refusal.
@Suite("What a new user meets", .serialized)
struct NewUserTests {
    /// Expects one error line with `code`, the exit status, and every fragment in the message.
    static func expectRefusal(
        _ result: CommandResult, _ code: String, status: Int32 = 1, _ fragments: [String] = [], _ what: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(result.status == status, "\(what): exit \(result.status), \(result.stderr)", sourceLocation: sourceLocation)
        #expect(result.stderr.hasPrefix("clusdb: \(code): "), "\(what): \(result.stderr)", sourceLocation: sourceLocation)
        #expect(result.stderr.split(separator: "\n").count == 1, "\(what): \(result.stderr)", sourceLocation: sourceLocation)
        for fragment in fragments {
            #expect(result.stderr.contains(fragment), "\(what): \(result.stderr) lacks \(fragment)", sourceLocation: sourceLocation)
        }
        for word in ["DecodingError", "dataCorrupted", "Expected to decode", "CodingKeys", "codingPath", "UInt32", "not valid JSON"] {
            #expect(!result.stderr.contains(word), "\(what): \(result.stderr)", sourceLocation: sourceLocation)
        }
    }

    @Test("Invalid UTF-8 in arguments, import files and request bodies is refused with 87, naming where; nothing changes")
    func invalidUTF8() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let server = try ServerProcess(dataDirectory: dir.file("data"))
        defer { server.stop() }
        let endpoint = server.endpoint
        _ = try runClusdb(["--cluster", endpoint, "reg", "set", "K", "v", "REG_SZ", "x"])
        let before = try runClusdb(["--cluster", endpoint, "reg", "export"]).stdout
        let cases: [(String, [String])] = [
            (#""$CLUSDB" --cluster \#(endpoint) reg set "$(printf 'K\377')" v REG_SZ x"#, ["the key path (argument 5)", "byte 0xFF"]),
            (#""$CLUSDB" --cluster \#(endpoint) reg set K "$(printf 'v\303')" REG_SZ x"#, ["the value name (argument 6)", "byte 0xC3"]),
            (#""$CLUSDB" --cluster \#(endpoint) reg set K v REG_SZ "$(printf 'a\355\240\200')""#, ["the data (argument 8)", "byte 0xED"]),
            (#""$CLUSDB" --cluster \#(endpoint) reg set K v REG_MULTI_SZ "$(printf '["\377"]')""#, ["the data (argument 8)"]),
        ]
        for (script, fragments) in cases {
            Self.expectRefusal(try runShell(script), "ERROR_INVALID_PARAMETER (87)", fragments + ["not valid UTF-8"], script)
        }
        // Text data from stdin or a file is UTF-8 too.
        let latin1 = dir.file("latin1.txt")
        try Data([0x63, 0x61, 0x66, 0xE9, 0x0A]).write(to: URL(fileURLWithPath: latin1))
        Self.expectRefusal(
            try runClusdb(["--cluster", endpoint, "reg", "set", "K", "v", "REG_SZ", "@" + latin1]), "ERROR_INVALID_PARAMETER (87)",
            ["file \(latin1) is not valid UTF-8", "byte 0xE9 at byte offset 3"], "@file")
        Self.expectRefusal(
            try runClusdb(["--cluster", endpoint, "reg", "set", "K", "v", "REG_SZ", "-"], stdin: Data([0x61, 0xFF])),
            "ERROR_INVALID_PARAMETER (87)", ["standard input is not valid UTF-8"], "stdin")
        // An import file: the file and the member are named.
        let file = dir.file("bad.json")
        try Data(Array(#"{"keys": {"Web": {"values": {"Name": {"type": "REG_SZ", "data": "caf"#.utf8) + [0xE9] + Array(#""}}}}}"#.utf8))
            .write(to: URL(fileURLWithPath: file))
        Self.expectRefusal(
            try runClusdb(["--cluster", endpoint, "reg", "import", file]), "ERROR_INVALID_PARAMETER (87)",
            ["import file \(file), member keys.Web.values.Name.data", "not valid UTF-8", "byte 0xE9"], "import")
        // Raw HTTP: both the event-loop fast path and the router refuse, naming the member.
        let bodies: [(String, [UInt8], String)] = [
            ("registry/set-value", Array(#"{"key": "K", "name": "v"#.utf8) + [0xFF] + Array(#"", "type": "REG_SZ", "data": "x"}"#.utf8), "member name"),
            ("registry/set-value", Array(#"{"key": "K", "name": "v", "type": "REG_SZ", "data": "x"#.utf8) + [0xC0, 0xAF] + Array(#""}"#.utf8), "member data"),
            ("registry/set-value", Array(#"{"key": "K", "name": "v", "type": "REG_SZ", "data": "\uD800"}"#.utf8), "member data"),
            ("registry/create-key", Array(#"{"key": "K\\"#.utf8) + [0xFE] + Array(#""}"#.utf8), "member key"),
            ("registry/batch", Array(#"{"key": "K", "commands": [{"command": "setValue", "name": "n"#.utf8) + [0x80]
                + Array(#"", "type": "REG_SZ", "data": "x"}]}"#.utf8), "member commands[0].name"),
        ]
        for (path, body, member) in bodies {
            var request = URLRequest(url: try #require(URL(string: "http://\(endpoint)/v1/\(path)")))
            request.httpMethod = "POST"
            request.httpBody = Data(body)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            let (data, response) = try await URLSession.shared.data(for: request)
            #expect((response as? HTTPURLResponse)?.statusCode == 400, "\(path) \(member)")
            let answer = try? JSONDecoder().decode(ClientProtocol.ErrorResponse.self, from: data)
            #expect(answer?.clusterError.code == .invalidParameter, "\(path) \(member): \(String(decoding: data, as: UTF8.self))")
            let message = answer?.clusterError.message ?? ""
            #expect(message.contains(member) && message.contains("the request body"), "\(path): \(message)")
        }
        #expect(try runClusdb(["--cluster", endpoint, "reg", "export"]).stdout == before)
    }

    @Test("Negative and malformed numbers say what is wrong with the number, and where")
    func numbers() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let server = try ServerProcess(dataDirectory: dir.file("data"))
        defer { server.stop() }
        let c = ["--cluster", server.endpoint]
        _ = try runClusdb(c + ["reg", "set", "K", "v", "REG_SZ", "x"])
        let before = try runClusdb(c + ["reg", "export"]).stdout
        let cases: [([String], [String])] = [
            (["REG_DWORD", "-1"], ["REG_DWORD data \"-1\" is negative", "from 0 to 4294967295, decimal or 0x-hex"]),
            (["REG_QWORD", "-1"], ["REG_QWORD data \"-1\" is negative", "from 0 to 18446744073709551615"]),
            (["REG_DWORD", "4294967296"], ["is larger than 4294967295"]),
            (["REG_QWORD", "0x1FFFFFFFFFFFFFFFF"], ["is larger than 18446744073709551615"]),
            (["REG_DWORD", "0x"], ["no hex digits after 0x"]),
            (["REG_DWORD", "12x"], ["\"x\" at position 3"]),
            (["REG_BINARY", "0g"], ["\"g\" at position 2, which is not a hex digit"]),
            (["REG_BINARY", "abc"], ["3 hex digits; it needs an even number"]),
        ]
        for (args, fragments) in cases {
            Self.expectRefusal(try runClusdb(c + ["reg", "set", "K", "n"] + args), "ERROR_INVALID_PARAMETER (87)", fragments, "\(args)")
        }
        // Data that starts with '-' is data, not an option.
        #expect(try runClusdb(c + ["reg", "set", "K", "dash", "REG_SZ", "-x"]).status == 0)
        #expect(try runClusdb(c + ["reg", "get", "K", "dash"]).stdout == "-x\n")
        #expect(try runClusdb(c + ["reg", "set", "K", "dash", "REG_SZ", "--", "-y"]).status == 0)
        #expect(try runClusdb(c + ["reg", "get", "K", "dash"]).stdout == "-y\n")
        _ = try runClusdb(c + ["reg", "rm", "K", "dash"])
        // An import with DWORD data -5: the number and the member, not "not valid JSON".
        let file = dir.file("negative.json")
        try #"{"keys": {"Web": {"values": {"Port": {"type": "REG_DWORD", "data": -5}}}}}"#.write(toFile: file, atomically: true, encoding: .utf8)
        Self.expectRefusal(
            try runClusdb(c + ["reg", "import", file]), "ERROR_INVALID_PARAMETER (87)",
            ["import file \(file), member keys.Web.values.Port.data: REG_DWORD data \"-5\" is negative"], "import -5")
        try #"{"keys": {"Web": {"values": {"Port": {"type": "REG_DWORD", "data": "8080"}}}}}"#.write(toFile: file, atomically: true, encoding: .utf8)
        Self.expectRefusal(
            try runClusdb(c + ["reg", "import", file]), "ERROR_INVALID_PARAMETER (87)",
            ["member keys.Web.values.Port.data: REG_DWORD data must be a number"], "import string")
        #expect(try runClusdb(c + ["reg", "export"]).stdout == before)
        // A clusters file with a bad member names the file and the member.
        let clusters = dir.file("clusters.json")
        try #"{"clusters": {"prod": {"endpoints": "127.0.0.1:1"}}}"#.write(toFile: clusters, atomically: true, encoding: .utf8)
        Self.expectRefusal(
            try runClusdb(["--cluster", "prod", "status"], environment: ["CLUSDB_CLUSTERS": clusters]), "ERROR_INVALID_PARAMETER (87)",
            ["clusters file \(clusters), member clusters.prod.endpoints: must be an array"], "clusters file")
        try #"{"clusters": {"prod": {"endpoints": ["127.0.0.1:1"]},}}"#.write(toFile: clusters, atomically: true, encoding: .utf8)
        Self.expectRefusal(
            try runClusdb(["--cluster", "prod", "status"], environment: ["CLUSDB_CLUSTERS": clusters]), "ERROR_INVALID_PARAMETER (87)",
            ["clusters file \(clusters)", "line 1, column"], "clusters file syntax")
    }

    @Test("reg import of a directory, verify of a non-backup, inspect of an incomplete backup say so plainly")
    func plainRefusals() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let server = try ServerProcess(dataDirectory: dir.file("data"))
        defer { server.stop() }
        let c = ["--cluster", server.endpoint]
        try FileManager.default.createDirectory(atPath: dir.file("plain"), withIntermediateDirectories: false)
        Self.expectRefusal(try runClusdb(c + ["reg", "import", dir.file("plain")]), "ERROR_DIRECTORY (267)", ["is a directory"], "import DIR")
        Self.expectRefusal(
            try runClusdb(["backup", "verify", dir.file("plain")]), "ERROR_DATABASE_BACKUP_CORRUPT (5087)",
            ["no backup: \(dir.file("plain")) has no manifest (clusbackup.manifest) and no completion marker (.clusbackup.dat)"], "verify")
        let json = try runClusdb(["backup", "verify", dir.file("plain"), "--json"])
        #expect(json.status == 1 && json.stdout.contains(#""problem":"no backup: "#), "\(json.stdout)")
        Self.expectRefusal(try runClusdb(["backup", "inspect", dir.file("plain")]), "ERROR_DATABASE_BACKUP_CORRUPT (5087)", ["no backup"], "inspect")

        // An incomplete backup: a real one whose marker is gone.
        _ = try runClusdb(c + ["reg", "set", "K", "v", "REG_DWORD", "1"])
        let backup = dir.file("backup")
        #expect(try runClusdb(c + ["backup", backup]).status == 0)
        try FileManager.default.removeItem(atPath: backup + "/.clusbackup.dat")
        let inspect = try runClusdb(["backup", "inspect", backup])
        #expect(inspect.status == 0)
        #expect(inspect.stdout.contains("complete:          no: the completion marker .clusbackup.dat is missing"), "\(inspect.stdout)")
        #expect(!inspect.stdout.contains("yes"), "\(inspect.stdout)")
        let inspectJSON = try JSONSerialization.jsonObject(with: Data(try runClusdb(["backup", "inspect", backup, "--json"]).stdout.utf8)) as? [String: Any]
        #expect(inspectJSON?["complete"] as? Bool == false)
        Self.expectRefusal(
            try runClusdb(["backup", "verify", backup]), "ERROR_DATABASE_BACKUP_CORRUPT (5087)", ["completion marker"], "verify incomplete")
    }

    @Test("reg set DATA '-' reads stdin and '@FILE' a file: raw bytes for REG_BINARY, UTF-8 text otherwise")
    func dataFromStdinAndFiles() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let server = try ServerProcess(dataDirectory: dir.file("data"))
        defer { server.stop() }
        let c = ["--cluster", server.endpoint]
        func set(_ name: String, _ type: String, _ data: String, stdin: Data? = nil) throws {
            let result = try runClusdb(c + ["reg", "set", "K", name, type, data], stdin: stdin)
            #expect(result.status == 0 && result.stdout.isEmpty && result.stderr.isEmpty, "\(name): \(result.stderr)")
        }
        func get(_ name: String) throws -> String { try runClusdb(c + ["reg", "get", "K", name]).stdout }
        // Text from stdin: one trailing newline dropped, a second one kept.
        try set("echo", "REG_SZ", "-", stdin: Data("hello\n".utf8))
        #expect(try get("echo") == "hello\n")
        try set("two", "REG_SZ", "-", stdin: Data("a\n\n".utf8))
        let two = try JSONSerialization.jsonObject(with: Data(try runClusdb(c + ["reg", "get", "K", "two", "--json"]).stdout.utf8)) as? [String: Any]
        #expect(two?["data"] as? String == "a\n")
        try set("crlf", "REG_SZ", "-", stdin: Data("dos\r\n".utf8))
        #expect(try get("crlf") == "dos\n")
        try set("number", "REG_DWORD", "-", stdin: Data("0x10\n".utf8))
        #expect(try get("number") == "16\n")
        try set("list", "REG_MULTI_SZ", "-", stdin: Data(#"["a", "b"]"#.utf8))
        #expect(try get("list") == "[\"a\",\"b\"]\n")
        // Binary from a file or stdin: the raw bytes, newline included.
        let blob = dir.file("blob.bin")
        try Data([0x00, 0x01, 0xFF, 0x0A]).write(to: URL(fileURLWithPath: blob))
        try set("blob", "REG_BINARY", "@" + blob)
        #expect(try get("blob") == "0001ff0a\n")
        try set("piped", "REG_BINARY", "-", stdin: Data([0xDE, 0xAD]))
        #expect(try get("piped") == "dead\n")
        // Text from a file.
        let text = dir.file("text.txt")
        try "C:\\Program Files\\Web\n".write(toFile: text, atomically: true, encoding: .utf8)
        try set("path", "REG_EXPAND_SZ", "@" + text)
        #expect(try get("path") == "C:\\Program Files\\Web\n")
        // Missing file, directory, bad data inside a file: refused, naming the file.
        let before = try runClusdb(c + ["reg", "export"]).stdout
        Self.expectRefusal(try runClusdb(c + ["reg", "set", "K", "x", "REG_SZ", "@" + dir.file("nope")]), "ERROR_FILE_NOT_FOUND (2)", ["nope"], "missing")
        Self.expectRefusal(try runClusdb(c + ["reg", "set", "K", "x", "REG_BINARY", "@" + dir.path]), "ERROR_DIRECTORY (267)", [], "directory")
        try "-7\n".write(toFile: text, atomically: true, encoding: .utf8)
        Self.expectRefusal(
            try runClusdb(c + ["reg", "set", "K", "x", "REG_DWORD", "@" + text]), "ERROR_INVALID_PARAMETER (87)",
            ["file \(text): REG_DWORD data \"-7\" is negative"], "number in file")
        #expect(try runClusdb(c + ["reg", "export"]).stdout == before)
    }

    @Test("Without a terminal, long commands print exactly what they printed before: no progress bytes")
    func noProgressWithoutTerminal() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let server = try ServerProcess(dataDirectory: dir.file("data"))
        defer { server.stop() }
        let c = ["--cluster", server.endpoint]
        let tree = ExportedKey(keys: [("Big", ExportedKey(values: (0..<2_000).map { ("v\($0)", RegistryValue.dword(UInt32($0))) }))])
        let file = dir.file("big.json")
        try Data(tree.jsonBytes()).write(to: URL(fileURLWithPath: file))
        let imported = try runClusdb(c + ["reg", "import", file])
        #expect(imported.status == 0 && imported.stderr.isEmpty, "\(imported.stderr)")
        #expect(imported.stdout.hasPrefix("imported 1 keys and 2000 values at index ") && imported.stdout.split(separator: "\n").count == 1)
        let backup = dir.file("backup")
        let backedUp = try runClusdb(c + ["backup", backup])
        #expect(backedUp.status == 0 && backedUp.stderr.isEmpty && !backedUp.stdout.contains("\r"), "\(backedUp.stderr)")
        let verified = try runClusdb(["backup", "verify", backup])
        #expect(verified.status == 0 && verified.stderr.isEmpty && verified.stdout.hasPrefix("ok: backup of cluster local"))
        #expect(server.stop() == 0)
        let restored = try runClusdb(["restore", backup, "--data-dir", dir.file("data"), "--dry-run"])
        #expect(restored.status == 0 && restored.stderr.isEmpty && !restored.stdout.contains("\r"), "\(restored.stderr)")
    }

    @Test("On a terminal, reg import draws a progress line on stderr and clears it", .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/script")))
    func progressOnTerminal() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let server = try ServerProcess(dataDirectory: dir.file("data"))
        defer { server.stop() }
        let file = dir.file("small.json")
        try Data(ExportedKey(values: [("v", .dword(1))]).jsonBytes()).write(to: URL(fileURLWithPath: file))
        // script(1) gives the command a pseudo-terminal; its output is what the terminal got.
        let command = "\"$CLUSDB\" --cluster \(server.endpoint) reg import \(file)"
        let onTerminal = try runShell("script -qec '\(command)' /dev/null", environment: ["TERM": "xterm"])
        #expect(onTerminal.status == 0, "\(onTerminal.stderr)")
        #expect(onTerminal.stdout.contains("\r\u{1B}[Kreading \(file) ... 0s"), "\(onTerminal.stdout)")
        #expect(onTerminal.stdout.contains("\r\u{1B}[Kimported 0 keys and 1 values at index "), "\(onTerminal.stdout)")
        // --json and a dumb terminal stay quiet.
        let verify = try runShell("script -qec '\"$CLUSDB\" backup verify \(dir.path) --json' /dev/null", environment: ["TERM": "xterm"])
        #expect(!verify.stdout.contains("\u{1B}[K"), "\(verify.stdout)")
        let dumb = try runShell("script -qec '\(command)' /dev/null", environment: ["TERM": "dumb"])
        #expect(dumb.status == 0 && !dumb.stdout.contains("\u{1B}[K"), "\(dumb.stdout)")
    }

    @Test("--help claims nothing untrue: this build is not replicated")
    func helpIsTrue() throws {
        let help = try runClusdb(["--help"])
        #expect(help.status == 0)
        #expect(!help.stdout.lowercased().contains("replicated"), "\(help.stdout)")
        #expect(help.stdout.contains("single-node"), "\(help.stdout)")
        let serve = try runClusdb(["serve", "--help"])
        #expect(!serve.stdout.contains("multi-node cluster."), "\(serve.stdout)")
    }
}
