#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import ClusDBModel

/// Path-level file operations with the store's durability rules: every rename and every created
/// or removed file is followed by an fsync of its directory.
public enum FileSystem {
    /// Maps `errno` to a ``ClusterError`` with the Win32 code of `docs/wsfc-spec` §6's POSIX table.
    public static func error(_ code: Int32, _ operation: String, _ path: String) -> ClusterError {
        let text = String(cString: strerror(code))
        let win32: Win32Error
        switch code {
        case ENOENT: win32 = .pathNotFound
        case ENOTDIR: win32 = .directory
        case EACCES, EPERM, EROFS: win32 = .accessDenied
        case ENOSPC, EDQUOT: win32 = .diskFull
        case EEXIST: win32 = .alreadyExists
        case EBUSY, EWOULDBLOCK: win32 = .sharingViolation
        case ENOMEM: win32 = .notEnoughMemory
        case ENAMETOOLONG, EINVAL: win32 = .invalidParameter
        default: win32 = .invalidData
        }
        return ClusterError(win32, "\(operation) \(path): \(text)")
    }

    /// Stops the process after a failed fsync; see ``SystemFile/sync(_:)``.
    public static func haltAfterFailedSync(path: String, errno code: Int32) -> Never {
        let message = "clusdb: fatal: fsync of \(path) failed (\(String(cString: strerror(code)))); "
            + "stopping so that no write is acknowledged that the disk may have dropped\n"
        _ = message.withCString { write(2, $0, strlen($0)) }
        exit(70)
    }

    /// True when something exists at `path`.
    public static func exists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0
    }

    /// True when `path` is a directory.
    public static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// Creates a directory with mode 0700 unless it exists, and fsyncs its parent.
    public static func makeDirectory(_ path: String) throws(ClusterError) {
        if isDirectory(path) { return }
        try createDirectory(path)
        try syncDirectory(parent(of: path), site: SyncSite("directory.create"))
    }

    /// Creates a directory with mode 0700 (an existing one is fine); no fsync of its parent,
    /// which the caller does.
    public static func createDirectory(_ path: String) throws(ClusterError) {
        if mkdir(path, 0o700) != 0 {
            if errno == EEXIST && isDirectory(path) { return }
            throw error(errno, "mkdir", path)
        }
        FileLayer.observer(of: path)?.didMakeDirectory(path)
    }

    /// Creates a directory and its missing parents, each with mode 0700.
    public static func makeDirectories(_ path: String) throws(ClusterError) {
        if isDirectory(path) { return }
        let up = parent(of: path)
        if up != path && !isDirectory(up) { try makeDirectories(up) }
        try makeDirectory(path)
    }

    /// The directory part of a path (`.` for a bare name).
    public static func parent(of path: String) -> String {
        var trimmed = path
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return "." }
        if slash == trimmed.startIndex { return "/" }
        return String(trimmed[..<slash])
    }

    /// `directory/name`.
    public static func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    /// Fsyncs a directory so that creations, renames and removals in it are durable.
    public static func syncDirectory(_ path: String, site: SyncSite) throws(ClusterError) {
        let directory = try SystemFile(path: path, flags: O_RDONLY | O_DIRECTORY)
        directory.sync(site)
    }

    /// The names in a directory, without `.` and `..`, sorted.
    public static func list(_ path: String) throws(ClusterError) -> [String] {
        guard let handle = opendir(path) else { throw error(errno, "opendir", path) }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Removes a file, or a directory with everything in it, if it exists. Symbolic links are
    /// removed, never followed. No directory fsync; callers batch that.
    public static func removeTree(_ path: String) throws(ClusterError) {
        var info = stat()
        if lstat(path, &info) != 0 {
            if errno == ENOENT { return }
            throw error(errno, "stat", path)
        }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            for name in try list(path) { try removeTree(join(path, name)) }
            if rmdir(path) != 0 {
                if errno != ENOENT { throw error(errno, "rmdir", path) }
            } else {
                FileLayer.observer(of: path)?.didRemove(path)
            }
        } else {
            try removeFile(path)
        }
    }

    /// Fsyncs a directory, reporting a failure instead of stopping the process (see
    /// ``SystemFile/syncOrThrow(_:)``).
    public static func syncDirectoryOrThrow(_ path: String, site: SyncSite) throws(ClusterError) {
        try SystemFile(path: path, flags: O_RDONLY | O_DIRECTORY).syncOrThrow(site)
    }

    /// Removes a file if it exists (no directory fsync; callers batch that).
    public static func removeFile(_ path: String) throws(ClusterError) {
        if unlink(path) != 0 {
            if errno != ENOENT { throw error(errno, "unlink", path) }
            return
        }
        FileLayer.observer(of: path)?.didRemove(path)
    }

    /// Renames `from` to `to` (atomic on one file system) and fsyncs the target's directory
    /// (`site.directory`).
    public static func renameFile(_ from: String, to: String, site: SyncSite) throws(ClusterError) {
        try renameWithoutSync(from, to: to)
        try syncDirectory(parent(of: to), site: site.directory)
    }

    /// Renames `from` to `to` without a directory fsync (the caller batches it).
    public static func renameWithoutSync(_ from: String, to: String) throws(ClusterError) {
        if rename(from, to) != 0 { throw error(errno, "rename", from) }
        FileLayer.observer(of: to)?.didRename(from, to: to)
    }

    /// Writes a whole file atomically: a temporary sibling, fsync, rename, directory fsync.
    /// A crash leaves either the old content or the new, never a mix.
    /// The file's sync is `site.file`, the directory's `site.directory`.
    public static func writeAtomically(_ bytes: [UInt8], to path: String, site: SyncSite) throws(ClusterError) {
        let temporary = path + ".new"
        do {
            let file = try SystemFile(path: temporary, flags: O_WRONLY | O_CREAT | O_TRUNC)
            try file.write(bytes, at: 0)
            file.sync(site.file)
        }
        try renameFile(temporary, to: path, site: site)
    }

    /// Copies a file's bytes to a new file (0600), fsynced. The kernel copies (`sendfile`, no trip
    /// through user space) where it can; otherwise in chunks.
    public static func copyFile(_ from: String, to: String, site: SyncSite) throws(ClusterError) {
        let source = try SystemFile(path: from, flags: O_RDONLY)
        let target = try SystemFile(path: to, flags: O_WRONLY | O_CREAT | O_TRUNC)
        let size = try source.size()
        var offset = 0
        var kernelCopy = true
        while offset < size {
            if kernelCopy {
                var input = off_t(offset)
                let copied = sendfile(target.descriptor, source.descriptor, &input, size - offset)
                if copied > 0 {
                    offset += copied
                    continue
                }
                if copied < 0 && errno == EINTR { continue }
                if copied < 0 && errno != ENOSYS && errno != EINVAL {
                    throw error(errno, "sendfile", to)
                }
                kernelCopy = false
            }
            let bytes = try source.read(count: min(copyChunkBytes, size - offset), at: offset)
            if bytes.isEmpty { break }
            try target.write(bytes, at: offset)
            offset += bytes.count
        }
        target.sync(site)
    }

    /// Bytes per read when a copy goes through user space.
    static let copyChunkBytes = 4 << 20
}
