import ArgumentParser
import ClusAPI
import ClusDBBackup
import ClusDBModel
import Foundation

/// `clusdb restore DIR --data-dir DIR [--force] [--quorum-path DIR] [--to-index N] [--dry-run]`.
struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore", abstract: "Restore a backup into a stopped node's data directory.",
        discussion: """
            The backup is verified first and nothing is touched unless it is complete and intact. The node must be
            stopped. The restore is all-or-nothing, even if it is killed; start the node afterwards and it forms the
            cluster alone from the restored database.
            """)
    @Argument(help: "The backup directory.") var backup: String
    @Option(name: .customLong("data-dir"), help: "The stopped node's data directory.") var dataDir: String
    @Flag(name: .long, help: "Replace a data directory that belongs to another cluster.") var force = false
    @Option(name: .customLong("quorum-path"), help: "Put the restored checkpoint and quorum log in this new or empty directory.")
    var quorumPath: String?
    @Option(name: .customLong("to-index"), help: "Replay the backup's quorum log only up to this index.") var toIndex: UInt64?
    @Flag(name: .customLong("dry-run"), help: "Report what would change; change nothing.") var dryRun = false
    @Flag(name: .long, help: "Print the report as JSON.") var json = false

    func run() async throws {
        let progress = ProgressLine.start(dryRun ? "checking what restoring \(backup) would change" : "restoring \(backup)", json: json)
        defer { progress?.finish() }
        let report = try await restoreClusterDatabase(
            from: backup, force: force, quorumPath: quorumPath, dataDirectory: dataDir, toIndex: toIndex, dryRun: dryRun)
        progress?.finish()
        if json {
            try Output.json(report)
            return
        }
        let before = report.previousIndex.map(String.init) ?? "none"
        var text = report.dryRun ? "dry run, nothing changed: " : "restored: "
        text += "cluster \(report.cluster.name) (\(report.cluster.id)), index \(before) -> \(report.restoredIndex), "
        text += "restore generation \(report.restoreGeneration), \(report.keys) keys, \(report.values) values\n"
        if let changes = report.changes {
            text += "keys:   +\(changes.keysAdded) -\(changes.keysRemoved)\n"
            text += "values: +\(changes.valuesAdded) ~\(changes.valuesChanged) -\(changes.valuesRemoved)\n"
        }
        if let previous = report.previousCluster, previous.id != report.cluster.id {
            text += "replaces cluster \(previous.name) (\(previous.id))\n"
        }
        Output.write(Data(text.utf8))
    }
}
