/// The one error type of ClusDB: a Win32 code, a message for people, and for a failed write
/// batch the index of the command that failed.
///
/// Every layer throws `ClusterError`, so a code chosen deep in the storage layer reaches the
/// command line, the HTTP API and the C library unchanged.
public struct ClusterError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The Win32 code.
    public var code: Win32Error
    /// What went wrong, in words, without the code.
    public var message: String
    /// For a failed batch: the 0-based index of the failing command, or -1 when the batch failed
    /// before its first command ran. `nil` for every other operation.
    public var failedCommand: Int?

    /// Creates an error.
    /// - Parameters:
    ///   - code: the Win32 code.
    ///   - message: what went wrong.
    ///   - failedCommand: for a batch, the failing command's index (-1 = before any command).
    public init(_ code: Win32Error, _ message: String, failedCommand: Int? = nil) {
        self.code = code
        self.message = message
        self.failedCommand = failedCommand
    }

    /// The one-line form of the command line: `ERROR_NAME (code): message`.
    public var description: String { "\(code.name) (\(code.rawValue)): \(message)" }
}
