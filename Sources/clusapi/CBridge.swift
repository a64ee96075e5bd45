#if canImport(Glibc)
import Glibc
#endif
import ClusDBModel
import Dispatch
import Synchronization

/// Conversions and calling conventions between C callers and the async Swift library.
enum CBridge {
    /// Longest wide string read from a caller (a registry value name is at most 16,383 units;
    /// paths are longer): a missing NUL stops here instead of reading without end.
    static let wideStringMaxCharacters = 1 << 16

    /// The error of the last failed call that reports through `GetLastError`, per thread.
    nonisolated(unsafe) static var lastErrorKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    static func setLastError(_ code: Win32Error) {
        pthread_setspecific(lastErrorKey, UnsafeRawPointer(bitPattern: UInt(code.rawValue) + 1))
    }

    static func lastError() -> UInt32 {
        guard let value = pthread_getspecific(lastErrorKey) else { return 0 }
        return UInt32(UInt(bitPattern: value) - 1)
    }

    /// Reads a NUL-terminated `wchar_t` string (UTF-32 on Linux); nil for a NULL pointer.
    /// - Throws: `ERROR_INVALID_PARAMETER` for a code point that is not a Unicode scalar or a
    ///   string without NUL within ``wideStringMaxCharacters``.
    static func string(_ pointer: UnsafePointer<wchar_t>?) throws(ClusterError) -> String? {
        guard let pointer else { return nil }
        var scalars = String.UnicodeScalarView()
        var index = 0
        while pointer[index] != 0 {
            guard index < wideStringMaxCharacters else {
                throw ClusterError(.invalidParameter, "a string argument has no terminating NUL within \(wideStringMaxCharacters) characters")
            }
            guard let scalar = Unicode.Scalar(UInt32(bitPattern: Int32(pointer[index]))) else {
                throw ClusterError(.invalidParameter, "a string argument holds the invalid code point \(pointer[index])")
            }
            scalars.append(scalar)
            index += 1
        }
        return String(scalars)
    }

    /// Reads a caller's value data (`lpData`, `cbData`), the same way in single calls and batch
    /// commands: NULL data with a non-zero size is refused, and so is a size over the largest
    /// value before a single byte is read (a wrong `cbData` must fail, not read past the
    /// caller's buffer).
    /// - Throws: `ERROR_INVALID_PARAMETER` naming the problem.
    static func valueData(_ data: UnsafeRawPointer?, size: UInt32) throws(ClusterError) -> [UInt8] {
        guard Int(size) <= Limits.valueDataMaxBytes else {
            throw ClusterError(.invalidParameter, "cbData is \(size) bytes; a value holds at most \(Limits.valueDataMaxBytes)")
        }
        guard let data else {
            guard size == 0 else { throw ClusterError(.invalidParameter, "lpData is NULL but cbData is \(size)") }
            return []
        }
        return Array(UnsafeRawBufferPointer(start: data, count: Int(size)))
    }

    /// Copies `text` with its NUL into a caller's buffer of `*capacity` characters. Sets
    /// `*capacity` to the length without the NUL; `ERROR_MORE_DATA` when it does not fit.
    static func copy(_ text: String, to buffer: UnsafeMutablePointer<wchar_t>?, capacity: UnsafeMutablePointer<UInt32>?) -> Win32Error {
        guard let capacity else { return .invalidParameter }
        let scalars = Array(text.unicodeScalars)
        let room = Int(capacity.pointee)
        capacity.pointee = UInt32(scalars.count)
        guard let buffer, room > scalars.count else { return .moreData }
        for (offset, scalar) in scalars.enumerated() { buffer[offset] = wchar_t(bitPattern: scalar.value) }
        buffer[scalars.count] = 0
        return .success
    }

    /// Copies bytes into a caller's buffer of `*size` bytes, the Win32 way: NULL data asks only
    /// for the size; too small a buffer gets `ERROR_MORE_DATA` and the needed size.
    static func copy(_ bytes: [UInt8], to buffer: UnsafeMutablePointer<UInt8>?, size: UnsafeMutablePointer<UInt32>?) -> Win32Error {
        guard let size else { return buffer == nil ? .success : .invalidParameter }
        let room = Int(size.pointee)
        size.pointee = UInt32(bytes.count)
        guard let buffer else { return .success }
        guard room >= bytes.count else { return .moreData }
        bytes.withUnsafeBufferPointer { source in
            if let base = source.baseAddress { buffer.update(from: base, count: bytes.count) }
        }
        return .success
    }

    /// Runs an async call to completion on the calling (C) thread.
    static func wait<T: Sendable>(_ body: @escaping @Sendable () async throws(ClusterError) -> T) -> Result<T, ClusterError> {
        let done = DispatchSemaphore(value: 0)
        let result = ResultBox<T>()
        Task.detached {
            let outcome: Result<T, ClusterError>
            do throws(ClusterError) {
                outcome = .success(try await body())
            } catch {
                outcome = .failure(error)
            }
            result.value.withLock { $0 = outcome }
            done.signal()
        }
        done.wait()
        return result.value.withLock { $0! }
    }

    /// Runs a call that answers with a Win32 code.
    static func code(_ body: @escaping @Sendable () async throws(ClusterError) -> Void) -> UInt32 {
        switch wait(body) {
        case .success: return Win32Error.success.rawValue
        case .failure(let error): return error.code.rawValue
        }
    }
}

/// Carries a result from the task back to the waiting C thread.
final class ResultBox<T: Sendable>: Sendable {
    let value = Mutex<Result<T, ClusterError>?>(nil)
}
