/// A client session (Raft dissertation §6.3): a client names itself and numbers its writes, so a
/// write retried after a timeout or a leader change is applied once, and the retry is answered
/// with the first outcome.
///
/// A client keeps one write outstanding per session and numbers writes 1, 2, 3, …; it retries a
/// write with the same number. The hive remembers, per client, the last number applied and its
/// outcome (``SessionRules`` say for how long).
public struct ClientSession: Sendable, Hashable {
    /// The client's identifier, nonzero; chosen at random by the client (64 bits make a collision
    /// between two clients of one cluster negligible).
    public var client: UInt64
    /// The write's number in the session, from 1.
    public var sequence: UInt64

    /// Creates a session tag.
    public init(client: UInt64, sequence: UInt64) {
        self.client = client
        self.sequence = sequence
    }

    /// Checks the tag.
    /// - Throws: `ERROR_INVALID_PARAMETER` for a zero client or sequence.
    public func validate() throws(ClusterError) {
        if client == 0 { throw ClusterError(.invalidParameter, "a session's client id must not be 0") }
        if sequence == 0 { throw ClusterError(.invalidParameter, "a session's sequence numbers start at 1") }
    }

    /// The HTTP header a write carries its session in (docs/HTTP_API.md, "Client sessions").
    public static let headerName = "ClusDB-Session"

    /// The header's value: the client id and the sequence number in decimal, `client/sequence`.
    public var headerValue: String { "\(client)/\(sequence)" }

    /// Reads ``headerValue``.
    /// - Throws: `ERROR_INVALID_PARAMETER` naming the header for anything else, or a zero part.
    public init(headerValue: String) throws(ClusterError) {
        let parts = headerValue.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
            let client = UInt64(parts[0]), let sequence = UInt64(parts[1])
        else {
            throw ClusterError(
                .invalidParameter, "the \(Self.headerName) header must be CLIENT/SEQUENCE in decimal, not \"\(headerValue.prefix(64))\"")
        }
        self.init(client: client, sequence: sequence)
        do {
            try validate()
        } catch {
            throw ClusterError(.invalidParameter, "the \(Self.headerName) header \"\(headerValue)\": \(error.message)")
        }
    }
}

/// How long the hive remembers sessions. Part of the replicated state's rules: every replica must
/// use the same values, so changing the defaults is a format change (docs/FORMATS.md).
public struct SessionRules: Sendable, Equatable {
    /// A session whose last write was applied more than this many entries ago is forgotten; a
    /// retry after that is applied again. Decided by log indexes, never by a clock.
    public var idleEntries: UInt64
    /// Sessions kept at most; beyond it the least recently used go at the next sweep.
    public var sessionsMax: Int
    /// Forgotten sessions are deleted when a session write is applied at an index that is a
    /// multiple of this (the rule above decides what counts as forgotten meanwhile).
    public var sweepEveryEntries: UInt64

    /// Creates rules.
    public init(idleEntries: UInt64, sessionsMax: Int, sweepEveryEntries: UInt64) {
        precondition(idleEntries > 0 && sessionsMax > 0 && sweepEveryEntries > 0, "session rules are positive")
        self.idleEntries = idleEntries
        self.sessionsMax = sessionsMax
        self.sweepEveryEntries = sweepEveryEntries
    }

    /// ClusDB's rules: 100,000,000 entries (over an hour at 25,000 writes a second; retries come
    /// within seconds), 100,000 sessions, a sweep every 4,096 entries.
    public static let standard = SessionRules(idleEntries: 100_000_000, sessionsMax: 100_000, sweepEveryEntries: 4_096)
}
