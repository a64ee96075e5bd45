import ClusDBModel
import Synchronization

/// What the whole service holds at this moment — open connections, requests in flight, buffered
/// request-body bytes — shared by every connection's ``ConnectionGuard`` on every event loop, and
/// the caps of ``ServerLimits`` on each.
///
/// Each count is taken with a compare-and-exchange that never passes its cap, so a refusal means
/// the cap was really reached, not that a racing taker briefly overshot it.
final class ServerLoad: Sendable {
    /// The caps.
    let limits: ServerLimits
    private let connections = Atomic<Int>(0)
    private let requests = Atomic<Int>(0)
    private let bytes = Atomic<Int>(0)

    /// Creates empty counts under `limits`.
    init(limits: ServerLimits) {
        self.limits = limits
    }

    /// Takes a connection slot; false when ``ServerLimits/connectionsMax`` are open.
    func openConnection() -> Bool { Self.take(1, from: connections, max: limits.connectionsMax) }
    /// Gives a connection slot back.
    func closeConnection() { connections.subtract(1, ordering: .relaxed) }

    /// Takes a request slot; false when ``ServerLimits/requestsInFlightMax`` are in flight.
    func startRequest() -> Bool { Self.take(1, from: requests, max: limits.requestsInFlightMax) }
    /// Gives a request slot back.
    func endRequest() { requests.subtract(1, ordering: .relaxed) }

    /// Takes `count` bytes of the body budget; false when they would pass
    /// ``ServerLimits/requestBytesBufferedMax``.
    func reserveBytes(_ count: Int) -> Bool { Self.take(count, from: bytes, max: limits.requestBytesBufferedMax) }
    /// Gives `count` bytes of the body budget back.
    func releaseBytes(_ count: Int) {
        if count > 0 { bytes.subtract(count, ordering: .relaxed) }
    }

    /// Counts now (for logs and tests).
    var snapshot: (connections: Int, requests: Int, bytes: Int) {
        (connections.load(ordering: .relaxed), requests.load(ordering: .relaxed), bytes.load(ordering: .relaxed))
    }

    private static func take(_ amount: Int, from counter: borrowing Atomic<Int>, max: Int) -> Bool {
        if amount <= 0 { return true }
        var current = counter.load(ordering: .relaxed)
        while true {
            guard current <= max - amount else { return false }
            let (exchanged, original) = counter.compareExchange(
                expected: current, desired: current + amount, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
    }
}
