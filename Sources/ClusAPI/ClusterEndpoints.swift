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
        let entry = try clustersFileEntry(named: trimmed, bytes: Array(data), file: file)
        return ClusterEndpoints(endpoints: entry.endpoints, expectedName: trimmed, expectedID: entry.id)
    }

    /// Reads one cluster's entry from the clusters file; every problem names the file and the member.
    static func clustersFileEntry(named name: String, bytes: [UInt8], file: String) throws(ClusterError) -> (endpoints: [String], id: String?) {
        let found: (endpoints: [String], id: String?)?
        do throws(JSONDocument.Problem) {
            found = try parseEntry(named: name, bytes: bytes)
        } catch {
            throw error.error(in: "clusters file \(file)")
        }
        guard let found else { throw ClusterError(.invalidParameter, "no cluster named \"\(name)\" in \(file)") }
        return found
    }

    private static func parseEntry(named name: String, bytes: [UInt8]) throws(JSONDocument.Problem) -> (endpoints: [String], id: String?)? {
        let document = try JSONDocument.parse(bytes)
        let shape = #"{"clusters": {"NAME": {"endpoints": ["host:port", ...], "id": "optional cluster id"}}}"#
        guard case .object(let top) = document else {
            throw JSONDocument.Problem(path: "", message: "the file must hold an object \(shape), not \(document.kind)")
        }
        guard let clusters = top.first(where: { $0.name == "clusters" })?.value else {
            throw JSONDocument.Problem(path: "clusters", message: "is missing; the file holds \(shape)")
        }
        guard case .object(let entries) = clusters else {
            throw JSONDocument.Problem(path: "clusters", message: "must be an object of cluster names, not \(clusters.kind)")
        }
        guard let entry = entries.first(where: { $0.name == name })?.value else { return nil }
        let entryPath = JSONDocument.path("clusters", member: name)
        guard case .object(let members) = entry else {
            throw JSONDocument.Problem(path: entryPath, message: "must be an object {\"endpoints\": [...], \"id\": ...}, not \(entry.kind)")
        }
        var endpoints: [String] = []
        var id: String?
        for member in members {
            let memberPath = JSONDocument.path(entryPath, member: member.name)
            switch (member.name, member.value) {
            case ("endpoints", .array(let items)):
                for (index, item) in items.enumerated() {
                    guard case .string(let text) = item, isEndpoint(text) else {
                        let found = if case .string(let text) = item { "\"\(text)\"" } else { item.kind }
                        throw JSONDocument.Problem(
                            path: JSONDocument.path(memberPath, element: index),
                            message: "must be a \"host:port\" string with a port from 1 to 65535, not \(found)")
                    }
                    endpoints.append(text)
                }
            case ("endpoints", let other):
                throw JSONDocument.Problem(path: memberPath, message: "must be an array of \"host:port\" strings, not \(other.kind)")
            case ("id", .string(let text)): id = text
            case ("id", .null): id = nil
            case ("id", let other):
                throw JSONDocument.Problem(path: memberPath, message: "must be a cluster id string, not \(other.kind)")
            default:
                // Other members are left for later features (credentials); a misspelt "endpoints"
                // still fails below, as missing.
                break
            }
        }
        guard !endpoints.isEmpty else {
            throw JSONDocument.Problem(path: JSONDocument.path(entryPath, member: "endpoints"), message: "is missing or empty; list at least one host:port")
        }
        return (endpoints, id)
    }

    /// True for `host:port` with a port from 1 to 65535.
    static func isEndpoint(_ text: String) -> Bool {
        guard let colon = text.lastIndex(of: ":"), colon != text.startIndex,
            let port = Int(text[text.index(after: colon)...])
        else { return false }
        return (1...65535).contains(port) && !text[..<colon].contains(" ")
    }
}
