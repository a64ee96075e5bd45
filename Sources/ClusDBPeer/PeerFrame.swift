import ClusDBModel
import ClusDBStore

/// One unit of the peer protocol between ClusDB nodes (docs/FORMATS.md, "Peer protocol").
///
/// On the wire a frame is a 12-byte header and a body:
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 4 | body length N, little-endian, at most ``Limits/peerFrameBodyBytesMax`` |
/// | 4 | 1 | protocol version (``protocolVersion``) |
/// | 5 | 1 | kind (``Kind``) |
/// | 6 | 2 | reserved, zero |
/// | 8 | 4 | CRC32C of bytes 0..<8 and the body, little-endian |
/// | 12 | N | body |
///
/// The checksum covers the length too, so a damaged length is caught as soon as the body it
/// names has arrived; a length above the limit is refused before anything is buffered.
public struct PeerFrame: Sendable, Equatable {
    /// What a frame carries.
    public enum Kind: UInt8, Sendable, CaseIterable {
        /// The dialing node introduces itself (``PeerHello``); always the first frame it sends.
        case hello = 1
        /// The listening node accepts the connection and introduces itself (``PeerHello``).
        case welcome = 2
        /// Either side refuses the connection (a Win32 code and a message) and closes it.
        case refusal = 3
        /// A Raft message (``RaftMessageCoding``).
        case raftMessage = 4
        /// A piece of a snapshot's checkpoint image (``SnapshotChunk``).
        case snapshotChunk = 5
    }

    /// The version of the peer protocol this build speaks. A frame of any other version is
    /// refused (`ERROR_REVISION_MISMATCH`): nodes of one cluster run the same protocol.
    public static let protocolVersion: UInt8 = 1
    /// Bytes before the body.
    public static let headerBytes = 12

    /// The kind of the frame.
    public var kind: Kind
    /// The body, whose format the kind decides.
    public var body: [UInt8]

    /// Creates a frame.
    public init(kind: Kind, body: [UInt8]) {
        self.kind = kind
        self.body = body
    }

    /// The frame's bytes on the wire.
    /// - Precondition: the body is within ``Limits/peerFrameBodyBytesMax`` (encoders bound what
    ///   they put in a frame; a larger one is a programmer error).
    public var encoded: [UInt8] {
        precondition(body.count <= Limits.peerFrameBodyBytesMax, "a peer frame body is at most Limits.peerFrameBodyBytesMax bytes")
        var writer = ByteWriter(capacity: Self.headerBytes + body.count)
        writer.u32(UInt32(body.count))
        writer.u8(Self.protocolVersion)
        writer.u8(kind.rawValue)
        writer.u8(0)
        writer.u8(0)
        var crc = CRC32C.checksum(writer.bytes)
        crc = CRC32C.checksum(body, continuing: crc)
        writer.u32(crc)
        var bytes = writer.bytes
        bytes.append(contentsOf: body)
        return bytes
    }

    /// What the first ``headerBytes`` bytes of a frame say: the body length and the rest to check
    /// once the body is there.
    public struct Header: Sendable, Equatable {
        /// Bytes of body that follow the header.
        public var bodyLength: Int
        /// The frame's kind.
        public var kind: Kind
        /// The recorded checksum.
        public var checksum: UInt32
        /// The CRC32C of the header's first 8 bytes, to continue over the body.
        var headerChecksum: UInt32
    }

    /// Reads and checks a frame header.
    /// - Parameter bytes: exactly ``headerBytes`` bytes.
    /// - Throws: `ERROR_INVALID_DATA` for a length over the limit, a nonzero reserved field or an
    ///   unknown kind; `ERROR_REVISION_MISMATCH` for another protocol version.
    public static func header(_ bytes: some Collection<UInt8>) throws(ClusterError) -> Header {
        precondition(bytes.count == headerBytes, "a frame header is 12 bytes")
        let raw = Array(bytes)
        var reader = ByteReader(raw)
        let length = try reader.u32()
        let version = try reader.u8()
        let kindByte = try reader.u8()
        let reserved = UInt16(try reader.u8()) | UInt16(try reader.u8()) << 8
        let checksum = try reader.u32()
        guard version == protocolVersion else {
            throw ClusterError(.revisionMismatch, "the peer speaks protocol version \(version); this node speaks \(protocolVersion)")
        }
        guard Int(length) <= Limits.peerFrameBodyBytesMax else {
            throw ClusterError(.invalidData, "a peer frame of \(length) bytes is over the limit of \(Limits.peerFrameBodyBytesMax)")
        }
        guard reserved == 0 else {
            throw ClusterError(.invalidData, "a peer frame header has reserved bits set (\(reserved))")
        }
        guard let kind = Kind(rawValue: kindByte) else {
            throw ClusterError(.invalidData, "unknown peer frame kind \(kindByte)")
        }
        return Header(bodyLength: Int(length), kind: kind, checksum: checksum, headerChecksum: CRC32C.checksum(raw[0..<8]))
    }

    /// Checks `body` against `header` and returns the frame.
    /// - Throws: `ERROR_INVALID_DATA` when the checksum does not match.
    public static func frame(_ header: Header, body: [UInt8]) throws(ClusterError) -> PeerFrame {
        precondition(body.count == header.bodyLength, "the body is as long as the header says")
        let actual = CRC32C.checksum(body, continuing: header.headerChecksum)
        guard actual == header.checksum else {
            throw ClusterError(
                .invalidData,
                "a peer frame (\(header.kind), \(header.bodyLength) bytes) fails its checksum: recorded \(hex(header.checksum)), computed \(hex(actual))")
        }
        return PeerFrame(kind: header.kind, body: body)
    }

    private static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }
}
