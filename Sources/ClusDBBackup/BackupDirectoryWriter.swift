#if canImport(Glibc)
import Glibc
#endif
import ClusDBModel
import ClusDBStore
import Crypto

/// Writes a backup directory in the order that keeps it honest: a directory never looks complete
/// (marker present) unless every file the manifest lists is written, fsynced and matches.
///
/// 1. ``init(path:)`` checks the path (`DESIGN.md` §4: a file is `ERROR_DIRECTORY`, a missing
///    parent `ERROR_PATH_NOT_FOUND`, no permission `ERROR_ACCESS_DENIED`), creates the directory
///    (0700) when missing, and when it holds an earlier backup removes its marker first, then
///    the rest of it. A directory holding anything that is not part of a backup is refused with
///    `ERROR_ALREADY_EXISTS`: a backup never deletes files it did not write.
/// 2. ``beginFile(_:)`` writes each file (0600), hashing it on the way, and fsyncs it.
/// 3. ``finish(_:)`` fsyncs the directory, writes the manifest, fsyncs again, and only then
///    creates the 0-byte, mode-0444 marker.
///
/// A failure or a kill at any point leaves no marker, so the directory reads as incomplete, and
/// the next backup to it replaces what is there.
public final class BackupDirectoryWriter {
    /// The backup directory, without a trailing slash.
    public let path: String
    /// The files written so far, in order.
    public private(set) var files: [BackupManifest.File] = []

    /// Checks `path` and prepares the directory as the type describes.
    public init(path: String) throws(ClusterError) {
        self.path = try Self.prepare(path)
    }

    /// Starts writing `relativePath` (a name of ``BackupLayout``); close the sink to finish it.
    public func beginFile(_ relativePath: String) throws(ClusterError) -> BackupFileSink {
        precondition(BackupLayout.isListablePath(relativePath), "\(relativePath) is not a file of the backup layout")
        precondition(!files.contains { $0.path == relativePath }, "\(relativePath) is written twice")
        let components = relativePath.split(separator: "/")
        if components.count == 2 {
            let folder = FileSystem.join(path, String(components[0]))
            if !FileSystem.isDirectory(folder) {
                try FileSystem.createDirectory(folder)
            }
        }
        let file = try SystemFile(path: FileSystem.join(path, relativePath), flags: O_WRONLY | O_CREAT | O_TRUNC, mode: 0o600)
        return BackupFileSink(file: file, relativePath: relativePath) { [self] entry in files.append(entry) }
    }

    /// Writes the manifest (with ``files`` as its file list) and then the completion marker.
    /// - Parameter verifyBeforeMarker: re-read everything written and run ``BackupVerifier`` on
    ///   it before the marker goes in, so that a marker always stands for a backup that verified.
    /// - Returns: the manifest as written.
    @discardableResult
    public func finish(_ manifest: BackupManifest, verifyBeforeMarker: Bool = true) throws(ClusterError) -> BackupManifest {
        var complete = manifest
        complete.files = files
        try complete.check()
        for folder in Set(files.compactMap { $0.path.split(separator: "/").count == 2 ? $0.path.split(separator: "/")[0] : nil }) {
            try FileSystem.syncDirectoryOrThrow(FileSystem.join(path, String(folder)), site: .backupFolder)
        }
        try FileSystem.syncDirectoryOrThrow(path, site: .backupFiles)
        let manifestFile = try SystemFile(
            path: FileSystem.join(path, BackupLayout.manifestName), flags: O_WRONLY | O_CREAT | O_TRUNC, mode: 0o600)
        try manifestFile.write(complete.jsonBytes(), at: 0)
        try manifestFile.syncOrThrow(BackupSyncSites.manifest.file)
        try FileSystem.syncDirectoryOrThrow(path, site: BackupSyncSites.manifest.directory)
        if verifyBeforeMarker {
            do throws(ClusterError) {
                _ = try BackupVerifier.verify(path, requireMarker: false)
            } catch {
                throw ClusterError(error.code, "the backup written to \(path) does not verify: \(error.message)")
            }
        }
        Failpoint.hit("backup-before-marker")
        let marker = FileSystem.join(path, BackupLayout.markerName)
        do { _ = try SystemFile(path: marker, flags: O_WRONLY | O_CREAT | O_EXCL, mode: 0o444) }
        // The mode argument is filtered by the umask; the marker's mode is part of the contract.
        chmod(marker, 0o444)
        try FileSystem.syncDirectoryOrThrow(path, site: .backupMarker)
        return complete
    }

