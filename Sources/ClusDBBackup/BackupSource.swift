#if canImport(Glibc)
import Glibc
#endif
import ClusDBModel
import ClusDBStore

/// The content of one backup, pinned: an open cluster checkpoint at index C and the open
/// quorum-log segments that hold (C, L]. The node builds it (``init(checkpointPath:...)``) while
/// it keeps those files from being removed; the files stay readable through their descriptors
/// even if they are unlinked afterwards, and records up to L never change.
///
/// Its files are read in chunks through ``reader(for:)``, so the same source feeds a backup
/// written on the node (``write(to:)``) and one streamed to a client.
public final class BackupSource {
    /// One segment of the live log.
    public struct Segment {
        /// Index of its first entry.
        public var firstIndex: UInt64
        /// The open file.
        public var file: SystemFile

        /// Creates a segment reference.
        public init(firstIndex: UInt64, file: SystemFile) {
            self.firstIndex = firstIndex
            self.file = file
        }
    }

    /// Bytes per chunk a reader returns.
    public static let chunkBytes = 1 << 20

    /// The manifest without its file list (the writer fills it in).
    public let manifest: BackupManifest
    /// The backup's file names, in the order they are written.
    public let fileNames: [String]
    private let checkpoint: SystemFile
    private let segments: [Segment]
    private let onClose: () -> Void
    private var closed = false

    /// Pins a backup's content.
    /// - Parameters:
    ///   - checkpoint: the open checkpoint file and its sequence number (the backup keeps it).
    ///   - segments: open segments, oldest first, covering (C, L].
    ///   - manifest: the manifest without files; C, L and the term must be right.
    ///   - onClose: called once by ``close()`` (the node releases its hold on its files).
    public init(
        checkpoint: SystemFile, checkpointSequence: Int, segments: [Segment], manifest: BackupManifest,
        onClose: @escaping () -> Void
    ) {
        precondition(manifest.checkpointIndex <= manifest.lastIndex, "a backup ends at or after its checkpoint")
        self.checkpoint = checkpoint
        self.segments = segments
        self.manifest = manifest
        self.onClose = onClose
        fileNames = [ClusterCheckpoints.fileName(sequence: checkpointSequence), BackupLayout.quorumLogName]
    }

    deinit { close() }

    /// Releases the node's hold on its files (idempotent).
    public func close() {
        if closed { return }
        closed = true
        onClose()
    }

    /// A chunked reader of one of ``fileNames``.
    public func reader(for name: String) -> any BackupChunkReader {
        if name == BackupLayout.quorumLogName {
            return QuorumLogChunkReader(
                segments: segments, first: manifest.checkpointIndex + 1, last: manifest.lastIndex)
        }
        precondition(name == fileNames[0], "\(name) is not a file of this backup")
        return FileChunkReader(file: checkpoint)
    }

    /// Writes the whole backup into a directory on this machine: every file, then the manifest,
    /// then the marker. The content is checked on the way (log records by ``LogRecordScanner``,
    /// hashes of the bytes written); the checkpoint file must have passed SQLite's integrity
    /// check at its source. (`clusdb backup verify` is the full re-read.)
    /// - Returns: the manifest written.
    @discardableResult
    public func write(to writer: BackupDirectoryWriter) throws(ClusterError) -> BackupManifest {
        do {
            for name in fileNames {
                let sink = try writer.beginFile(name)
                var reader = reader(for: name)
                while let chunk = try reader.next() { try sink.write(chunk) }
                try sink.close()
            }
            return try writer.finish(manifest, verifyBeforeMarker: false)
        } catch {
            writer.discard()
            throw error
        }
    }
}

/// Reads a file of a backup in chunks.
public protocol BackupChunkReader {
    /// The next chunk, nil at the end.
    mutating func next() throws(ClusterError) -> [UInt8]?
}

/// Reads an open file from its start.
struct FileChunkReader: BackupChunkReader {
    let file: SystemFile
    var offset = 0

    mutating func next() throws(ClusterError) -> [UInt8]? {
        let chunk = try file.read(count: BackupSource.chunkBytes, at: offset)
        if chunk.isEmpty { return nil }
        offset += chunk.count
        return chunk
    }
}

/// Produces `quolog.log`: the header, then the framed records first ... last copied from the
/// live segments, which use the same record format.
struct QuorumLogChunkReader: BackupChunkReader {
    let segments: [BackupSource.Segment]
    let first: UInt64
    let last: UInt64
    var headerDone = false
    var expected: UInt64
    var segmentPosition = 0
    var scanner: LogRecordScanner?

    init(segments: [BackupSource.Segment], first: UInt64, last: UInt64) {
        self.segments = segments
        self.first = first
        self.last = last
        expected = first
    }

    mutating func next() throws(ClusterError) -> [UInt8]? {
        if !headerDone {
            headerDone = true
            return QuorumLog.header(firstIndex: first)
        }
        var chunk: [UInt8] = []
        while expected <= last && chunk.count < BackupSource.chunkBytes {
            if scanner == nil {
                // The segment holding `expected`: the last one that starts at or before it.
                guard let position = segments.lastIndex(where: { $0.firstIndex <= expected }) else {
                    throw ClusterError(.clusterLogCorrupt, "no quorum-log segment holds index \(expected)")
                }
                segmentPosition = position
                let file = segments[position].file
                let header: QuorumLog.SegmentHeader
                switch QuorumLog.parseHeader(try file.read(count: QuorumLog.segmentHeaderSize, at: 0)) {
                case .success(let parsed): header = parsed
                case .failure(let problem): throw ClusterError(.clusterLogCorrupt, "\(file.path) \(problem.message)")
                }
                scanner = try LogRecordScanner(file: file, offset: QuorumLog.segmentHeaderSize, format: header.format)
            }
            guard var current = scanner else { preconditionFailure("a scanner was just opened") }
            let step = try current.next()
            scanner = current
            switch step {
            case .record(let entry, let framed):
                if entry.index < expected { continue }
                guard entry.index == expected else {
                    throw ClusterError(.clusterLogCorrupt, "\(segments[segmentPosition].file.path) holds index \(entry.index) where \(expected) belongs")
                }
                if current.format == .current {
                    chunk.append(contentsOf: framed)
                } else {
                    // A segment from an older build: the backup's log is in one format, this one's.
                    LogRecord.append(entry, group: LogRecord.GroupSpan(position: 0, size: 1), to: &chunk)
                }
                expected += 1
            case .endOfFile, .invalid:
                // The segment ends; the next one must start exactly here.
                guard segmentPosition + 1 < segments.count, segments[segmentPosition + 1].firstIndex == expected else {
                    throw ClusterError(.clusterLogCorrupt, "the quorum log has no record \(expected) (backup up to \(last))")
                }
                scanner = nil
            }
        }
        return chunk.isEmpty ? nil : chunk
    }
}
