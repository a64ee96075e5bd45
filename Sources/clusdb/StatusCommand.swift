import ArgumentParser
import ClusAPI
import ClusDBModel
import Foundation

/// `clusdb status [--json]`: nodes, quorum owner, indexes.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show the cluster's nodes, quorum owner and indexes.")
    @ParentCommand var root: Clusdb
    @Flag(name: .long, help: "Print JSON.") var json = false

    func run() async throws {
        let cluster = try await openCluster(root.cluster)
        defer { cluster.close() }
        let status = try await cluster.status()
        if json {
            try Output.json(status)
            return
        }
        var text = """
            cluster:        \(status.cluster.name) (\(status.cluster.id))
            quorum owner:   \(status.quorumOwner ?? "none")
            term:           \(status.term)
            commit index:   \(status.commitIndex)
            checkpoint:     \(status.checkpointIndex)
            quorum log:     \(status.quorumLogBytes) bytes
            members:

            """
        for member in status.members {
            text += "  \(member.name)\t\(member.role)\tclients \(member.clientAddr)\tpeers \(member.peerAddr)\tapplied \(member.appliedIndex)\t\(member.reachable ? "reachable" : "unreachable")\n"
        }
        Output.write(Data(text.utf8))
    }
}
