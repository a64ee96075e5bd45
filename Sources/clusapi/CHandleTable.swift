import ClusAPI
import ClusDBModel
import Foundation
import Synchronization

/// The C library's handles (`HCLUSTER`, `HKEY`, `HREGBATCH`): opaque numbers that name live
/// objects in one table, so that a closed, unknown or wrong-kind handle is answered with
/// `ERROR_INVALID_HANDLE` instead of touching freed memory.
final class CHandleTable: Sendable {
    /// What a handle names.
    enum Object: Sendable {
        case cluster(Cluster)
        case key(CKey)
        case batch(CBatch)
    }

    /// The one table of the process.
    static let shared = CHandleTable()

    /// Handles open at once; beyond it opening fails with `ERROR_NOT_ENOUGH_MEMORY`, so a
    /// program that leaks handles fails clearly instead of growing without end.
    static let openHandlesMax = 1 << 20

    private let state = Mutex<(next: UInt, objects: [UInt: Object])>((1, [:]))

    /// Registers `object` and returns its handle.
    func open(_ object: Object) throws(ClusterError) -> OpaquePointer {
        let id = try state.withLock { (state) throws(ClusterError) -> UInt in
            guard state.objects.count < Self.openHandlesMax else {
                throw ClusterError(.notEnoughMemory, "\(Self.openHandlesMax) handles are open; close some")
            }
            let id = state.next
            state.next += 1
            state.objects[id] = object
            return id
        }
        guard let handle = OpaquePointer(bitPattern: id) else { preconditionFailure("handle ids start at 1") }
        return handle
    }

    /// The object a handle names.
    /// - Throws: `ERROR_INVALID_HANDLE` for NULL, closed or unknown handles.
    func object(_ handle: OpaquePointer?) throws(ClusterError) -> Object {
        guard let handle, let object = state.withLock({ $0.objects[UInt(bitPattern: Int(bitPattern: handle))] }) else {
            throw ClusterError(.invalidHandle, "the handle is NULL, closed or unknown")
        }
        return object
    }

    /// Forgets a handle. - Returns: the object it named, nil when there was none.
    @discardableResult
    func close(_ handle: OpaquePointer?) -> Object? {
        guard let handle else { return nil }
        return state.withLock { $0.objects.removeValue(forKey: UInt(bitPattern: Int(bitPattern: handle))) }
    }
}

/// An open registry key (`HKEY`): its cluster and its path from the hive root.
struct CKey: Sendable {
    let cluster: Cluster
    let path: String

    /// The path of `subKey` below this key.
    func child(_ subKey: String) -> String {
        if subKey.isEmpty { return path }
        if path.isEmpty { return subKey }
        return path + "\\" + subKey
    }
}

/// A write batch being built (`HREGBATCH`).
final class CBatch: Sendable {
    let cluster: Cluster
    let batch: Mutex<RegistryBatch>
    /// The first command that could not even be added: the batch then fails at commit.
    let invalid = Mutex<(index: Int, error: ClusterError)?>(nil)

    init(cluster: Cluster, root: String) {
        self.cluster = cluster
        batch = Mutex(RegistryBatch(root: root))
    }
}
