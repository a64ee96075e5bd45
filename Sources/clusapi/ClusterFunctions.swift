#if canImport(Glibc)
import Glibc
#endif
import ClusAPI
import ClusDBModel

// Clusters, backup and restore: the C entry points of `include/clusapi.h`.

/// `HCLUSTER OpenCluster(LPCWSTR lpszClusterName)`.
@_cdecl("OpenCluster")
public func OpenCluster(_ name: UnsafePointer<wchar_t>?) -> OpaquePointer? {
    let cluster: Cluster
    do throws(ClusterError) {
        let text = try CBridge.string(name)
        cluster = try CBridge.wait { () throws(ClusterError) in try await openCluster(text) }.get()
        return try CHandleTable.shared.open(.cluster(cluster))
    } catch {
        CBridge.setLastError(error.code)
        return nil
    }
}

/// `BOOL CloseCluster(HCLUSTER hCluster)`.
@_cdecl("CloseCluster")
public func CloseCluster(_ handle: OpaquePointer?) -> Int32 {
    guard case .cluster(let cluster)? = CHandleTable.shared.close(handle) else {
        CBridge.setLastError(.invalidHandle)
        return 0
    }
    cluster.close()
    return 1
}

/// `DWORD GetLastError(void)`: the error of this thread's last failed handle-returning call.
@_cdecl("GetLastError")
public func GetLastError() -> UInt32 { CBridge.lastError() }

/// `DWORD BackupClusterDatabase(HCLUSTER hCluster, LPCWSTR lpszPathName)`.
@_cdecl("BackupClusterDatabase")
public func BackupClusterDatabase(_ handle: OpaquePointer?, _ path: UnsafePointer<wchar_t>?) -> UInt32 {
    do throws(ClusterError) {
        guard case .cluster(let cluster) = try CHandleTable.shared.object(handle) else {
            throw ClusterError(.invalidHandle, "not a cluster handle")
        }
        guard let directory = try CBridge.string(path) else { throw ClusterError(.invalidParameter, "the backup path is NULL") }
        return CBridge.code { () throws(ClusterError) in _ = try await cluster.backupClusterDatabase(to: directory) }
    } catch {
        return error.code.rawValue
    }
}

/// `DWORD RestoreClusterDatabase(LPCWSTR lpszPathName, BOOL bForce, LPCWSTR lpszQuorumDriveLetter)`.
@_cdecl("RestoreClusterDatabase")
public func RestoreClusterDatabase(_ path: UnsafePointer<wchar_t>?, _ force: Int32, _ quorum: UnsafePointer<wchar_t>?) -> UInt32 {
    do throws(ClusterError) {
        guard let directory = try CBridge.string(path) else { throw ClusterError(.invalidParameter, "the backup path is NULL") }
        let quorumPath = try CBridge.string(quorum)
        return CBridge.code { () throws(ClusterError) in
            _ = try await restoreClusterDatabase(from: directory, force: force != 0, quorumPath: quorumPath)
        }
    } catch {
        return error.code.rawValue
    }
}
