import ClusDBModel
import Foundation

/// How a cluster name (`openCluster(_:)`, `--cluster NAME`) turns into endpoints:
///
/// - nil or empty: `$CLUSDB_CLUSTER` when set (resolved the same way), else `127.0.0.1:7400`;
/// - a comma-separated list of `host:port`;
/// - a name registered in the clusters file (`$CLUSDB_CLUSTERS`, default
///   `~/.config/clusdb/clusters.json`): `{"clusters": {"NAME": {"endpoints": ["host:port", ...],
///   "id": "optional cluster id"}}}`. The service must then report that cluster name (and id).
public struct ClusterEndpoints: Sendable, Equatable {
    /// The endpoints, in the order they are tried.
    public var endpoints: [String]
    /// The cluster name the endpoints must report (names from the clusters file only).
    public var expectedName: String?
    /// The cluster id the endpoints must report, when the clusters file gives one.
    public var expectedID: String?

    /// The local default endpoint.
    public static let localDefault = "127.0.0.1:7400"

    /// Resolves a cluster name.
    /// - Throws: `ERROR_INVALID_PARAMETER` for a name that is neither endpoints nor registered.
    public static func resolve(
        _ name: String?, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ClusterError) -> ClusterEndpoints {
        let trimmed = name?.trimmingCharacters(in: .whitespaces) ?? ""
        if trimmed.isEmpty {
            if let fromEnvironment = environment["CLUSDB_CLUSTER"], !fromEnvironment.isEmpty {
                var env = environment
                env["CLUSDB_CLUSTER"] = nil
                return try resolve(fromEnvironment, environment: env)
            }
            return ClusterEndpoints(endpoints: [localDefault], expectedName: nil, expectedID: nil)
        }
        let parts = trimmed.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        if parts.allSatisfy(isEndpoint) {
            return ClusterEndpoints(endpoints: parts, expectedName: nil, expectedID: nil)
        }
        let file = environment["CLUSDB_CLUSTERS"]
            ?? ((environment["HOME"] ?? NSHomeDirectory()) + "/.config/clusdb/clusters.json")
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ClusterError(
                .invalidParameter, "\"\(trimmed)\" is not a list of host:port endpoints and there is no clusters file at \(file)")
        }
        let registry: ClustersFile
        do {
            registry = try JSONDecoder().decode(ClustersFile.self, from: data)
        } catch {
            throw ClusterError(.invalidParameter, "clusters file \(file) is not valid: \(error)")
        }
        guard let entry = registry.clusters[trimmed] else {
            throw ClusterError(.invalidParameter, "no cluster named \"\(trimmed)\" in \(file)")
        }
        guard !entry.endpoints.isEmpty, entry.endpoints.allSatisfy(isEndpoint) else {
            throw ClusterError(.invalidParameter, "cluster \"\(trimmed)\" in \(file) has no valid host:port endpoints")
        }
        return ClusterEndpoints(endpoints: entry.endpoints, expectedName: trimmed, expectedID: entry.id)
    }

    /// True for `host:port` with a port from 1 to 65535.
    static func isEndpoint(_ text: String) -> Bool {
        guard let colon = text.lastIndex(of: ":"), colon != text.startIndex,
            let port = Int(text[text.index(after: colon)...])
        else { return false }
        return (1...65535).contains(port) && !text[..<colon].contains(" ")
    }

    private struct ClustersFile: Decodable {
        var clusters: [String: Entry]
        struct Entry: Decodable {
            var endpoints: [String]
            var id: String?
        }
    }
}
