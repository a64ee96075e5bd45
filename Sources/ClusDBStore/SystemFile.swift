#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import ClusDBModel

/// A file descriptor with the few POSIX calls the store needs, each mapping `errno` to a Win32
/// code. Durability rules live here: ``sync()`` stops the process when the kernel reports a failed
/// flush, because after a failed fsync Linux may have dropped the dirty pages and retrying would
/// acknowledge writes that are gone (PostgreSQL's "fsyncgate").
public final class SystemFile {
    /// The open descriptor.
    public let descriptor: Int32
    /// The path it was opened with, for messages.
    public let path: String
    /// True for a directory opened to be synced.
    private let isDirectory: Bool

    /// Opens `path` with `open(2)` flags; new files get `mode` (0600 by default: the content is
    /// sensitive).
    /// - Throws: ``ClusterError`` mapped from `errno`.
    public init(path: String, flags: Int32, mode: mode_t = 0o600) throws(ClusterError) {
        let observer = FileLayer.observer(of: path)
        let creates = observer != nil && flags & O_CREAT != 0 && !FileSystem.exists(path)
        let fd = open(path, flags | O_CLOEXEC, mode)
        if fd < 0 { throw FileSystem.error(errno, "open", path) }
        descriptor = fd
        self.path = path
        isDirectory = flags & O_DIRECTORY != 0
        if let observer {
            if creates {
                observer.didCreateFile(path)
            } else if flags & O_TRUNC != 0 {
                observer.didTruncate(path, length: 0)
            }
        }
    }

    deinit { close(descriptor) }

    /// The file's size in bytes.
    public func size() throws(ClusterError) -> Int {
        var info = stat()
        if fstat(descriptor, &info) != 0 { throw FileSystem.error(errno, "stat", path) }
        return Int(info.st_size)
    }

    /// Writes all of `bytes` at `offset`, retrying short writes and EINTR.
    /// - Throws: ``ClusterError`` (`ERROR_DISK_FULL` for ENOSPC).
    public func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws(ClusterError) {
        let observer = FileLayer.observer(of: path)
        let failure = observer?.writeFailure(path, offset: offset, count: bytes.count)
        let end = failure.map { min($0.bytesWritten, bytes.count) } ?? bytes.count
        var written = 0
        while written < end {
            let result = pwrite(descriptor, bytes.baseAddress! + written, end - written, off_t(offset + written))
            if result < 0 {
                if errno == EINTR { continue }
                throw FileSystem.error(errno, "write", path)
            }
            precondition(result > 0, "pwrite returned 0 for a non-empty buffer")
            written += result
        }
        if let failure {
            // The observer's short write: what reached the file is reported, then the failure.
            if end > 0 { observer?.didWrite(path, offset: offset, bytes: UnsafeRawBufferPointer(rebasing: bytes[..<end])) }
            throw FileSystem.error(failure.code, "write", path)
        }
        observer?.didWrite(path, offset: offset, bytes: bytes)
    }

    /// Writes all of `bytes` at `offset`.
    public func write(_ bytes: [UInt8], at offset: Int) throws(ClusterError) {
        if bytes.isEmpty { return }
        var failure: ClusterError?
        bytes.withUnsafeBytes { buffer in
            do throws(ClusterError) { try write(buffer, at: offset) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// Reads up to `count` bytes at `offset`; fewer only at the end of the file.
    public func read(count: Int, at offset: Int) throws(ClusterError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var total = 0
        while total < count {
            let result = bytes.withUnsafeMutableBytes { buffer in
                pread(descriptor, buffer.baseAddress! + total, count - total, off_t(offset + total))
            }
            if result < 0 {
                if errno == EINTR { continue }
                throw FileSystem.error(errno, "read", path)
            }
            if result == 0 { break }
            total += result
        }
        bytes.removeLast(count - total)
        return bytes
    }

    /// Reads the whole file.
    public func readAll() throws(ClusterError) -> [UInt8] { try read(count: try size(), at: 0) }

    /// Cuts the file to `length` bytes.
    public func truncate(to length: Int) throws(ClusterError) {
        if ftruncate(descriptor, off_t(length)) != 0 { throw FileSystem.error(errno, "truncate", path) }
        FileLayer.observer(of: path)?.didTruncate(path, length: length)
    }

    /// Flushes the file's data (and the metadata needed to read it) to stable storage with
    /// `fdatasync`; a directory (opened with `O_DIRECTORY`) with `fsync`, which is what makes
    /// the entries created, renamed or removed in it durable.
    ///
    /// - Parameter site: names this sync for tests (``SyncSite``).
    /// - Important: a failure stops the process (see the type's discussion); it never returns an
    ///   error that a caller could retry.
    public func sync(_ site: SyncSite) {
        guard mayProceed(site) else { return }
        while (isDirectory ? fsync(descriptor) : fdatasync(descriptor)) != 0 {
            if errno == EINTR { continue }
            FileSystem.haltAfterFailedSync(path: path, errno: errno)
        }
    }

    /// Flushes like ``sync(_:)`` (with `fsync`) but reports a failure instead of stopping the
    /// process: for files that are not the node's own state (a backup being written), whose
    /// failure only fails the operation that writes them.
    /// - Throws: ``ClusterError`` mapped from `errno`.
    public func syncOrThrow(_ site: SyncSite) throws(ClusterError) {
        guard mayProceed(site) else { return }
        while fsync(descriptor) != 0 {
            if errno == EINTR { continue }
            throw FileSystem.error(errno, "fsync", path)
        }
    }

    /// Tells the observer, if any, and asks it whether the sync happens.
    private func mayProceed(_ site: SyncSite) -> Bool {
        guard let observer = FileLayer.observer(of: path) else { return true }
        return isDirectory ? observer.willSyncDirectory(path, site: site) : observer.willSyncFile(path, site: site)
    }
}
