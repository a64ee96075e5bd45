#if canImport(Glibc)
import Glibc
#endif
import ClusDBModel
import Foundation

/// Where `reg set` takes DATA from: the argument itself, standard input (`-`) or a file (`@FILE`),
/// as curl and etcdctl users expect.
///
/// - `REG_BINARY` and `REG_NONE` from `-` or `@FILE` take the raw bytes (what a file of binary
///   data holds); as an argument they are hex digits.
/// - Every other type reads UTF-8 text (invalid UTF-8 is refused, naming the byte) and drops one
///   trailing newline (`\n` or `\r\n`), the one `echo` and editors add; a second one stays.
enum ValueData {
    /// The most bytes read from stdin or a file: the value limit, with room for text whose UTF-16
    /// form is larger than its UTF-8 (the value's own check then gives the exact limit).
    static let readMaxBytes = 4 * Limits.valueDataMaxBytes

    /// The value `reg set` sets.
    /// - Throws: `ERROR_INVALID_PARAMETER` for data that does not fit the type (naming the source),
    ///   `ERROR_FILE_NOT_FOUND`, `ERROR_DIRECTORY` or `ERROR_ACCESS_DENIED` for an unreadable file.
    static func value(type: ValueType, argument: String, standardInput: () -> Data) throws(ClusterError) -> RegistryValue {
        let bytes: [UInt8]
        let source: String
        if argument == "-" {
            bytes = Array(standardInput().prefix(readMaxBytes + 1))
            source = "standard input"
        } else if argument.hasPrefix("@") {
            let path = String(argument.dropFirst())
            bytes = try read(path)
            source = "file \(path)"
        } else {
            return try RegistryValue(type: type, commandLineData: argument)
        }
        if bytes.count > readMaxBytes {
            throw ClusterError(.invalidParameter, "\(source) holds more than \(readMaxBytes) bytes; a value holds at most \(Limits.valueDataMaxBytes)")
        }
        if type == .binary || type == .none {
            let value: RegistryValue = type == .binary ? .binary(bytes) : .none(bytes)
            try value.validate()
            return value
        }
        var text = bytes[...]
        if text.last == 0x0A {
            text = text.dropLast()
            if text.last == 0x0D { text = text.dropLast() }
        }
        guard let string = String(validating: text, as: UTF8.self) else {
            let offset = JSONDocument.firstInvalidUTF8(in: text) ?? 0
            throw ClusterError(
                .invalidParameter,
                "\(source) is not valid UTF-8 text: \(JSONDocument.byteName(text[text.startIndex + offset])) at byte offset \(offset) "
                    + "is no UTF-8 character (\(type.name) holds text; for bytes use REG_BINARY)")
        }
        do throws(ClusterError) {
            return try RegistryValue(type: type, commandLineData: string)
        } catch {
            throw ClusterError(error.code, "\(source): \(error.message)")
        }
    }

    /// Reads a whole file (at most ``readMaxBytes`` + 1 bytes).
    static func read(_ path: String) throws(ClusterError) -> [UInt8] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ClusterError(.fileNotFound, "file \(path) does not exist")
        }
        if isDirectory.boolValue { throw ClusterError(.directory, "\(path) is a directory, not a file") }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw ClusterError(.accessDenied, "file \(path) cannot be read (no permission)")
        }
        defer { try? handle.close() }
        do {
            return Array(try handle.read(upToCount: readMaxBytes + 1) ?? Data())
        } catch {
            throw ClusterError(.accessDenied, "file \(path) cannot be read: \(error.localizedDescription)")
        }
    }
}
