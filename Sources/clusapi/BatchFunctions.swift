#if canImport(Glibc)
import Glibc
#endif
import ClusAPI
import ClusDBModel

// Atomic write batches (`ClusterRegCreateBatch`, `ClusterRegBatchAddCommand`,
// `ClusterRegCloseBatch`): the C entry points of `include/clusapi.h`.

/// `LONG ClusterRegCreateBatch(HKEY hKey, HREGBATCH *pHREGBATCH)`: commands act below `hKey`.
@_cdecl("ClusterRegCreateBatch")
public func ClusterRegCreateBatch(_ handle: OpaquePointer?, _ result: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    do throws(ClusterError) {
        guard case .key(let key) = try CHandleTable.shared.object(handle) else {
            throw ClusterError(.invalidHandle, "not a registry key handle")
        }
        guard let result else { throw ClusterError(.invalidParameter, "pHREGBATCH is NULL") }
        result.pointee = try CHandleTable.shared.open(.batch(CBatch(cluster: key.cluster, root: key.path)))
        return 0
    } catch {
        return Int32(bitPattern: error.code.rawValue)
    }
}

/// `LONG ClusterRegBatchAddCommand(HREGBATCH, CLUSTER_REG_COMMAND, LPCWSTR wzName, DWORD dwOptions,
/// LPCVOID lpData, DWORD cbData)`. For `CLUSREG_SET_VALUE`, `dwOptions` is the value type.
@_cdecl("ClusterRegBatchAddCommand")
public func ClusterRegBatchAddCommand(
    _ handle: OpaquePointer?, _ command: UInt32, _ name: UnsafePointer<wchar_t>?, _ options: UInt32,
    _ data: UnsafeRawPointer?, _ size: UInt32
) -> Int32 {
    guard case .batch(let batch)? = try? CHandleTable.shared.object(handle) else {
        return Int32(Win32Error.invalidHandle.rawValue)
    }
    do throws(ClusterError) {
        let text = try CBridge.string(name) ?? ""
        try batch.batch.withLock { (commands) throws(ClusterError) in
            switch command {
            case 1:
                let bytes = try CBridge.valueData(data, size: size)
                commands.setValue(name: text, value: try RegistryValue(type: try ValueType.checked(options), win32Bytes: bytes))
            case 2: try commands.createKey(text)
            case 3: try commands.deleteKey(text)
            case 4: commands.deleteValue(name: text)
            default: throw ClusterError(.invalidParameter, "unknown batch command \(command)")
            }
        }
        return 0
    } catch {
        // The batch is doomed: it fails at commit, naming this command.
        let position = batch.batch.withLock { $0.commands.count }
        batch.invalid.withLock { if $0 == nil { $0 = (position, error) } }
        return Int32(bitPattern: error.code.rawValue)
    }
}

/// `LONG ClusterRegCloseBatch(HREGBATCH, BOOL bCommit, INT *failedCommandNumber)`: with
/// `bCommit` runs every command or none; on failure `*failedCommandNumber` is the failing
/// command's 0-based index (-1: before any ran).
@_cdecl("ClusterRegCloseBatch")
public func ClusterRegCloseBatch(_ handle: OpaquePointer?, _ commit: Int32, _ failed: UnsafeMutablePointer<Int32>?) -> Int32 {
    guard case .batch(let batch)? = CHandleTable.shared.close(handle) else { return Int32(Win32Error.invalidHandle.rawValue) }
    guard commit != 0 else { return 0 }
    if let (index, error) = batch.invalid.withLock({ $0 }) {
        failed?.pointee = Int32(index)
        return Int32(bitPattern: error.code.rawValue)
    }
    let commands = batch.batch.withLock { $0 }
    switch CBridge.wait({ () throws(ClusterError) in try await batch.cluster.executeBatch(commands) }) {
    case .success: return 0
    case .failure(let error):
        failed?.pointee = Int32(error.failedCommand ?? -1)
        return Int32(bitPattern: error.code.rawValue)
    }
}
