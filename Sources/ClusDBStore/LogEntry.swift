import ClusDBModel

/// One entry of the quorum log: its position, the term of the quorum owner that created it, and
/// an opaque payload (an encoded ``HiveCommand`` for `.command` entries).
public struct LogEntry: Sendable, Equatable {
    /// What an entry carries.
    public enum Kind: UInt8, Sendable {
        /// A hive change: the payload is an encoded ``HiveCommand``.
        case command = 1
        /// An entry that changes nothing (a new quorum owner's first entry; a barrier).
        case noop = 2
        /// A membership change: the payload is an encoded `ConfigurationChange` (ClusDBRaft).
        /// Written with record format 3, so a build that reads only format 2 stops with a clear
        /// error instead of misreading it; a log without membership changes stays format 2.
        case configurationChange = 3

        /// The record format a record of this kind needs.
        var recordFormat: UInt8 { self == .configurationChange ? 3 : 2 }
    }

    /// The 1-based log index.
    public var index: UInt64
    /// The term of the quorum owner that appended it.
    public var term: UInt64
    /// What the payload is.
    public var kind: Kind
    /// The payload bytes.
    public var payload: [UInt8]

    /// Creates an entry.
    public init(index: UInt64, term: UInt64, kind: Kind, payload: [UInt8]) {
        precondition(index > 0, "log indexes start at 1")
        self.index = index
        self.term = term
        self.kind = kind
        self.payload = payload
    }
}
