#if canImport(Glibc)
import Glibc
#endif
import ClusDBModel
import ClusDBNode
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// The daemon: recovers the node, serves the client API, and shuts down gracefully on SIGTERM or
/// SIGINT (in-flight requests finish, queued writes commit, files close).
public enum ClusDBServer {
    /// Runs until a shutdown signal.
    /// - Parameter onReady: called once the client API listens, with the bound port.
    /// - Throws: ``ClusterError``: `ERROR_SHARING_VIOLATION` for a data directory in use,
    ///   `ERROR_ADDRESS_ALREADY_ASSOCIATED` for a taken port, recovery errors.
    public static func run(
        _ configuration: ServerConfiguration, logger: Logger, onReady: @escaping @Sendable (Int) -> Void = { _ in }
    ) async throws(ClusterError) {
        // The port first: a taken port must fail before the data directory is created or
        // recovered and before the node says it is ready.
        let reservation = try PortReservation(host: configuration.clientHost, port: configuration.clientPort)
        defer { reservation.release() }
        var configuration = configuration
        // Port 0: listen on the port the kernel just reserved, so the reservation covers it.
        configuration.clientPort = reservation.port
        let node = try ClusterNode(configuration: configuration.node, logger: logger)
        defer { node.stop() }
        let router = Router()
        ClientAPI(node: node, peerAddress: configuration.node.peerAddress, logger: logger).register(on: router)
        let load = ServerLoad(limits: configuration.limits)
        raiseOpenFileLimit(toFit: configuration.limits.connectionsMax, logger: logger)
        let app = Application(
            router: router,
            // Every connection first passes its ConnectionGuard (caps and timeouts); set-value, the
            // hottest request, is then answered on the event loop (see SetValueHandler).
            // Hummingbird's own idleTimeout stays off: see ConnectionGuard for why it does not fit.
            server: .http1(
                configuration: .init(additionalChannelHandlers: [
                    ConnectionGuard(load: load, logger: logger), SetValueHandler(node: node, logger: logger),
                ])),
            configuration: .init(
                address: .hostname(configuration.clientHost, port: configuration.clientPort), serverName: "clusdb"),
            onServerRunning: { [configuration] channel in
                reservation.release()
                onReady(channel.localAddress?.port ?? configuration.clientPort)
            },
            logger: logger)
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: NodeService(node: node)), .init(service: app)],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            throw mapped(error, configuration)
        }
    }

    /// Open files the node needs besides client connections: its data files, log segments, a
    /// backup's pinned files, the listening socket.
    static let openFilesReserve = 256

    /// Raises the soft limit on open files (often 1,024) toward the hard limit, so that the
    /// connection cap, not `EMFILE`, is what refuses clients. A hard limit below the need is
    /// logged: the cap then cannot be reached, and accepting pauses (NIO backs off) instead.
    private static func raiseOpenFileLimit(toFit connections: Int, logger: Logger) {
        let needed = rlim_t(connections + openFilesReserve)
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < needed else { return }
        let wanted = min(needed, limit.rlim_max)
        var raised = limit
        raised.rlim_cur = wanted
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) != 0 || wanted < needed {
            logger.warning(
                "the open-file limit is below what connectionsMax needs; clients may wait for a free descriptor before the cap refuses them",
                metadata: ["soft": "\(wanted)", "needed": "\(needed)"])
        }
    }

    private static func mapped(_ error: any Error, _ configuration: ServerConfiguration) -> ClusterError {
        if let error = error as? ClusterError { return error }
        var current: any Error = error
        // ServiceGroup wraps a failing service's error; look through it for the socket error.
        for _ in 0..<4 {
            if let io = current as? IOError {
                if io.errnoCode == EADDRINUSE {
                    return ClusterError(
                        .addressAlreadyAssociated,
                        "client address \(configuration.clientHost):\(configuration.clientPort) is already in use")
                }
                if io.errnoCode == EADDRNOTAVAIL {
                    return ClusterError(.invalidParameter, "client address \(configuration.clientHost) is not an address of this machine")
                }
                if io.errnoCode == EACCES {
                    return ClusterError(.accessDenied, "no permission to listen on port \(configuration.clientPort)")
                }
            }
            let mirror = Mirror(reflecting: current)
            guard let inner = mirror.children.lazy.compactMap({ $0.value as? any Error }).first else { break }
            current = inner
        }
        let text = "\(error)"
        if text.contains("Address already in use") {
            return ClusterError(
                .addressAlreadyAssociated, "client address \(configuration.clientHost):\(configuration.clientPort) is already in use")
        }
        return ClusterError(.invalidData, "the service stopped: \(text)")
    }
}

/// Holds the node for the service group: on graceful shutdown it stops the node after the HTTP
/// server (listed after it) has finished its requests.
struct NodeService: Service {
    let node: ClusterNode

    func run() async throws {
        try? await gracefulShutdown()
        node.stop()
    }
}
