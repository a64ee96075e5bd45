import ClusDBModel
import ClusDBNode

/// What `clusdb serve` runs with.
public struct ServerConfiguration: Sendable {
    /// The node's settings.
    public var node: NodeConfiguration
    /// Host the client API listens on.
    public var clientHost: String
    /// Port the client API listens on.
    public var clientPort: Int
    /// Caps and timeouts of client connections (the defaults of ``Limits`` unless a test shrinks them).
    public var limits = ServerLimits()

    /// Creates a configuration.
    public init(node: NodeConfiguration, clientHost: String, clientPort: Int) {
        self.node = node
        self.clientHost = clientHost
        self.clientPort = clientPort
    }

    /// Splits `HOST:PORT` (IPv6 as `[::1]:PORT`).
    /// - Throws: `ERROR_INVALID_PARAMETER` for anything else.
    public static func parseAddress(_ text: String) throws(ClusterError) -> (host: String, port: Int) {
        guard let colon = text.lastIndex(of: ":") else {
            throw ClusterError(.invalidParameter, "address \"\(text)\" is not HOST:PORT")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw ClusterError(.invalidParameter, "address \"\(text)\" is not HOST:PORT with a port from 0 to 65535")
        }
        return (host, port)
    }
}
