import ArgumentParser
import ClusAPI
import ClusDBModel
import Foundation

/// `clusdb reg ...`: the cluster registry.
struct RegCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reg", abstract: "Read and write the cluster registry (the hive).",
        subcommands: [RegSet.self, RegGet.self, RegList.self, RegRemove.self, RegExport.self, RegImport.self])
}

/// `reg set KEYPATH VALUENAME TYPE DATA`: creates the key when missing, then sets the value.
struct RegSet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set", abstract: "Set a value (the key is created when missing).",
        discussion: """
            TYPE is REG_SZ | REG_EXPAND_SZ | REG_MULTI_SZ | REG_DWORD | REG_QWORD | REG_BINARY | REG_NONE.
            DATA: text; for REG_MULTI_SZ a JSON array of strings; for REG_DWORD (0..4294967295) and REG_QWORD
            (0..18446744073709551615) a decimal or 0x-hex number; for REG_BINARY/REG_NONE hex digits.
            DATA "-" reads standard input, "@FILE" reads FILE: raw bytes for REG_BINARY/REG_NONE, UTF-8 text
            (one trailing newline dropped) for the other types.
            """)
    @ParentCommand var root: Clusdb
    @Argument(help: "Key path, backslash-separated, relative to the hive root.") var keyPath: String
    @Argument(help: "Value name (\"\" is the key's default value).") var valueName: String
    @Argument(help: "Value type.") var type: String
    // Collects unrecognized inputs too, so DATA may start with '-' (`-1` is data, not an option).
    @Argument(parsing: .allUnrecognized, help: "Value data; - reads stdin, @FILE reads a file.") var data: [String] = []

    /// DATA without a leading `--`: the usual way to pass a dash-led argument keeps working.
    private var dataArguments: [String] { data.count > 1 && data.first == "--" ? Array(data.dropFirst()) : data }

    func validate() throws {
        let arguments = dataArguments
        if arguments.isEmpty { throw ValidationError("Missing expected argument '<data>'") }
        if arguments.count > 1 {
            throw ValidationError(
                "reg set takes one DATA argument, got \(arguments.count): \(arguments.map { "\"\($0)\"" }.joined(separator: " ")) (quote DATA that has spaces)")
        }
    }

    func run() async throws {
        guard let valueType = ValueType(name: type) else {
            throw ClusterError(.invalidParameter, "unknown type \"\(type)\"; use one of \(ValueType.allCases.map(\.name).joined(separator: ", "))")
        }
        let value = try ValueData.value(type: valueType, argument: dataArguments.first ?? "") {
            FileHandle.standardInput.readDataToEndOfFile()
        }
        _ = try KeyPath(keyPath)
        try RegistryName.validateValueName(valueName)
        let cluster = try await openCluster(root.cluster)
        defer { cluster.close() }
        try await cluster.setValue(key: keyPath, name: valueName, value: value, createKey: true)
    }
}

/// `reg get KEYPATH [VALUENAME] [--json]`.
struct RegGet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get", abstract: "Print a value, or every value of a key.")
    @ParentCommand var root: Clusdb
    @Argument(help: "Key path.") var keyPath: String
    @Argument(help: "Value name; omitted, every value of the key.") var valueName: String?
    @Flag(name: .long, help: "Print JSON.") var json = false

    func run() async throws {
        let cluster = try await openCluster(root.cluster)
        defer { cluster.close() }
        if let valueName {
            let value = try await cluster.queryValue(key: keyPath, name: valueName)
            if json {
                try Output.json(NamedValue(name: valueName, value: value))
            } else {
                Output.write(Data((value.commandLineData + "\n").utf8))
            }
            return
        }
        let listing = try await cluster.enumerate(key: keyPath)
        if json {
            try Output.json(listing.values)
        } else {
            var text = ""
            for item in listing.values {
                text += "\(Output.displayName(item.name))\t\(item.value.type.name)\t\(item.value.commandLineData)\n"
            }
            Output.write(Data(text.utf8))
        }
    }
}

