#if canImport(Glibc)
import Glibc
#endif
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
///
/// A process that forks (a C program using `libclusapi`) copies the idle sessions into both
/// processes; two writes with one number would then meet the hive's retry rule, and the second
/// would be refused (`ERROR_INVALID_PARAMETER`: the number was used for another write) or, were it
/// the same write, answered with the first's outcome without being applied. So the pool belongs
/// to the process that filled it: in another one it starts empty.
final class SessionPool: Sendable {
    private let idle: Mutex<(owner: Int32, sessions: [ClientSession])>
    private let processID: @Sendable () -> Int32
    /// Idle sessions kept; beyond it, given-back sessions are dropped (the hive forgets them
    /// by its own rules).
    static let idleSessionsMax = 64

    /// Creates an empty pool owned by the current process (`processID`: a test's stand-in for
    /// `getpid`).
    init(processID: @escaping @Sendable () -> Int32 = { getpid() }) {
        self.processID = processID
        idle = Mutex((processID(), []))
    }

    /// A session for one write: an idle one of this process, or a new one.
    func take() -> ClientSession {
        let current = processID()
        let reused = idle.withLock { pool -> ClientSession? in
            if pool.owner != current { pool = (current, []) }
            return pool.sessions.popLast()
        }
        if let reused { return reused }
        var generator = SystemRandomNumberGenerator()
        var client: UInt64 = 0
        while client == 0 { client = generator.next() }
        return ClientSession(client: client, sequence: 1)
    }

    /// Returns the session of an answered write; its next write takes the next number. A session
    /// taken before a fork is not kept in the child.
    func giveBack(_ session: ClientSession) {
        let next = ClientSession(client: session.client, sequence: session.sequence + 1)
        let current = processID()
        idle.withLock { pool in
            if pool.owner == current && pool.sessions.count < Self.idleSessionsMax { pool.sessions.append(next) }
        }
    }
}
