import ClusDBModel

/// A piece of a snapshot's checkpoint image in a ``PeerFrame/Kind/snapshotChunk`` frame. The
/// leader streams an image in chunks of at most ``Limits/peerSnapshotChunkBytes`` in order, then
/// sends the ``ClusDBRaft/RaftMessage/Body/installSnapshot`` message that names it; the receiver
/// writes each chunk as it arrives, so an image is never held whole in memory.
///
/// Body (docs/FORMATS.md, "Peer protocol"): the snapshot's index and term, the chunk's offset in
/// the image and the image's total size (u64 each, little-endian), then the bytes (a u32 count
/// and the bytes).
public struct SnapshotChunk: Sendable, Equatable {
    /// The last log index the snapshot covers.
    public var index: UInt64
    /// The term of the entry at ``index``.
    public var term: UInt64
    /// Where ``bytes`` go in the image.
    public var offset: UInt64
    /// The image's size in bytes.
    public var totalBytes: UInt64
    /// The image's bytes from ``offset``.
    public var bytes: [UInt8]

    /// Creates a chunk.
    public init(index: UInt64, term: UInt64, offset: UInt64, totalBytes: UInt64, bytes: [UInt8]) {
        self.index = index
        self.term = term
        self.offset = offset
        self.totalBytes = totalBytes
        self.bytes = bytes
    }

    /// Whether this chunk ends the image.
    public var isLast: Bool {
        let (end, overflow) = offset.addingReportingOverflow(UInt64(bytes.count))
        return !overflow && end == totalBytes
    }

    /// The frame body.
    /// - Precondition: the chunk is consistent (see ``init(decoding:)``).
    public var encoded: [UInt8] {
        precondition(bytes.count <= Limits.peerSnapshotChunkBytes && offset <= totalBytes && UInt64(bytes.count) <= totalBytes - offset,
            "a snapshot chunk lies inside its image and within Limits.peerSnapshotChunkBytes")
        var writer = ByteWriter(capacity: 40 + bytes.count)
        writer.u64(index)
        writer.u64(term)
        writer.u64(offset)
        writer.u64(totalBytes)
        writer.lengthPrefixed(bytes)
        return writer.bytes
    }

    /// Decodes a frame body.
    /// - Throws: `ERROR_INVALID_DATA` for a malformed body, a chunk over
    ///   ``Limits/peerSnapshotChunkBytes``, an empty chunk of a non-empty image, or a chunk
    ///   reaching past the image's end.
    public init(decoding body: [UInt8]) throws(ClusterError) {
        var reader = ByteReader(body)
        index = try reader.u64()
        term = try reader.u64()
        offset = try reader.u64()
        totalBytes = try reader.u64()
        bytes = Array(try reader.lengthPrefixed())
        try reader.expectEnd()
        guard bytes.count <= Limits.peerSnapshotChunkBytes else {
            throw ClusterError(.invalidData, "a snapshot chunk of \(bytes.count) bytes is over the limit of \(Limits.peerSnapshotChunkBytes)")
        }
        guard offset <= totalBytes, UInt64(bytes.count) <= totalBytes - offset else {
            throw ClusterError(.invalidData, "a snapshot chunk at offset \(offset) of \(bytes.count) bytes reaches past its image of \(totalBytes) bytes")
        }
        guard !bytes.isEmpty || totalBytes == 0 else {
            throw ClusterError(.invalidData, "an empty snapshot chunk at offset \(offset) of an image of \(totalBytes) bytes")
        }
    }
}
