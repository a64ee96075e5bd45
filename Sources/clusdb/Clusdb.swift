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
        abstract: "ClusDB: a replicated cluster configuration database with verifiable backups.",
        version: ProductVersion.current,
        subcommands: [ServeCommand.self, RegCommand.self, BackupCommand.self, RestoreCommand.self, StatusCommand.self])

    @Option(name: .long, help: "The cluster: host:port[,host:port...] or a registered name (default: $CLUSDB_CLUSTER or 127.0.0.1:7400).")
    var cluster: String?

    static func main() async {
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
}
