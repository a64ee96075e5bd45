import ClusDBModel
import Synchronization

/// The client sessions of one ``Cluster`` handle (Raft dissertation §6.3): every write carries a
/// session and a sequence number, so that a retry of a write whose answer was lost is applied
/// once and answered with the first outcome.
///
/// The hive remembers one write per session (the last), so a session has at most one write
/// outstanding: a write takes an idle session (or starts one, with a random client id) and gives
/// it back, one sequence number further on, once answered — whatever the answer, since a write
/// whose outcome is unknown may have been applied, and its number must not be used again.
/// Concurrent writes therefore use as many sessions as run at once.
final class SessionPool: Sendable {
    private let idle = Mutex<[ClientSession]>([])
    /// Idle sessions kept; beyond it, given-back sessions are dropped (the hive forgets them
    /// by its own rules).
    static let idleSessionsMax = 64

    /// A session for one write: an idle one, or a new one.
    func take() -> ClientSession {
        if let session = idle.withLock({ $0.popLast() }) { return session }
        var generator = SystemRandomNumberGenerator()
        var client: UInt64 = 0
        while client == 0 { client = generator.next() }
        return ClientSession(client: client, sequence: 1)
    }

    /// Returns the session of an answered write; its next write takes the next number.
    func giveBack(_ session: ClientSession) {
        let next = ClientSession(client: session.client, sequence: session.sequence + 1)
        idle.withLock { sessions in
            if sessions.count < Self.idleSessionsMax { sessions.append(next) }
        }
    }
}