    /// Removes what this writer wrote (after a failure), best effort: without a marker the
    /// directory already reads as incomplete; this only frees the space.
    public func discard() {
        for file in files { try? FileSystem.removeFile(FileSystem.join(path, file.path)) }
        for name in (try? FileSystem.list(path)) ?? [] where BackupLayout.isOwnedEntry(name) {
            try? FileSystem.removeTree(FileSystem.join(path, name))
        }
        try? FileSystem.syncDirectoryOrThrow(path, site: SyncSite("backup.discard"))
    }

    /// Checks a backup path without changing anything: the errors ``init(path:)`` would throw
    /// for the path itself, so a caller can fail fast before it starts a transfer.
    /// - Returns: the path without trailing slashes.
    @discardableResult
    public static func checkPath(_ given: String) throws(ClusterError) -> String {
        var path = given
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        guard !path.isEmpty else { throw ClusterError(.invalidParameter, "the backup path is empty") }
        guard !path.utf8.contains(0) else { throw ClusterError(.invalidParameter, "the backup path contains a NUL character") }
        var info = stat()
        if stat(path, &info) == 0 {
            guard (info.st_mode & S_IFMT) == S_IFDIR else {
                throw ClusterError(.directory, "\(path) is a file; a backup path names a directory")
            }
        } else if errno == ENOENT {
            let parent = FileSystem.parent(of: path)
            guard FileSystem.isDirectory(parent) else {
                throw ClusterError(.pathNotFound, "the parent directory \(parent) of \(path) does not exist")
            }
            if access(parent, W_OK | X_OK) != 0 { throw ClusterError(.accessDenied, "no permission to create \(path)") }
            return path
        } else {
            throw FileSystem.error(errno, "stat", path)
        }
        if access(path, W_OK | X_OK) != 0 { throw ClusterError(.accessDenied, "no permission to write in \(path)") }
        if let stranger = try FileSystem.list(path).first(where: { !BackupLayout.isOwnedEntry($0) }) {
            throw ClusterError(
                .alreadyExists,
                "\(path) holds \"\(stranger)\", which is not part of a ClusDB backup; back up into an empty or new directory")
        }
        return path
    }

    /// Checks the path, creates the directory or clears the earlier backup in it.
    /// - Returns: the path without trailing slashes.
    static func prepare(_ given: String) throws(ClusterError) -> String {
        let path = try checkPath(given)
        if !FileSystem.exists(path) {
            try FileSystem.createDirectory(path)
            try FileSystem.syncDirectoryOrThrow(FileSystem.parent(of: path), site: SyncSite("backup.create"))
            Failpoint.hit("backup-after-clear")
            return path
        }
        let names = try FileSystem.list(path)
        // The earlier backup stops looking complete before anything of it changes.
        if names.contains(BackupLayout.markerName) {
            try FileSystem.removeFile(FileSystem.join(path, BackupLayout.markerName))
            try FileSystem.syncDirectoryOrThrow(path, site: .backupUnmark)
        }
        for name in names where name != BackupLayout.markerName {
            guard BackupLayout.isOwnedEntry(name) else {
                throw ClusterError(.alreadyExists, "\(path) gained \"\(name)\" while the backup started; nothing else was removed")
            }
            try FileSystem.removeTree(FileSystem.join(path, name))
        }
        if chmod(path, 0o700) != 0 { throw FileSystem.error(errno, "chmod", path) }
        try FileSystem.syncDirectoryOrThrow(path, site: SyncSite("backup.clear"))
        Failpoint.hit("backup-after-clear")
        return path
    }
}

