import ClusDBModel
import Foundation

/// Writes a backup stream (``BackupStream``) into a local backup directory.
///
/// The receiver hashes every file itself while writing it; the sender's manifest at the end must
/// list exactly the files received with the same sizes and SHA-256, and only then does
/// ``BackupDirectoryWriter/finish(_:verifyBeforeMarker:)`` write the marker.
/// A stream whose last frames are missing is never complete: the manifest comes last. A stream that breaks
/// off, lies, or ends in an error frame leaves no marker and its files are discarded.
public final class BackupStreamReceiver {
    private let writer: BackupDirectoryWriter
    private var decoder = BackupStream.Decoder()
    private var sink: BackupFileSink?
    private var result: BackupManifest?
    private var failed = false

    /// Receives into `writer`'s directory.
    public init(writer: BackupDirectoryWriter) {
        self.writer = writer
    }

    /// The manifest written, once the stream completed.
    public var manifest: BackupManifest? { result }

    /// Consumes received bytes.
    /// - Throws: the sender's error, or `ERROR_INVALID_DATA` for a broken stream; the directory is
    ///   discarded (no marker) before the error is thrown.
    public func receive(_ bytes: some Collection<UInt8>) throws(ClusterError) {
        precondition(!failed, "receive after a failure")
        do throws(ClusterError) {
            decoder.feed(bytes)
            while let (type, payload) = try decoder.next() { try handle(type, payload) }
        } catch {
            fail()
            throw error
        }
    }

    /// Declares the end of the stream.
    /// - Returns: the manifest written.
    /// - Throws: `ERROR_INVALID_DATA` when the stream ended before its manifest.
    public func finish() throws(ClusterError) -> BackupManifest {
        if let result, decoder.pendingBytes == 0 { return result }
        fail()
        throw ClusterError(.invalidData, "the backup stream ended before it was complete; no backup was written")
    }

    /// Gives up on a stream that broke off (the connection failed): removes what was written.
    /// Nothing happens after a completed or already failed stream.
    public func abandon() {
        if result == nil && !failed { fail() }
    }

    private func fail() {
        failed = true
        sink = nil
        writer.discard()
    }

    private func handle(_ type: BackupStream.FrameType, _ payload: ArraySlice<UInt8>) throws(ClusterError) {
        guard result == nil else { throw ClusterError(.invalidData, "the backup stream goes on after its manifest") }
        switch type {
        case .file:
            guard sink == nil else { throw ClusterError(.invalidData, "the backup stream opens a file inside another") }
            guard let path = String(validating: payload, as: UTF8.self), BackupLayout.isListablePath(path),
                !writer.files.contains(where: { $0.path == path })
            else {
                throw ClusterError(.invalidData, "the backup stream names a file that is not part of a backup")
            }
            sink = try writer.beginFile(path)
        case .data:
            guard let sink else { throw ClusterError(.invalidData, "the backup stream sends data outside a file") }
            try sink.write(payload)
        case .endFile:
            guard let open = sink else { throw ClusterError(.invalidData, "the backup stream closes a file it did not open") }
            try open.close()
            sink = nil
        case .manifest:
            guard sink == nil else { throw ClusterError(.invalidData, "the backup stream ends inside a file") }
            let sent = try BackupManifest(jsonBytes: Array(payload))
            let received = writer.files.sorted { $0.path < $1.path }
            guard sent.files.sorted(by: { $0.path < $1.path }) == received else {
                throw ClusterError(
                    .invalidData, "the files received do not match the sender's manifest (sizes or SHA-256 differ): transfer damage")
            }
            // The bytes written hash to what the sender read from its verified files: the
            // transfer is checked end to end without re-reading the copy.
            result = try writer.finish(sent, verifyBeforeMarker: false)
        case .error:
            let answer: ClientProtocol.ErrorResponse
            do {
                answer = try JSONDecoder().decode(ClientProtocol.ErrorResponse.self, from: Data(payload))
            } catch {
                throw ClusterError(.invalidData, "the backup stream ended with an error that does not decode")
            }
            throw answer.clusterError
        }
    }
}
