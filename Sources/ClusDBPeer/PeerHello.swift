import ClusDBModel
import ClusDBRaft

/// How a node introduces itself when a peer connection opens: the dialing node sends it in a
/// ``PeerFrame/Kind/hello`` frame, the listening node answers with its own in a
/// ``PeerFrame/Kind/welcome`` frame or refuses (``PeerRefusal``). Both sides check the other's
/// with ``verdict(on:)`` before any Raft message passes, so nodes of different clusters, or a
/// node from before a restore, never exchange one.
///
/// Body (docs/FORMATS.md, "Peer protocol"): cluster id, cluster name (strings: a u32 byte count
/// and UTF-8), node id (u64), node name (string), restore generation (u64), the node's peer
/// address as it listens (string). Integers little-endian.
public struct PeerHello: Sendable, Equatable {
    /// The cluster's identifier, as its data directories record it.
    public var clusterID: String
    /// The cluster's name, for log lines.
    public var clusterName: String
    /// The node's Raft identity (never 0).
    public var nodeID: NodeID
    /// The node's name, for log lines.
    public var nodeName: String
    /// The restore generation of the node's copy of the database: it grows with every restore,
    /// and a node holding an older one holds pre-restore state.
    public var restoreGeneration: UInt64
    /// The node's peer address (`host:port`), as it listens.
    public var peerAddress: String

    /// Longest string field accepted, in bytes.
    public static let stringBytesMax = 1_024

    /// Creates a hello.
    public init(clusterID: String, clusterName: String, nodeID: NodeID, nodeName: String, restoreGeneration: UInt64, peerAddress: String) {
        self.clusterID = clusterID
        self.clusterName = clusterName
        self.nodeID = nodeID
        self.nodeName = nodeName
        self.restoreGeneration = restoreGeneration
        self.peerAddress = peerAddress
    }

    /// The frame body.
    public var encoded: [UInt8] {
        for field in [clusterID, clusterName, nodeName, peerAddress] {
            precondition(field.utf8.count <= Self.stringBytesMax, "a hello's strings are at most PeerHello.stringBytesMax bytes")
        }
        var writer = ByteWriter()
        writer.string(clusterID)
        writer.string(clusterName)
        writer.u64(nodeID)
        writer.string(nodeName)
        writer.u64(restoreGeneration)
        writer.string(peerAddress)
        return writer.bytes
    }

    /// Decodes a frame body.
    /// - Throws: `ERROR_INVALID_DATA` for a malformed body, node id 0 or an over-long string.
    public init(decoding body: [UInt8]) throws(ClusterError) {
        var reader = ByteReader(body)
        func string(_ name: String) throws(ClusterError) -> String {
            let text = try reader.string()
            guard text.utf8.count <= Self.stringBytesMax else {
                throw ClusterError(.invalidData, "a peer hello's \(name) is over \(Self.stringBytesMax) bytes")
            }
            return text
        }
        clusterID = try string("cluster id")
        clusterName = try string("cluster name")
        nodeID = try reader.u64()
        nodeName = try string("node name")
        restoreGeneration = try reader.u64()
        peerAddress = try string("peer address")
        try reader.expectEnd()
        guard nodeID != 0 else { throw ClusterError(.invalidData, "a peer hello names node id 0") }
    }

    /// What this node (`self`) makes of a peer's hello.
    public enum Verdict: Sendable, Equatable {
        /// Same cluster, same restore generation, another node: talk.
        case accept
        /// The peer holds a newer restore generation: this node's copy predates a restore and it
        /// must take the restored database before it takes part (it exchanges no Raft message).
        case peerIsNewer(restoreGeneration: UInt64)
        /// Refuse the connection with this error (sent to the peer, logged, then closed).
        case refuse(ClusterError)
    }

    /// Checks a peer's hello against this node's own.
    public func verdict(on peer: PeerHello) -> Verdict {
        let who = "node \(peer.nodeName) (id \(peer.nodeID)) at \(peer.peerAddress)"
        guard peer.clusterID == clusterID else {
            return .refuse(ClusterError(
                .clusterInstanceIDMismatch,
                "\(who) belongs to cluster \(peer.clusterName) (\(peer.clusterID)), this node to \(clusterName) (\(clusterID))"))
        }
        guard peer.nodeID != nodeID else {
            return .refuse(ClusterError(.invalidParameter, "\(who) claims this node's own id \(nodeID)"))
        }
        if peer.restoreGeneration < restoreGeneration {
            return .refuse(ClusterError(
                .clusterInstanceIDMismatch,
                "\(who) holds restore generation \(peer.restoreGeneration), from before this cluster's restore to generation \(restoreGeneration): "
                    + "it must take the restored database before it rejoins"))
        }
        if peer.restoreGeneration > restoreGeneration {
            return .peerIsNewer(restoreGeneration: peer.restoreGeneration)
        }
        return .accept
    }
}