/// One file of a backup being written: buffers writes, hashes them, and on ``close()`` fsyncs
/// the file and records its size and SHA-256.
public final class BackupFileSink {
    /// Bytes buffered before one `pwrite`.
    public static let writeBufferBytes = 1 << 20
    /// Bytes written between fsyncs. Flushing as the file grows keeps the kernel from holding
    /// hundreds of megabytes of dirty pages for one final fsync, which would queue the node's
    /// own log fdatasyncs behind it and stall writes while a large backup finishes.
    public static let syncIntervalBytes = 16 << 20

    private let file: SystemFile
    private let relativePath: String
    private let onClose: (BackupManifest.File) -> Void
    private var hasher = SHA256()
    private var buffer: [UInt8] = []
    private var written = 0
    private var syncedThrough = 0
    private var closed = false

    init(file: SystemFile, relativePath: String, onClose: @escaping (BackupManifest.File) -> Void) {
        self.file = file
        self.relativePath = relativePath
        self.onClose = onClose
        buffer.reserveCapacity(Self.writeBufferBytes)
    }

    /// Bytes accepted so far.
    public var size: Int { written + buffer.count }

    /// Appends bytes to the file.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(ClusterError) {
        precondition(!closed, "write after close")
        hasher.update(bufferPointer: bytes)
        if buffer.count + bytes.count > Self.writeBufferBytes { try flush() }
        if bytes.count >= Self.writeBufferBytes {
            try file.write(bytes, at: written)
            written += bytes.count
            try syncIfDue()
        } else {
            buffer.append(contentsOf: bytes)
        }
    }

    /// Appends bytes to the file.
    public func write(_ bytes: some Collection<UInt8>) throws(ClusterError) {
        var failure: ClusterError?
        let done: Void? = bytes.withContiguousStorageIfAvailable { storage in
            do throws(ClusterError) { try write(UnsafeRawBufferPointer(storage)) } catch { failure = error }
        }
        if done == nil {
            let copy = Array(bytes)
            copy.withUnsafeBytes { storage in
                do throws(ClusterError) { try write(storage) } catch { failure = error }
            }
        }
        if let failure { throw failure }
    }

    private func flush() throws(ClusterError) {
        if buffer.isEmpty { return }
        try file.write(buffer, at: written)
        written += buffer.count
        buffer.removeAll(keepingCapacity: true)
        try syncIfDue()
    }

    private func syncIfDue() throws(ClusterError) {
        guard written - syncedThrough >= Self.syncIntervalBytes else { return }
        try file.syncOrThrow(SyncSite("backup.file.interval"))
        syncedThrough = written
    }

    /// Writes what is buffered, fsyncs, and records the file.
    /// - Returns: the file's manifest entry.
    @discardableResult
    public func close() throws(ClusterError) -> BackupManifest.File {
        precondition(!closed, "closed twice")
        try flush()
        try file.syncOrThrow(.backupFile)
        closed = true
        let entry = BackupManifest.File(path: relativePath, size: written, sha256: Hex.encode(hasher.finalize()))
        onClose(entry)
        Failpoint.hit("backup-after-file")
        return entry
    }
}

/// The syncs that make a backup complete before its marker says so.
extension SyncSite {
    /// Each backup file, once written.
    public static let backupFile = SyncSite("backup.file")
    /// A resource folder's entries, before the manifest.
    public static let backupFolder = SyncSite("backup.folder")
    /// The backup directory's file entries, before the manifest.
    public static let backupFiles = SyncSite("backup.files")
    /// The marker's entry.
    public static let backupMarker = SyncSite("backup.marker")
    /// The removal of an earlier backup's marker, before anything of it changes.
    public static let backupUnmark = SyncSite("backup.unmark")
}

/// Compound sites of the backup writer.
enum BackupSyncSites {
    /// The manifest: its content (``SyncSite/file``) and its entry (``SyncSite/directory``).
    static let manifest = SyncSite("backup.manifest")
}
