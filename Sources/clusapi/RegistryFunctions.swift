#if canImport(Glibc)
import Glibc
#endif
import ClusAPI
import ClusDBModel

// The cluster registry (`GetClusterKey`, `ClusterReg*`): the C entry points of `include/clusapi.h`.

/// The key a handle names.
private func key(_ handle: OpaquePointer?) throws(ClusterError) -> CKey {
    guard case .key(let key) = try CHandleTable.shared.object(handle) else {
        throw ClusterError(.invalidHandle, "not a registry key handle")
    }
    return key
}

/// Runs a registry call and answers with its Win32 code.
private func call(_ body: () throws(ClusterError) -> Win32Error) -> UInt32 {
    do throws(ClusterError) {
        return try body().rawValue
    } catch {
        return error.code.rawValue
    }
}

/// `HKEY GetClusterKey(HCLUSTER hCluster, REGSAM samDesired)`: the hive's root key.
@_cdecl("GetClusterKey")
public func GetClusterKey(_ handle: OpaquePointer?, _ access: UInt32) -> OpaquePointer? {
    do throws(ClusterError) {
        guard case .cluster(let cluster) = try CHandleTable.shared.object(handle) else {
            throw ClusterError(.invalidHandle, "not a cluster handle")
        }
        return try CHandleTable.shared.open(.key(CKey(cluster: cluster, path: "")))
    } catch {
        CBridge.setLastError(error.code)
        return nil
    }
}

/// `LONG ClusterRegCreateKey(HKEY, LPCWSTR, DWORD, REGSAM, LPSECURITY_ATTRIBUTES, PHKEY, LPDWORD)`.
@_cdecl("ClusterRegCreateKey")
public func ClusterRegCreateKey(
    _ handle: OpaquePointer?, _ subKey: UnsafePointer<wchar_t>?, _ options: UInt32, _ access: UInt32,
    _ security: UnsafeMutableRawPointer?, _ result: UnsafeMutablePointer<OpaquePointer?>?,
    _ disposition: UnsafeMutablePointer<UInt32>?
) -> Int32 {
    Int32(bitPattern: call { () throws(ClusterError) -> Win32Error in
        let parent = try key(handle)
        guard let result, let name = try CBridge.string(subKey) else { throw ClusterError(.invalidParameter, "lpszSubKey and phkResult are required") }
        let path = parent.child(name)
        let created = try CBridge.wait { () throws(ClusterError) in try await parent.cluster.createKey(path) }.get()
        result.pointee = try CHandleTable.shared.open(.key(CKey(cluster: parent.cluster, path: path)))
        disposition?.pointee = created == .createdNewKey ? 1 : 2
        return .success
    })
}

/// `LONG ClusterRegOpenKey(HKEY hKey, LPCWSTR lpszSubKey, REGSAM samDesired, PHKEY phkResult)`.
@_cdecl("ClusterRegOpenKey")
public func ClusterRegOpenKey(
    _ handle: OpaquePointer?, _ subKey: UnsafePointer<wchar_t>?, _ access: UInt32, _ result: UnsafeMutablePointer<OpaquePointer?>?
) -> Int32 {
    Int32(bitPattern: call { () throws(ClusterError) -> Win32Error in
        let parent = try key(handle)
        guard let result, let name = try CBridge.string(subKey) else { throw ClusterError(.invalidParameter, "lpszSubKey and phkResult are required") }
        let path = parent.child(name)
        try CBridge.wait { () throws(ClusterError) in try await parent.cluster.openKey(path) }.get()
        result.pointee = try CHandleTable.shared.open(.key(CKey(cluster: parent.cluster, path: path)))
        return .success
    })
}

/// `LONG ClusterRegDeleteKey(HKEY hKey, LPCWSTR lpszSubKey)`: a key with subkeys is
/// `ERROR_ACCESS_DENIED`.
@_cdecl("ClusterRegDeleteKey")
public func ClusterRegDeleteKey(_ handle: OpaquePointer?, _ subKey: UnsafePointer<wchar_t>?) -> Int32 {
    Int32(bitPattern: call { () throws(ClusterError) -> Win32Error in
        let parent = try key(handle)
        guard let name = try CBridge.string(subKey), !name.isEmpty else { throw ClusterError(.invalidParameter, "lpszSubKey is required") }
        let path = parent.child(name)
        try CBridge.wait { () throws(ClusterError) in try await parent.cluster.deleteKey(path) }.get()
        return .success
    })
}

/// `LONG ClusterRegCloseKey(HKEY hKey)`.
@_cdecl("ClusterRegCloseKey")
public func ClusterRegCloseKey(_ handle: OpaquePointer?) -> Int32 {
    guard case .key? = CHandleTable.shared.close(handle) else { return Int32(Win32Error.invalidHandle.rawValue) }
    return 0
}

