#if canImport(Glibc)
import Glibc
#endif
import ClusDBModel
import ClusDBStore

/// The file a streamed snapshot image is written to as its chunks arrive: a temporary name
/// while it grows, then fsynced and renamed (and its directory fsynced) once whole, so a crash
/// never leaves a partial image under the final name. Its calls block: the transport runs them
/// on its thread pool, never on an event loop.
final class ReceivedSnapshotFile: @unchecked Sendable {
    // @unchecked: the transport's connection handler calls it from one thread-pool task at a
    // time (it waits for each call's future before the next), never concurrently.
    /// Where the image ends up.
    let path: String
    private let temporaryPath: String
    private var file: SystemFile?

    /// The sync sites of a received image.
    static let syncSite = SyncSite("snapshot.received")

    /// Creates (or truncates) the temporary file for snapshot `index` at `term` from `node`.
    init(directory: String, from node: UInt64, index: UInt64, term: UInt64) throws(ClusterError) {
        try FileSystem.makeDirectories(directory)
        path = FileSystem.join(directory, "received-\(node)-\(index)-\(term).image")
        temporaryPath = FileSystem.join(directory, ".received-\(node)-\(index)-\(term).image.new")
        file = try SystemFile(path: temporaryPath, flags: O_CREAT | O_TRUNC | O_WRONLY, mode: 0o600)
    }

    /// Writes chunk bytes at `offset`.
    func write(_ bytes: [UInt8], at offset: UInt64) throws(ClusterError) {
        guard let file else { throw ClusterError(.invalidHandle, "the snapshot file \(temporaryPath) is closed") }
        try file.write(bytes, at: Int(offset))
    }

    /// Makes the whole image durable under ``path``.
    func finish() throws(ClusterError) {
        guard let file else { throw ClusterError(.invalidHandle, "the snapshot file \(temporaryPath) is closed") }
        try file.syncOrThrow(Self.syncSite.file)
        self.file = nil
        try FileSystem.renameFile(temporaryPath, to: path, site: Self.syncSite)
    }

    /// Closes and removes an unfinished image.
    func discard() {
        guard file != nil else { return }
        file = nil
        try? FileSystem.removeFile(temporaryPath)
    }
}
