/// A change to the hive: the payload of a quorum-log entry.
///
/// Commands are validated when built from input and again when decoded from the log, and are
/// applied deterministically, so every replica that applies the same log reaches the same hive.
public enum HiveCommand: Sendable, Hashable {
    /// Create a key (and its missing parents) or open it (`ClusterRegCreateKey`).
    case createKey(KeyPath)
    /// Set a value, creating it (`ClusterRegSetValue`). With `createKey` the key and its missing
    /// parents are created first (the command line's `reg set`); otherwise a missing key is
    /// `ERROR_FILE_NOT_FOUND`.
    case setValue(key: KeyPath, name: String, value: RegistryValue, createKey: Bool)
    /// Delete a value (`ClusterRegDeleteValue`); a missing one is `ERROR_FILE_NOT_FOUND`.
    case deleteValue(key: KeyPath, name: String)
    /// Delete a key (`ClusterRegDeleteKey`): a leaf only, unless `recursive`.
    case deleteKey(KeyPath, recursive: Bool)
    /// An atomic batch relative to `root` (`ClusterRegCloseBatch`): all commands or none.
    case batch(root: KeyPath, commands: [BatchCommand])
    /// A write of a client session: applied once however often it is retried; a retry is answered
    /// with the first outcome (``ClientSession``). The inner command is never itself sessioned.
    indirect case sessioned(ClientSession, HiveCommand)

    /// Checks names, values and the batch size.
    /// - Throws: `ERROR_INVALID_PARAMETER` naming the first problem.
    public func validate() throws(ClusterError) {
        switch self {
        case .createKey, .deleteKey:
            break
        case .setValue(_, let name, let value, _):
            try RegistryName.validateValueName(name)
            try value.validate()
        case .deleteValue(_, let name):
            try RegistryName.validateValueName(name)
        case .sessioned(let session, let command):
            try session.validate()
            if case .sessioned = command { throw ClusterError(.invalidParameter, "a session write cannot hold another") }
            try command.validate()
        case .batch(let root, let commands):
            if commands.count > Limits.batchCommandsMax {
                throw ClusterError(
                    .invalidParameter, "batch has \(commands.count) commands; the limit is \(Limits.batchCommandsMax)",
                    failedCommand: -1)
            }
            for (index, command) in commands.enumerated() {
                do throws(ClusterError) {
                    switch command {
                    case .setValue(let name, let value):
                        try RegistryName.validateValueName(name)
                        try value.validate()
                    case .deleteValue(let name):
                        try RegistryName.validateValueName(name)
                    case .createKey(let path):
                        _ = try root.appending(path)
                    case .deleteKey(let path):
                        if path.isRoot {
                            throw ClusterError(.invalidParameter, "a batch cannot delete its own root key")
                        }
                        _ = try root.appending(path)
                    }
                } catch {
                    throw ClusterError(error.code, "command \(index): \(error.message)", failedCommand: index)
                }
            }
        }
    }

    /// True when a validated command's outcome is known before it is applied: `setValue` with
    /// `createKey` creates whatever is missing and cannot fail but for a storage error (which
    /// stops the node; the committed entry is replayed at restart). Such a write can be answered
    /// once it is committed.
    public var outcomeKnownBeforeApply: Bool {
        if case .setValue(_, _, _, true) = self { return true }
        return false
    }

    /// True for commands that change nothing when they fail before running.
    public var isBatch: Bool {
        switch self {
        case .batch: true
        case .sessioned(_, let command): command.isBatch
        default: false
        }
    }
}
