import ClusDBModel
import ClusDBRaft

/// The receiving side of one snapshot image streamed on one connection (``SnapshotChunk``):
/// chunks of one snapshot, in order, without gaps, until the image is whole; then the
/// ``ClusDBRaft/RaftMessage/Body/installSnapshot`` message naming that snapshot completes it.
/// Anything else is a broken stream and closes the connection.
public struct SnapshotReception: Sendable, Equatable {
    /// The snapshot's last index.
    public let index: UInt64
    /// The term at ``index``.
    public let term: UInt64
    /// The image's size.
    public let totalBytes: UInt64
    /// Bytes received so far (the offset the next chunk must have).
    public private(set) var receivedBytes: UInt64 = 0

    /// Starts a reception with its first chunk.
    /// - Throws: `ERROR_INVALID_DATA` unless the chunk starts the image (offset 0).
    public init(first chunk: SnapshotChunk) throws(ClusterError) {
        guard chunk.offset == 0 else {
            throw ClusterError(.invalidData, "a snapshot stream starts at offset \(chunk.offset), not 0")
        }
        index = chunk.index
        term = chunk.term
        totalBytes = chunk.totalBytes
        try take(chunk)
    }

    /// Takes the next chunk.
    /// - Throws: `ERROR_INVALID_DATA` for a chunk of another snapshot or image size, or one not
    ///   at the offset where the previous ended.
    public mutating func take(_ chunk: SnapshotChunk) throws(ClusterError) {
        guard chunk.index == index, chunk.term == term, chunk.totalBytes == totalBytes else {
            throw ClusterError(
                .invalidData,
                "a chunk of snapshot \(chunk.index) (term \(chunk.term), \(chunk.totalBytes) bytes) inside the stream of snapshot \(index) (term \(term), \(totalBytes) bytes)")
        }
        guard chunk.offset == receivedBytes else {
            throw ClusterError(.invalidData, "a snapshot chunk at offset \(chunk.offset) where \(receivedBytes) was expected")
        }
        receivedBytes += UInt64(chunk.bytes.count)
    }

    /// Whether the whole image has arrived.
    public var isComplete: Bool { receivedBytes == totalBytes }

    /// Whether `metadata` names this snapshot and the image is whole.
    public func completes(_ metadata: SnapshotMetadata) -> Bool {
        isComplete && metadata.index == index && metadata.term == term
    }
}
