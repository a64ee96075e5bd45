import ClusAPI
import ClusDBModel
import Foundation

/// Printing for the commands: results on stdout, the one-line error on stderr.
enum Output {
    /// Prints `clusdb: ERROR_NAME (code): message` on stderr.
    static func errorLine(_ error: ClusterError) {
        var line = "clusdb: \(error.description)"
        if let index = error.failedCommand { line += " (failed command: \(index))" }
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// Prints the error line and exits 1.
    static func fail(_ error: ClusterError) -> Never {
        errorLine(error)
        exit(1)
    }

    /// Writes raw bytes to stdout.
    static func write(_ data: Data) {
        FileHandle.standardOutput.write(data)
    }

    /// Prints a value as one line of JSON with sorted members.
    static func json(_ value: some Encodable) throws(ClusterError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            write(try encoder.encode(value) + Data("\n".utf8))
        } catch {
            throw ClusterError(.invalidData, "the output could not be encoded: \(error)")
        }
    }

    /// How a value name shows in text output.
    static func displayName(_ name: String) -> String { name.isEmpty ? "(default)" : name }
}
