import ClusDBTestSupport
import Foundation
import Synchronization
import Testing

/// The built `clusdb` binary: next to the test bundle (SwiftPM builds both into one folder), or
/// `$CLUSDB_BINARY`.
enum ClusdbBinary {
    static let path: String = {
        if let explicit = ProcessInfo.processInfo.environment["CLUSDB_BINARY"] { return explicit }
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        for _ in 0..<4 {
            url.deleteLastPathComponent()
            let candidate = url.appendingPathComponent("clusdb").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/debug/clusdb").path
    }()
}

/// The result of one `clusdb` command.
struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs `clusdb ARGS` to completion (bounded by `timeout`).
func runClusdb(_ arguments: [String], stdin: Data? = nil, environment: [String: String] = [:], timeout: Duration = .seconds(120)) throws -> CommandResult {
    try runProcess(ClusdbBinary.path, arguments, stdin: stdin, environment: environment, timeout: timeout)
}

/// Runs `/bin/sh -c SCRIPT` with `$CLUSDB` set to the binary: for arguments a `Process` cannot
/// pass (bytes that are not UTF-8) and for terminals (`script`).
func runShell(_ script: String, stdin: Data? = nil, environment: [String: String] = [:], timeout: Duration = .seconds(120)) throws -> CommandResult {
    try runProcess(
        "/bin/sh", ["-c", script], stdin: stdin, environment: environment.merging(["CLUSDB": ClusdbBinary.path]) { $1 },
        timeout: timeout)
}

/// Runs `executable ARGS` to completion (bounded by `timeout`), collecting stdout and stderr.
func runProcess(
    _ executable: String, _ arguments: [String], stdin: Data? = nil, environment: [String: String] = [:], timeout: Duration = .seconds(120)
) throws -> CommandResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    env["CLUSDB_CLUSTER"] = nil
    for (key, value) in environment { env[key] = value }
    process.environment = env
    let out = Pipe()
    let err = Pipe()
    let input = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = input
    try process.run()
    if let stdin { input.fileHandleForWriting.write(stdin) }
    try input.fileHandleForWriting.close()
    // Drain both pipes while the process runs so a large output cannot block it.
    let outData = Sink()
    let errData = Sink()
    let group = DispatchGroup()
    for (pipe, sink) in [(out, outData), (err, errData)] {
        group.enter()
        DispatchQueue.global().async {
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            sink.data.withLock { $0 = data }
            group.leave()
        }
    }
    let deadline = ContinuousClock.now + timeout
    while process.isRunning && ContinuousClock.now < deadline { usleep(5_000) }
    if process.isRunning {
        process.terminate()
        Issue.record("\(executable) \(arguments.joined(separator: " ")) timed out")
    }
    process.waitUntilExit()
    group.wait()
    return CommandResult(
        status: process.terminationStatus, stdout: String(decoding: outData.data.withLock { $0 }, as: UTF8.self),
        stderr: String(decoding: errData.data.withLock { $0 }, as: UTF8.self))
}

/// Bytes collected by a reader thread.
final class Sink: Sendable {
    let data = Mutex(Data())
}

/// A `clusdb serve` process on a free loopback port, always stopped by ``stop(signal:)`` or deinit.
final class ServerProcess {
    let process = Process()
    let dataDirectory: String
    private(set) var port = 0
    private let output = Pipe()
    private let errors: FileHandle
    private let errorsPath: String

    /// Starts `clusdb serve --data-dir DIR --client-addr 127.0.0.1:0` and waits until it listens.
    init(dataDirectory: String, extraArguments: [String] = [], environment: [String: String] = [:]) throws {
        self.dataDirectory = dataDirectory
        errorsPath = dataDirectory + ".stderr"
        FileManager.default.createFile(atPath: errorsPath, contents: nil)
        errors = try FileHandle(forWritingTo: URL(fileURLWithPath: errorsPath))
        try errors.seekToEnd()
        process.executableURL = URL(fileURLWithPath: ClusdbBinary.path)
        process.arguments = ["serve", "--data-dir", dataDirectory, "--client-addr", "127.0.0.1:0", "--peer-addr", "127.0.0.1:0"] + extraArguments
        var env = ProcessInfo.processInfo.environment
        env["CLUSDB_LOG_LEVEL"] = "warning"
        for (key, value) in environment { env[key] = value }
        process.environment = env
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        port = try waitForPort()
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// `127.0.0.1:PORT`.
    var endpoint: String { "127.0.0.1:\(port)" }

    /// What the server printed on stderr so far.
    var stderrText: String { (try? String(contentsOfFile: errorsPath, encoding: .utf8)) ?? "" }

    private func waitForPort() throws -> Int {
        let handle = output.fileHandleForReading
        var buffer = Data()
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let chunk = handle.availableData
            if chunk.isEmpty {
                if !process.isRunning { break }
                continue
            }
            buffer.append(chunk)
            let text = String(decoding: buffer, as: UTF8.self)
            if let range = text.range(of: "serving clients on 127.0.0.1:"),
                let end = text[range.upperBound...].firstIndex(of: "\n"),
                let port = Int(text[range.upperBound..<end])
            {
                return port
            }
        }
        process.waitUntilExit()
        throw ServerStartFailure(status: process.terminationStatus, stderr: stderrText)
    }

    /// Sends `signal` and waits for the process to exit; returns its exit status.
    @discardableResult
    func stop(signal: Int32 = SIGTERM) -> Int32 {
        if process.isRunning { kill(process.processIdentifier, signal) }
        process.waitUntilExit()
        return process.terminationStatus
    }
}

struct ServerStartFailure: Error, CustomStringConvertible {
    var status: Int32
    var stderr: String
    var description: String { "clusdb serve exited with \(status): \(stderr)" }
}
