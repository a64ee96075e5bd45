import ArgumentParser
import ClusDBModel
import ClusDBNode
import ClusDBServer
import Foundation
import Logging

/// `clusdb serve`: runs a node. With no flags: a single-node cluster "local", data in
/// ./clusdb-data, clients on 127.0.0.1:7400.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Run a ClusDB node (this build runs single-node clusters; \"local\" by default).")

    @Option(name: .long, help: "This node's name.")
    var name = "node1"

    @Option(name: .customLong("cluster-name"), help: "The cluster's name for a new data directory (default: local); an existing one must match.")
    var clusterName: String?

    @Option(name: .customLong("data-dir"), help: "The data directory.")
    var dataDir = "./clusdb-data"

    @Option(name: .customLong("client-addr"), help: "HOST:PORT for the client API (port 0 picks a free port).")
    var clientAddr = "127.0.0.1:7400"

    @Option(name: .customLong("peer-addr"), help: "HOST:PORT for peer traffic (recorded; peers arrive with replication, which this build does not have yet).")
    var peerAddr = "127.0.0.1:7401"

    @Option(name: .customLong("initial-cluster"), help: "NODE=HOST:PEERPORT,... (this build runs single-node clusters: only this node may be listed).")
    var initialCluster: String?

    func run() async throws {
        let (host, port) = try ServerConfiguration.parseAddress(clientAddr)
        _ = try ServerConfiguration.parseAddress(peerAddr)
        try checkInitialCluster()
        let level = ProcessInfo.processInfo.environment["CLUSDB_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        LoggingSystem.bootstrap { label in StandardErrorLogHandler(label: label, level: level) }
        let logger = Logger(label: "clusdb")
        let node = NodeConfiguration(
            dataDirectory: dataDir, nodeName: name, clusterName: clusterName, clientAddress: clientAddr, peerAddress: peerAddr)
        var configuration = ServerConfiguration(node: node, clientHost: host, clientPort: port)
        // For tests: shrink the connection caps and timeouts (`docs/HTTP_API.md`, "Limits").
        if let overrides = ProcessInfo.processInfo.environment["CLUSDB_SERVER_LIMITS"] {
            configuration.limits = try ServerLimits(overrides: overrides)
        }
        let nodeName = name
        // ClusDBServer binds the port before it creates the data directory; should another
        // process still take the port in between, a directory this run created goes again.
        let existed = FileManager.default.fileExists(atPath: dataDir)
        do {
            try await ClusDBServer.run(configuration, logger: logger) { boundPort in
                let line = "clusdb: node \"\(nodeName)\" serving clients on \(host):\(boundPort)\n"
                FileHandle.standardOutput.write(Data(line.utf8))
            }
        } catch {
            if !existed, error.code == .addressAlreadyAssociated {
                try? FileManager.default.removeItem(atPath: dataDir)
            }
            throw error
        }
    }

    /// Multi-node clusters arrive with replication; until then only this node may be listed.
    private func checkInitialCluster() throws(ClusterError) {
        guard let initialCluster, !initialCluster.isEmpty else { return }
        let members = initialCluster.split(separator: ",").map { $0.split(separator: "=", maxSplits: 1) }
        for member in members where member.count != 2 {
            throw ClusterError(.invalidParameter, "--initial-cluster takes NODE=HOST:PEERPORT,...")
        }
        if members.count > 1 || members.first.map({ String($0[0]) }) != name {
            throw ClusterError(
                .callNotImplemented, "this build runs single-node clusters only; --initial-cluster may list only this node (\(name))")
        }
    }
}
