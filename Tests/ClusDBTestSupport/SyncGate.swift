import ClusDBStore
import Dispatch
import Synchronization

/// A ``FileLayerObserver`` that holds the next sync at one site until the test releases it: a
/// disk that is slow exactly when the test says so, without any timing.
public final class SyncGate: FileLayerObserver, @unchecked Sendable {
    /// The tree watched.
    public let root: String
    /// The sync site held.
    public let site: SyncSite
    private let state = Mutex((armed: true, waiting: false))
    private let opened = DispatchSemaphore(value: 0)

    /// Holds the next sync at `site` under `root`.
    public init(root: String, site: SyncSite) throws {
        self.root = root
        self.site = site
    }

    /// True while a sync is held.
    public var waiting: Bool { state.withLock { $0.waiting } }

    /// Lets the held sync (and every later one) go on.
    public func release() {
        state.withLock { $0.armed = false }
        opened.signal()
    }

    public func willSyncFile(_ path: String, site: SyncSite) -> Bool {
        guard site == self.site, state.withLock({ state -> Bool in
            guard state.armed else { return false }
            state.waiting = true
            return true
        }) else { return true }
        opened.wait()
        state.withLock { $0.waiting = false }
        return true
    }

    public func didCreateFile(_ path: String) {}
    public func didWrite(_ path: String, offset: Int, bytes: UnsafeRawBufferPointer) {}
    public func didTruncate(_ path: String, length: Int) {}
    public func willSyncDirectory(_ path: String, site: SyncSite) -> Bool { true }
    public func didRename(_ from: String, to: String) {}
    public func didRemove(_ path: String) {}
    public func didMakeDirectory(_ path: String) {}
}
