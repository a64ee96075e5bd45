import ClusDBModel

/// What a node is started with.
public struct NodeConfiguration: Sendable {
    /// The data directory.
    public var dataDirectory: String
    /// The node's name.
    public var nodeName: String
    /// The cluster name for a new data directory; for an existing one it must match (nil: any).
    public var clusterName: String?
    /// The address clients reach this node at, as reported in status.
    public var clientAddress: String
    /// The address peers reach this node at, as reported in status.
    public var peerAddress: String

    /// Fault injection for tests: asked before the apply stage applies entries `first...last`;
    /// an error returned fails that apply as a failing disk would. Production leaves it nil.
    public var applyFault: (@Sendable (_ first: UInt64, _ last: UInt64) -> ClusterError?)?

    /// Creates a configuration.
    public init(dataDirectory: String, nodeName: String, clusterName: String?, clientAddress: String, peerAddress: String) {
        self.dataDirectory = dataDirectory
        self.nodeName = nodeName
        self.clusterName = clusterName
        self.clientAddress = clientAddress
        self.peerAddress = peerAddress
    }
}

/// A snapshot of a node's position, for `status`.
public struct NodeStatus: Sendable, Equatable {
    /// The node's identity.
    public var identity: NodeIdentityView
    /// The current term.
    public var term: UInt64
    /// Highest index known committed.
    public var commitIndex: UInt64
    /// Highest index applied to the hive.
    public var appliedIndex: UInt64
    /// Index of the newest cluster checkpoint (0: none).
    public var checkpointIndex: UInt64
    /// First index still in the quorum log (nil: empty).
    public var logFirstIndex: UInt64?
    /// Bytes in the quorum log's segments.
    public var logBytes: Int
    /// Groups appended since start, each with one write and one fdatasync (fewer than the
    /// entries when concurrent writes share a group commit).
    public var groupsAppended: UInt64 = 0
    /// SQLite transactions the apply stage committed since start (fewer than the groups when
    /// committed groups gather and are applied together).
    public var applyTransactions: UInt64 = 0
    /// Writes queued for the next group commit right now (at most
    /// ``Limits/pendingProposalsMax``).
    public var pendingProposals = 0
}

/// The identity fields status reports.
public struct NodeIdentityView: Sendable, Equatable {
    /// The cluster's name.
    public var clusterName: String
    /// The cluster's id.
    public var clusterID: String
    /// The node's name.
    public var nodeName: String
    /// The node's id.
    public var nodeID: String
    /// The restore generation.
    public var restoreGeneration: UInt64
}
