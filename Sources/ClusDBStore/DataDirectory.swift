#if canImport(Glibc)
import Glibc
#endif
import ClusDBModel
import Foundation
import Synchronization

/// A node's data directory, locked for the lifetime of this value's owner.
///
/// ```
/// DIR/LOCK                      flock(2) target: one process per data directory
/// DIR/node.json                 the node's identity (NodeIdentity)
/// DIR/hive.sqlite (-wal, -shm)  the live hive
/// DIR/quorum/chk<NNNN>.tmp      cluster checkpoints
/// DIR/quorum/log/*.seg          quorum-log segments
/// ```
public final class DataDirectory: Sendable {
    /// The directory.
    public let path: String
    private let lockDescriptor: Int32
    private let unlocked = Mutex(false)

    /// The identity file.
    public var identityPath: String { FileSystem.join(path, "node.json") }
    /// The live hive database.
    public var hivePath: String { FileSystem.join(path, "hive.sqlite") }
    /// The quorum directory: checkpoints and the log.
    public var quorumDirectory: String { FileSystem.join(path, "quorum") }
    /// The quorum-log segments.
    public var logDirectory: String { FileSystem.join(quorumDirectory, "log") }

    /// Opens (creating, mode 0700) a data directory and takes its lock.
    /// - Throws: `ERROR_SHARING_VIOLATION` when another process holds it; I/O errors.
    public init(path: String) throws(ClusterError) {
        let trimmed = try Self.checkedPath(path)
        try FileSystem.makeDirectories(trimmed)
        self.path = trimmed
        lockDescriptor = try Self.lock(FileSystem.join(trimmed, "LOCK"))
    }

    /// Takes the lock of an existing data directory without creating anything (a dry run
    /// reads a data directory and must not change it). A directory without a `LOCK` file was
    /// never used by a node, so there is nothing to lock.
    /// - Returns: nil when there is no `LOCK` file.
    /// - Throws: `ERROR_SHARING_VIOLATION` when a running node holds it.
    public static func lockExisting(path: String) throws(ClusterError) -> DataDirectory? {
        let trimmed = try checkedPath(path)
        let lockPath = FileSystem.join(trimmed, "LOCK")
        guard FileSystem.exists(lockPath) else { return nil }
        return DataDirectory(path: trimmed, lockDescriptor: try lock(lockPath))
    }

    private init(path: String, lockDescriptor: Int32) {
        self.path = path
        self.lockDescriptor = lockDescriptor
    }

    private static func checkedPath(_ path: String) throws(ClusterError) -> String {
        var trimmed = path
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        guard !trimmed.isEmpty else { throw ClusterError(.invalidParameter, "the data directory path is empty") }
        if FileSystem.exists(trimmed) && !FileSystem.isDirectory(trimmed) {
            throw ClusterError(.directory, "data directory \(trimmed) is a file")
        }
        return trimmed
    }

    deinit { unlock() }

    /// Releases the lock now (idempotent); the directory must not be written afterwards.
    public func unlock() {
        let wasUnlocked = unlocked.withLock { value in
            defer { value = true }
            return value
        }
        if wasUnlocked { return }
        flock(lockDescriptor, LOCK_UN)
        close(lockDescriptor)
    }

    /// Takes an exclusive, non-blocking `flock` on `lockPath`.
    /// - Throws: `ERROR_SHARING_VIOLATION` when another open file description holds it.
    static func lock(_ lockPath: String) throws(ClusterError) -> Int32 {
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        if fd < 0 { throw FileSystem.error(errno, "open", lockPath) }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            close(fd)
            if code == EWOULDBLOCK {
                throw ClusterError(
                    .sharingViolation,
                    "data directory \(FileSystem.parent(of: lockPath)) is in use by another clusdb process")
            }
            throw FileSystem.error(code, "flock", lockPath)
        }
        return fd
    }

    /// Reads the identity, nil when the directory has none yet.
    /// - Throws: `ERROR_INVALID_DATA` for an unreadable identity file.
    public func readIdentity() throws(ClusterError) -> NodeIdentity? {
        guard FileSystem.exists(identityPath) else { return nil }
        let bytes = try SystemFile(path: identityPath, flags: O_RDONLY).readAll()
        do {
            return try JSONDecoder().decode(NodeIdentity.self, from: Data(bytes))
        } catch {
            throw ClusterError(.invalidData, "\(identityPath) is not a valid node identity: \(error)")
        }
    }

    /// Writes the identity atomically.
    public func writeIdentity(_ identity: NodeIdentity) throws(ClusterError) {
        try FileSystem.writeAtomically(identity.jsonBytes(), to: identityPath, site: SyncSite("identity"))
    }
}

/// Who a node is: its cluster, its own name and id, and its restore generation.
public struct NodeIdentity: Codable, Sendable, Equatable {
    /// Version of this file's format.
    public var formatVersion: Int
    /// The cluster's name.
    public var clusterName: String
    /// The cluster's id (UUID), minted when the cluster was created or restored.
    public var clusterID: String
    /// This node's name.
    public var nodeName: String
    /// This node's id (UUID), never reused.
    public var nodeID: String
    /// Bumped by each restore; a higher generation's database wins when nodes meet.
    public var restoreGeneration: UInt64
    /// The current term of the quorum log.
    public var currentTerm: UInt64

    /// The identity as `node.json` holds it: sorted, pretty-printed JSON and a newline.
    public func jsonBytes() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do {
            return Array(try encoder.encode(self)) + [0x0A]
        } catch {
            preconditionFailure("NodeIdentity always encodes: \(error)")
        }
    }

    /// Creates an identity.
    public init(
        formatVersion: Int = 1, clusterName: String, clusterID: String, nodeName: String, nodeID: String,
        restoreGeneration: UInt64 = 0, currentTerm: UInt64 = 1
    ) {
        self.formatVersion = formatVersion
        self.clusterName = clusterName
        self.clusterID = clusterID
        self.nodeName = nodeName
        self.nodeID = nodeID
        self.restoreGeneration = restoreGeneration
        self.currentTerm = currentTerm
    }
}
