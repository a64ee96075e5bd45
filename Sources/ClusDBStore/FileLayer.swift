import Synchronization

/// The name of one fsync (or fdatasync) in the code: every durable write names the sync that
/// makes it durable, so a test can switch exactly that one off and show that something fails
/// without it (see ``FileLayer`` and ``PowerLossDisk``).
///
/// Helpers that sync twice (a file, then its directory after a rename) derive two names from one:
/// ``file`` and ``directory``.
public struct SyncSite: Hashable, Sendable, CustomStringConvertible {
    /// The site's name, `area.what` (`log.append`, `checkpoint.rename.directory`).
    public let name: String

    /// A named site.
    public init(_ name: String) { self.name = name }

    /// The sync of the file that a helper writes under this site's name.
    public var file: SyncSite { SyncSite(name + ".file") }
    /// The sync of the directory that a helper renames into or creates in under this site's name.
    public var directory: SyncSite { SyncSite(name + ".directory") }

    /// The name.
    public var description: String { name }

    /// The fdatasync of a quorum-log group: the entries count as persisted after it.
    public static let logAppend = SyncSite("log.append")
    /// A new quorum-log segment: its header and zeros (``file``), then its rename (``directory``).
    public static let logSegment = SyncSite("log.segment")
    /// The directory sync after removing segments behind a checkpoint.
    public static let logTruncation = SyncSite("log.truncation")
    /// A suffix of the log removed for a leader's entries: later segments (``directory``, once
    /// per segment), then the cut of the segment holding the first removed entry (``file``).
    public static let logSuffix = SyncSite("log.suffix")
    /// The cut of a torn tail at start-up.
    public static let logTornTail = SyncSite("log.torn-tail")
    /// A cluster checkpoint: the image (``file``) and its rename into place (``directory``).
    public static let checkpoint = SyncSite("checkpoint")
    /// The directory sync after pruning old checkpoints.
    public static let checkpointPrune = SyncSite("checkpoint.prune")
}

/// Receives the file operations of the store under one directory tree: the seam through which
/// tests watch writes and syncs and simulate power loss (``PowerLossDisk``).
///
/// Production installs none: every operation then costs one uncontended atomic load.
public protocol FileLayerObserver: AnyObject, Sendable {
    /// The tree observed (an absolute path without a trailing slash).
    var root: String { get }
    /// `path` was created (it did not exist before the call).
    func didCreateFile(_ path: String)
    /// `bytes` were written at `offset` of `path`.
    func didWrite(_ path: String, offset: Int, bytes: UnsafeRawBufferPointer)
    /// `path` was cut to `length` bytes.
    func didTruncate(_ path: String, length: Int)
    /// `path`'s data is about to be synced at `site`.
    /// - Returns: false to skip the sync (a test showing that the site matters).
    func willSyncFile(_ path: String, site: SyncSite) -> Bool
    /// The directory `path` is about to be synced at `site`.
    /// - Returns: false to skip the sync.
    func willSyncDirectory(_ path: String, site: SyncSite) -> Bool
    /// `from` was renamed to `to`.
    func didRename(_ from: String, to: String)
    /// The file or empty directory `path` was removed.
    func didRemove(_ path: String)
    /// The directory `path` was created.
    func didMakeDirectory(_ path: String)
    /// Asked before `count` bytes are written at `offset` of `path`.
    /// - Returns: how the write fails (a test's full disk), or nil to let it happen. Observers
    ///   that only watch need not implement it.
    func writeFailure(_ path: String, offset: Int, count: Int) -> WriteFailure?
}

extension FileLayerObserver {
    /// Lets every write happen.
    public func writeFailure(_ path: String, offset: Int, count: Int) -> WriteFailure? { nil }
}

/// A write an observer makes fail: the first `bytesWritten` bytes reach the file (a short write,
/// as a disk that fills part-way leaves), then the write fails with `code`.
public struct WriteFailure: Sendable, Equatable {
    /// The `errno` the write fails with.
    public var code: Int32
    /// Bytes written before the failure (0: none).
    public var bytesWritten: Int

    /// Creates one.
    public init(code: Int32, bytesWritten: Int = 0) {
        precondition(bytesWritten >= 0, "a count of bytes")
        self.code = code
        self.bytesWritten = bytesWritten
    }
}

/// The registry of ``FileLayerObserver``s: ``SystemFile`` and ``FileSystem`` report each
/// operation on a path to the observer whose root holds it.
public enum FileLayer {
    private static let installed = Atomic<Int>(0)
    private static let observers = Mutex<[any FileLayerObserver]>([])

    /// Starts reporting operations under `observer.root` to it.
    public static func install(_ observer: any FileLayerObserver) {
        observers.withLock { list in
            precondition(!list.contains { $0 === observer }, "an observer is installed once")
            list.append(observer)
            installed.store(list.count, ordering: .sequentiallyConsistent)
        }
    }

    /// Stops reporting to `observer`.
    public static func remove(_ observer: any FileLayerObserver) {
        observers.withLock { list in
            list.removeAll { $0 === observer }
            installed.store(list.count, ordering: .sequentiallyConsistent)
        }
    }

    /// The observer of `path`, if any: the fast path when none is installed is one atomic load.
    @inline(__always)
    static func observer(of path: String) -> (any FileLayerObserver)? {
        if installed.load(ordering: .relaxed) == 0 { return nil }
        return observers.withLock { list in
            list.first { path == $0.root || path.hasPrefix($0.root + "/") }
        }
    }
}