/// `DWORD ClusterRegSetValue(HKEY, LPCWSTR lpszValueName, DWORD dwType, const BYTE *lpData, DWORD cbData)`.
@_cdecl("ClusterRegSetValue")
public func ClusterRegSetValue(
    _ handle: OpaquePointer?, _ valueName: UnsafePointer<wchar_t>?, _ type: UInt32, _ data: UnsafePointer<UInt8>?, _ size: UInt32
) -> UInt32 {
    call { () throws(ClusterError) -> Win32Error in
        let target = try key(handle)
        let name = try CBridge.string(valueName) ?? ""
        let bytes = try CBridge.valueData(data.map { UnsafeRawPointer($0) }, size: size)
        let value = try RegistryValue(type: try ValueType.checked(type), win32Bytes: bytes)
        _ = try CBridge.wait { () throws(ClusterError) in
            try await target.cluster.setValue(key: target.path, name: name, value: value)
        }.get()
        return .success
    }
}

/// `LONG ClusterRegQueryValue(HKEY, LPCWSTR, LPDWORD lpdwValueType, LPBYTE lpData, LPDWORD lpcbData)`.
@_cdecl("ClusterRegQueryValue")
public func ClusterRegQueryValue(
    _ handle: OpaquePointer?, _ valueName: UnsafePointer<wchar_t>?, _ type: UnsafeMutablePointer<UInt32>?,
    _ data: UnsafeMutablePointer<UInt8>?, _ size: UnsafeMutablePointer<UInt32>?
) -> Int32 {
    Int32(bitPattern: call { () throws(ClusterError) -> Win32Error in
        let target = try key(handle)
        let name = try CBridge.string(valueName) ?? ""
        let value = try CBridge.wait { () throws(ClusterError) in try await target.cluster.queryValue(key: target.path, name: name) }.get()
        type?.pointee = value.type.rawValue
        return CBridge.copy(value.win32Bytes, to: data, size: size)
    })
}

/// `DWORD ClusterRegDeleteValue(HKEY hKey, LPCWSTR lpszValueName)`.
@_cdecl("ClusterRegDeleteValue")
public func ClusterRegDeleteValue(_ handle: OpaquePointer?, _ valueName: UnsafePointer<wchar_t>?) -> UInt32 {
    call { () throws(ClusterError) -> Win32Error in
        let target = try key(handle)
        let name = try CBridge.string(valueName) ?? ""
        try CBridge.wait { () throws(ClusterError) in try await target.cluster.deleteValue(key: target.path, name: name) }.get()
        return .success
    }
}

/// `LONG ClusterRegEnumKey(HKEY, DWORD dwIndex, LPWSTR lpszName, LPDWORD lpcchName, PFILETIME)`:
/// subkeys in the service's order; `ERROR_NO_MORE_ITEMS` past the last.
@_cdecl("ClusterRegEnumKey")
public func ClusterRegEnumKey(
    _ handle: OpaquePointer?, _ index: UInt32, _ name: UnsafeMutablePointer<wchar_t>?, _ capacity: UnsafeMutablePointer<UInt32>?,
    _ lastWrite: UnsafeMutableRawPointer?
) -> Int32 {
    Int32(bitPattern: call { () throws(ClusterError) -> Win32Error in
        let target = try key(handle)
        let listing = try CBridge.wait { () throws(ClusterError) in try await target.cluster.enumerate(key: target.path) }.get()
        guard Int(index) < listing.keys.count else { return .noMoreItems }
        // No last-write times are kept: a zero FILETIME.
        lastWrite?.initializeMemory(as: UInt8.self, repeating: 0, count: 8)
        return CBridge.copy(listing.keys[Int(index)], to: name, capacity: capacity)
    })
}

/// `DWORD ClusterRegEnumValue(HKEY, DWORD, LPWSTR, LPDWORD, LPDWORD lpdwType, LPBYTE, LPDWORD)`.
@_cdecl("ClusterRegEnumValue")
public func ClusterRegEnumValue(
    _ handle: OpaquePointer?, _ index: UInt32, _ name: UnsafeMutablePointer<wchar_t>?, _ capacity: UnsafeMutablePointer<UInt32>?,
    _ type: UnsafeMutablePointer<UInt32>?, _ data: UnsafeMutablePointer<UInt8>?, _ size: UnsafeMutablePointer<UInt32>?
) -> UInt32 {
    call { () throws(ClusterError) -> Win32Error in
        let target = try key(handle)
        let listing = try CBridge.wait { () throws(ClusterError) in try await target.cluster.enumerate(key: target.path) }.get()
        guard Int(index) < listing.values.count else { return .noMoreItems }
        let entry = listing.values[Int(index)]
        type?.pointee = entry.value.type.rawValue
        let nameResult = CBridge.copy(entry.name, to: name, capacity: capacity)
        let dataResult = CBridge.copy(entry.value.win32Bytes, to: data, size: size)
        return nameResult != .success ? nameResult : dataResult
    }
}
