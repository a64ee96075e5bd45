import ClusDBModel
import Crypto
import Foundation

/// The byte stream of a backup sent to a client (`POST /v1/backup/stream`, see `docs/FORMATS.md`):
///
/// ```
/// stream = "CLUSBKST" | u32 version (1) | frame*
/// frame  = u8 type | u32 length | payload[length]
/// ```
///
/// Frames: `file` (payload: the relative path, UTF-8) opens a file; `data` (at most
/// ``dataMaxBytes``) appends to it; `endFile` closes it; `manifest` (the manifest JSON, with every
/// file's size and SHA-256) ends a good stream; `error` (a JSON error body) ends a failed one.
/// The client recomputes every hash while writing and writes the marker only when all match.
public enum BackupStream {
    /// The magic bytes that open a stream.
    public static let magic = Array("CLUSBKST".utf8)
    /// The stream format version.
    public static let version: UInt32 = 1
    /// Bytes before the first frame.
    public static let preambleSize = 12
    /// Bytes before a frame's payload.
    public static let frameHeaderSize = 5
    /// Largest `data` payload.
    public static let dataMaxBytes = 1 << 20
    /// Largest `file` payload (a relative path).
    public static let pathMaxBytes = 4 << 10
    /// Largest `manifest` or `error` payload.
    public static let documentMaxBytes = 16 << 20

    /// Frame types.
    public enum FrameType: UInt8, Sendable {
        /// Opens a file: the payload is its relative path.
        case file = 1
        /// Bytes of the open file.
        case data = 2
        /// Closes the open file.
        case endFile = 3
        /// The manifest; the last frame of a good stream.
        case manifest = 4
        /// A JSON error body; the last frame of a failed stream.
        case error = 5

        var payloadMaxBytes: Int {
            switch self {
            case .file: return BackupStream.pathMaxBytes
            case .data: return BackupStream.dataMaxBytes
            case .endFile: return 0
            case .manifest, .error: return BackupStream.documentMaxBytes
            }
        }
    }

    /// The stream's first bytes.
    public static func preamble() -> [UInt8] {
        var writer = ByteWriter(capacity: preambleSize)
        for byte in magic { writer.u8(byte) }
        writer.u32(version)
        return writer.bytes
    }

    /// One encoded frame.
    public static func frame(_ type: FrameType, _ payload: some Collection<UInt8>) -> [UInt8] {
        precondition(payload.count <= type.payloadMaxBytes, "a \(type) frame is limited to \(type.payloadMaxBytes) bytes")
        var writer = ByteWriter(capacity: frameHeaderSize + payload.count)
        writer.u8(type.rawValue)
        writer.u32(UInt32(payload.count))
        var bytes = writer.bytes
        bytes.append(contentsOf: payload)
        return bytes
    }

    /// Splits a stream fed in pieces of any size back into frames, checking every bound.
    public struct Decoder {
        private var buffer: [UInt8] = []
        private var position = 0
        private var sawPreamble = false

        /// Creates a decoder at the start of a stream.
        public init() {}

        /// Adds received bytes.
        public mutating func feed(_ bytes: some Collection<UInt8>) {
            if position > 0 && position == buffer.count {
                buffer.removeAll(keepingCapacity: true)
                position = 0
            }
            buffer.append(contentsOf: bytes)
        }

        /// Bytes received but not yet returned as frames.
        public var pendingBytes: Int { buffer.count - position }

