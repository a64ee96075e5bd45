#if canImport(Glibc)
import Glibc
#endif
import ClusDBModel
import Synchronization

/// The client port, bound (not listening) before the node touches its data directory, so a
/// taken port fails `clusdb serve` before anything is created or recovered and before the node
/// logs "node ready".
///
/// Why a second socket rather than handing this one to the HTTP server: Hummingbird binds its own.
/// Both sockets set `SO_REUSEADDR`; on Linux two such sockets may share an address while neither
/// listens, and a bind fails while any socket listens on it. So this bind fails exactly when
/// another server listens on the port, the HTTP server's own bind still succeeds, and until
/// ``release()`` another process cannot take the port in between.
final class PortReservation: Sendable {
    private let descriptor: Mutex<Int32>
    /// The bound port (the one the kernel picked when asked for port 0).
    let port: Int

    /// Binds `host:port`.
    /// - Throws: `ERROR_ADDRESS_ALREADY_ASSOCIATED` for a port in use, `ERROR_INVALID_PARAMETER`
    ///   for a host that is no address of this machine, `ERROR_ACCESS_DENIED` for a privileged port.
    init(host: String, port: Int) throws(ClusterError) {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let info = list else {
            throw ClusterError(.invalidParameter, "client address \(host) cannot be resolved")
        }
        defer { freeaddrinfo(list) }
        let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
        guard fd >= 0 else {
            throw ClusterError(.invalidParameter, "no socket for client address \(host): errno \(errno)")
        }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
            let code = errno
            close(fd)
            switch code {
            case EADDRINUSE:
                throw ClusterError(.addressAlreadyAssociated, "client address \(host):\(port) is already in use")
            case EADDRNOTAVAIL:
                throw ClusterError(.invalidParameter, "client address \(host) is not an address of this machine")
            case EACCES:
                throw ClusterError(.accessDenied, "no permission to listen on port \(port)")
            default:
                throw ClusterError(.invalidParameter, "cannot bind client address \(host):\(port): errno \(code)")
            }
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        var bound = port
        let named = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        if named == 0 {
            // sin_port and sin6_port sit at the same offset, in network byte order.
            let raw = withUnsafeBytes(of: storage) { UInt16($0[2]) << 8 | UInt16($0[3]) }
            bound = Int(raw)
        }
        descriptor = Mutex(fd)
        self.port = bound
    }

    deinit { release() }

    /// Closes the socket; call once the HTTP server listens (or has failed).
    func release() {
        descriptor.withLock { fd in
            if fd >= 0 {
                close(fd)
                fd = -1
            }
        }
    }
}
