/// A replica's identity in the cluster. Never reused: a node removed and added again gets a new
/// identifier (etcd-io/raft's rule), so an old message can never be mistaken for a new member's.
public typealias NodeID = UInt64

/// One entry of the Raft log (the quorum log).
public struct RaftEntry: Sendable, Equatable {
    /// What an entry carries.
    public enum Kind: UInt8, Sendable, Equatable {
        /// A client command for the state machine (the hive).
        case command = 1
        /// The empty entry a new leader appends at the start of its term (§5.4.2, Figure 8): only
        /// entries of the current term commit by counting, so a leader learns its commit index by
        /// committing this one.
        case noOp = 2
        /// A membership change (``ConfigurationChange``); it takes effect when committed.
        case configurationChange = 3
    }

    /// The entry's position, from 1.
    public var index: UInt64
    /// The term of the leader that created it.
    public var term: UInt64
    /// What it carries.
    public var kind: Kind
    /// The command bytes (``Kind/command``), the encoded change (``Kind/configurationChange``),
    /// or empty (``Kind/noOp``).
    public var payload: [UInt8]

    /// Creates an entry.
    public init(index: UInt64, term: UInt64, kind: Kind, payload: [UInt8] = []) {
        self.index = index
        self.term = term
        self.kind = kind
        self.payload = payload
    }

    /// The bytes this entry counts for in flow control (payload plus a fixed header).
    public var sizeForFlowControl: Int { payload.count + Self.headerBytes }

    /// What an entry costs besides its payload, for flow control: index, term, kind.
    static let headerBytes = 17
}
