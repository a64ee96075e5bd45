import ArgumentParser
import ClusDBModel
import Foundation

/// The `clusdb` command: the service (`serve`) and the client commands of `DESIGN.md` §3.
///
/// A failing command prints one line, `clusdb: ERROR_NAME (code): message`, on stderr and exits 1;
/// a usage error prints the same form with `ERROR_INVALID_PARAMETER` and exits 2.
@main
struct Clusdb: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clusdb",
        abstract: "ClusDB: a cluster configuration database (single-node for now) with verifiable backups.",
        version: ProductVersion.current,
        subcommands: [ServeCommand.self, RegCommand.self, BackupCommand.self, RestoreCommand.self, StatusCommand.self])

    @Option(name: .long, help: "The cluster: host:port[,host:port...] or a registered name (default: $CLUSDB_CLUSTER or 127.0.0.1:7400).")
    var cluster: String?

    static func main() async {
        if let problem = invalidArgument() { Output.fail(problem) }
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as ClusterError {
            Output.fail(error)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            if let code = error as? ExitCode { Foundation.exit(code.rawValue) }
            let message = Clusdb.message(for: error).split(separator: "\n").first.map(String.init) ?? "invalid usage"
            Output.errorLine(ClusterError(.invalidParameter, "\(message) (see 'clusdb --help')"))
            Foundation.exit(2)
        }
    }

    /// The first command-line argument that is not valid UTF-8, as the error to report. Swift
    /// would hand it on with U+FFFD in place of the bad bytes, and that would be stored as if typed.
    static func invalidArgument() -> ClusterError? {
        let count = Int(CommandLine.argc)
        var arguments: [[UInt8]] = []
        for index in 0..<count {
            guard let pointer = CommandLine.unsafeArgv[index] else { break }
            arguments.append(Array(UnsafeBufferPointer(start: UnsafeRawPointer(pointer).assumingMemoryBound(to: UInt8.self), count: strlen(pointer))))
        }
        for (index, bytes) in arguments.enumerated().dropFirst() {
            guard let offset = JSONDocument.firstInvalidUTF8(in: bytes) else { continue }
            let shown = String(decoding: bytes, as: UTF8.self)
            return ClusterError(
                .invalidParameter,
                "\(role(ofArgument: index, in: arguments)) \(RegistryName.quoted(shown)) is not valid UTF-8: "
                    + "\(JSONDocument.byteName(bytes[offset])) at byte offset \(offset) is no UTF-8 character "
                    + "(names and text must be UTF-8; for bytes use REG_BINARY with hex digits or @FILE)")
        }
        return nil
    }

    /// How messages name argument `index`: its meaning for `reg set` and `reg rm`/`get`, else its position.
    static func role(ofArgument index: Int, in arguments: [[UInt8]]) -> String {
        let words = arguments.map { String(decoding: $0, as: UTF8.self) }
        if let reg = words.firstIndex(of: "reg"), reg + 1 < words.count, reg + 1 < index {
            let roles: [String: [String]] = [
                "set": ["the key path", "the value name", "the type", "the data"],
                "get": ["the key path", "the value name"], "rm": ["the key path", "the value name"],
                "ls": ["the key path"], "export": ["the key path"], "import": ["the import file name"],
            ]
            let position = index - reg - 2
            if let names = roles[words[reg + 1]], position >= 0, position < names.count {
                return "\(names[position]) (argument \(index))"
            }
        }
        return "argument \(index)"
    }
}
