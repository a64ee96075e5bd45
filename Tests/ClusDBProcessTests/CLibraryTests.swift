import ClusDBTestSupport
import Foundation
import Testing

/// The C library `libclusapi.so` and `include/clusapi.h`, used as a C program would: programs
/// are built with the system C compiler and run against a live node.
@Suite("The C library clusapi", .serialized)
struct CLibraryTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    /// SwiftPM builds the shared library next to the `clusdb` binary.
    static let libraryDirectory = URL(fileURLWithPath: ClusdbBinary.path).deletingLastPathComponent().path

    /// Builds `source` into `output` with `cc`.
    static func compile(_ source: String, _ output: String) throws {
        let result = try run("/usr/bin/env", [
            "cc", "-std=c11", "-Wall", "-Werror", source, "-I", repository + "/include", "-L", libraryDirectory, "-lclusapi",
            "-Wl,-rpath," + libraryDirectory, "-o", output,
        ])
        #expect(result.status == 0, "cc \(source): \(result.stderr)")
    }

    static func run(_ program: String, _ arguments: [String], environment: [String: String] = [:]) throws -> CommandResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return CommandResult(
            status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self), stderr: String(decoding: errData, as: UTF8.self))
    }

    static let haveCompiler = FileManager.default.isExecutableFile(atPath: "/usr/bin/cc")

    @Test("examples/backup-sample.c builds with cc -lclusapi and backs up a live node", .enabled(if: haveCompiler))
    func backupSample() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let program = dir.file("backup-sample")
        try Self.compile(Self.repository + "/examples/backup-sample.c", program)
        let server = try ServerProcess(dataDirectory: dir.file("data"))
        _ = try runClusdb(["--cluster", server.endpoint, "reg", "set", #"Resources\Web"#, "Port", "REG_DWORD", "8080"])
        let backup = dir.file("backup ü")
        let result = try Self.run(program, [server.endpoint, backup])
        #expect(result.status == 0, "\(result.stdout) \(result.stderr)")
        #expect(result.stdout.contains("Done. The cluster database has been backed up to \(backup)."))
        #expect(try runClusdb(["backup", "verify", backup]).status == 0)
        // The sample's failure branch: a file where a directory belongs.
        FileManager.default.createFile(atPath: dir.file("a-file"), contents: Data())
        let failed = try Self.run(program, [server.endpoint, dir.file("a-file")])
        #expect(failed.status == 1)
        #expect(failed.stdout.contains("The operation failed (267)"))
        // OpenCluster fails: GetLastError is the reason.
        let down = try Self.run(program, ["127.0.0.1:1", backup])
        #expect(down.stdout.contains("The operation failed (5050)"))
        server.stop()
    }

    @Test("Every ClusterReg* call behaves as the Win32 documentation says", .enabled(if: haveCompiler))
    func registryCalls() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let program = dir.file("registry-calls")
        try Self.compile(Self.repository + "/Tests/CPrograms/registry-calls.c", program)
        let server = try ServerProcess(dataDirectory: dir.file("data"))
        let result = try Self.run(program, [server.endpoint])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.hasSuffix("0 failures\n"))
        #expect(!result.stdout.contains("FAIL"), "\(result.stdout)")
        server.stop()
    }

    @Test("RestoreClusterDatabase restores into the stopped local node and refuses a running one", .enabled(if: haveCompiler))
    func restore() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let program = dir.file("restore-call")
        try Self.compile(Self.repository + "/Tests/CPrograms/restore-call.c", program)
        let server = try ServerProcess(dataDirectory: dir.file("data"))
        _ = try runClusdb(["--cluster", server.endpoint, "reg", "set", "K", "v", "REG_SZ", "from C"])
        _ = try runClusdb(["--cluster", server.endpoint, "backup", dir.file("backup")])
        let running = try Self.run(program, [dir.file("backup"), "noforce"], environment: ["CLUSDB_DATA_DIR": dir.file("data")])
        #expect(running.stdout == "32\n")
        server.stop()
        let fresh = try Self.run(program, [dir.file("backup"), "noforce", ""], environment: ["CLUSDB_DATA_DIR": dir.file("restored")])
        #expect(fresh.stdout == "0\n", "\(fresh.stderr)")
        let restored = try ServerProcess(dataDirectory: dir.file("restored"))
        #expect(try runClusdb(["--cluster", restored.endpoint, "reg", "get", "K", "v"]).stdout.contains("from C"))
        restored.stop()
        unlink(dir.file("backup/.clusbackup.dat"))
        let broken = try Self.run(program, [dir.file("backup"), "force"], environment: ["CLUSDB_DATA_DIR": dir.file("other")])
        #expect(broken.stdout == "5087\n")
    }
}