        /// The next complete frame, nil when more bytes are needed.
        /// - Throws: `ERROR_INVALID_DATA` for a stream that breaks the format.
        public mutating func next() throws(ClusterError) -> (type: FrameType, payload: ArraySlice<UInt8>)? {
            if !sawPreamble {
                guard buffer.count - position >= preambleSize else { return nil }
                guard Array(buffer[position..<position + 8]) == magic else {
                    throw ClusterError(.invalidData, "the backup stream does not start with its magic bytes")
                }
                var reader = ByteReader(Array(buffer[position + 8..<position + 12]))
                let found = try reader.u32()
                guard found == version else {
                    throw ClusterError(.invalidData, "the backup stream has version \(found); this build reads \(version)")
                }
                position += preambleSize
                sawPreamble = true
            }
            guard buffer.count - position >= frameHeaderSize else { return nil }
            guard let type = FrameType(rawValue: buffer[position]) else {
                throw ClusterError(.invalidData, "the backup stream holds an unknown frame type \(buffer[position])")
            }
            let length = Int(UInt32(buffer[position + 1]) | UInt32(buffer[position + 2]) << 8 | UInt32(buffer[position + 3]) << 16
                | UInt32(buffer[position + 4]) << 24)
            guard length <= type.payloadMaxBytes else {
                throw ClusterError(.invalidData, "a \(type) frame of the backup stream claims \(length) bytes")
            }
            guard buffer.count - position - frameHeaderSize >= length else { return nil }
            let start = position + frameHeaderSize
            position = start + length
            let payload = buffer[start..<start + length]
            if position > Self.compactThreshold {
                // Keep the buffer bounded: drop what was consumed once it is large.
                let rest = Array(buffer[position...])
                buffer = rest
                position = 0
                return (type, ArraySlice(payload))
            }
            return (type, payload)
        }

        /// Consumed bytes kept before the buffer is compacted.
        static let compactThreshold = 4 << 20
    }
}

/// Turns a ``BackupSource`` into the frames of a ``BackupStream``, one piece at a time, hashing
/// each file as it goes so the closing manifest carries every size and SHA-256.
///
/// A read failure midway becomes an `error` frame: the receiver then knows the backup failed
/// rather than seeing a stream that merely stops.
public struct BackupStreamProducer {
    private let source: BackupSource
    private var pendingNames: [String]
    private var reader: (any BackupChunkReader)?
    private var currentName = ""
    private var hasher = SHA256()
    private var size = 0
    private var files: [BackupManifest.File] = []
    private var started = false
    private var ended = false

    /// Streams `source` (which the caller closes afterwards).
    public init(source: BackupSource) {
        self.source = source
        pendingNames = source.fileNames
    }

    /// The next bytes of the stream (one or more frames), nil once it is complete.
    public mutating func next() -> [UInt8]? {
        if ended { return nil }
        if !started {
            started = true
            return BackupStream.preamble()
        }
        do throws(ClusterError) {
            return try advance()
        } catch {
            ended = true
            let body = (try? JSONEncoder().encode(ClientProtocol.ErrorResponse(error))) ?? Data()
            return BackupStream.frame(.error, Array(body.prefix(BackupStream.documentMaxBytes)))
        }
    }

    private mutating func advance() throws(ClusterError) -> [UInt8] {
        if var open = reader {
            if let chunk = try open.next() {
                reader = open
                hasher.update(data: chunk)
                size += chunk.count
                var frames: [UInt8] = []
                frames.reserveCapacity(chunk.count + BackupStream.frameHeaderSize * 2)
                var offset = 0
                while offset < chunk.count {
                    let end = min(offset + BackupStream.dataMaxBytes, chunk.count)
                    frames += BackupStream.frame(.data, chunk[offset..<end])
                    offset = end
                }
                return frames
            }
            reader = nil
            files.append(BackupManifest.File(path: currentName, size: size, sha256: Hex.encode(hasher.finalize())))
            return BackupStream.frame(.endFile, [])
        }
        if !pendingNames.isEmpty {
            currentName = pendingNames.removeFirst()
            reader = source.reader(for: currentName)
            hasher = SHA256()
            size = 0
            return BackupStream.frame(.file, Array(currentName.utf8))
        }
        ended = true
        var manifest = source.manifest
        manifest.files = files
        return BackupStream.frame(.manifest, manifest.jsonBytes())
    }
}