/// `reg ls KEYPATH [--json]`.
struct RegList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls", abstract: "List a key's subkeys (ending in \\) and values.")
    @ParentCommand var root: Clusdb
    @Argument(help: "Key path (\"\" is the hive root).") var keyPath: String = ""
    @Flag(name: .long, help: "Print JSON: {\"keys\": [...], \"values\": [{\"name\", \"type\", \"data\"}]}.") var json = false

    func run() async throws {
        let cluster = try await openCluster(root.cluster)
        defer { cluster.close() }
        let listing = try await cluster.enumerate(key: keyPath)
        if json {
            try Output.json(listing)
            return
        }
        var text = ""
        for key in listing.keys { text += key + "\\\n" }
        for item in listing.values { text += "\(Output.displayName(item.name))\t\(item.value.type.name)\n" }
        Output.write(Data(text.utf8))
    }
}

/// `reg rm KEYPATH [VALUENAME] [--recursive]`.
struct RegRemove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Delete a value, or a key (a key with subkeys needs --recursive).")
    @ParentCommand var root: Clusdb
    @Argument(help: "Key path.") var keyPath: String
    @Argument(help: "Value name; omitted, the key itself.") var valueName: String?
    @Flag(name: .long, help: "Delete the key's whole subtree.") var recursive = false

    func validate() throws {
        if valueName != nil && recursive {
            throw ValidationError("--recursive applies to keys, not values")
        }
    }

    func run() async throws {
        let cluster = try await openCluster(root.cluster)
        defer { cluster.close() }
        if let valueName {
            try await cluster.deleteValue(key: keyPath, name: valueName)
        } else {
            try await cluster.deleteKey(keyPath, recursive: recursive)
        }
    }
}

/// `reg export [KEYPATH]`: the subtree as JSON, byte-identical for equal hives.
struct RegExport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Print a subtree as JSON (members sorted; equal hives give equal bytes).")
    @ParentCommand var root: Clusdb
    @Argument(help: "Key path (default: the whole hive).") var keyPath: String = ""

    func run() async throws {
        let cluster = try await openCluster(root.cluster)
        defer { cluster.close() }
        Output.write(try await cluster.exportJSON(key: keyPath))
    }
}

/// `reg import FILE`: merges an export into the hive as one atomic batch.
struct RegImport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import", abstract: "Merge an export file into the hive as one atomic batch (- reads stdin).")
    @ParentCommand var root: Clusdb
    @Argument(help: "The JSON file.") var file: String
    @Option(name: .long, help: "Import below this key instead of the hive root.") var key: String = ""

    func run() async throws {
        let progress = ProgressLine.start(file == "-" ? "reading standard input" : "reading \(file)")
        defer { progress?.finish() }
        let data: [UInt8]
        let source: String
        if file == "-" {
            data = Array(FileHandle.standardInput.readDataToEndOfFile())
            source = "standard input"
        } else {
            data = try Self.read(file)
            source = "import file \(file)"
        }
        progress?.update("checking \(data.count) bytes")
        let tree = try ExportedKey(jsonBytes: data, source: source)
        _ = try KeyPath(key)
        let cluster = try await openCluster(root.cluster)
        defer { cluster.close() }
        progress?.update("importing \(tree.keyCount) keys and \(tree.valueCount) values")
        let index = try await cluster.importTree(tree, at: key)
        progress?.finish()
        Output.write(Data("imported \(tree.keyCount) keys and \(tree.valueCount) values at index \(index)\n".utf8))
    }

    /// Reads the import file.
    /// - Throws: `ERROR_FILE_NOT_FOUND`, `ERROR_DIRECTORY` for a directory, `ERROR_ACCESS_DENIED`.
    static func read(_ file: String) throws(ClusterError) -> [UInt8] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory) else {
            throw ClusterError(.fileNotFound, "import file \(file) does not exist")
        }
        if isDirectory.boolValue {
            throw ClusterError(.directory, "\(file) is a directory; reg import reads one JSON file (from reg export)")
        }
        guard let contents = FileManager.default.contents(atPath: file) else {
            throw ClusterError(.accessDenied, "import file \(file) cannot be read (no permission)")
        }
        return Array(contents)
    }
}
