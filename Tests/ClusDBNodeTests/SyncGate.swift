import ClusDBStore
import Dispatch
import Synchronization

/// A ``FileLayerObserver`` that holds the next sync at one site until the test releases it: a
/// disk that is slow exactly when the test says so, without any timing.
final class SyncGate: FileLayerObserver, @unchecked Sendable {
    let root: String
    let site: SyncSite
    private let state = Mutex((armed: true, waiting: false))
    private let opened = DispatchSemaphore(value: 0)

    init(root: String, site: SyncSite) throws {
        self.root = root
        self.site = site
    }

    /// True while a sync is held.
    var waiting: Bool { state.withLock { $0.waiting } }

    /// Lets the held sync (and every later one) go on.
    func release() {
        state.withLock { $0.armed = false }
        opened.signal()
    }

    func willSyncFile(_ path: String, site: SyncSite) -> Bool {
        guard site == self.site, state.withLock({ state -> Bool in
            guard state.armed else { return false }
            state.waiting = true
            return true
        }) else { return true }
        opened.wait()
        state.withLock { $0.waiting = false }
        return true
    }

    func didCreateFile(_ path: String) {}
    func didWrite(_ path: String, offset: Int, bytes: UnsafeRawBufferPointer) {}
    func didTruncate(_ path: String, length: Int) {}
    func willSyncDirectory(_ path: String, site: SyncSite) -> Bool { true }
    func didRename(_ from: String, to: String) {}
    func didRemove(_ path: String) {}
    func didMakeDirectory(_ path: String) {}
}
