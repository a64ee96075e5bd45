import ClusDBModel

/// An atomic write batch being built (`ClusterRegCreateBatch` + `ClusterRegBatchAddCommand`),
/// run with ``Cluster/executeBatch(_:)``.
///
/// Key paths in ``createKey(_:)`` and ``deleteKey(_:)`` are relative to ``root``; value commands
/// act on the current key (see ``BatchCommand``).
public struct RegistryBatch: Sendable {
    /// The batch's root key.
    public var root: String
    /// The commands, in order.
    public private(set) var commands: [BatchCommand] = []

    /// Starts a batch relative to `root` (the hive root by default).
    public init(root: String = "") { self.root = root }

    /// Adds `CLUSREG_SET_VALUE` on the current key.
    public mutating func setValue(name: String, value: RegistryValue) {
        commands.append(.setValue(name: name, value: value))
    }

    /// Adds `CLUSREG_CREATE_KEY`; the key becomes the current key.
    /// - Throws: `ERROR_INVALID_PARAMETER` for an invalid relative path.
    public mutating func createKey(_ path: String) throws(ClusterError) {
        commands.append(.createKey(try KeyPath(path)))
    }

    /// Adds `CLUSREG_DELETE_KEY` (recursive); value commands need a `createKey` after it.
    /// - Throws: `ERROR_INVALID_PARAMETER` for an invalid relative path.
    public mutating func deleteKey(_ path: String) throws(ClusterError) {
        commands.append(.deleteKey(try KeyPath(path)))
    }

    /// Adds `CLUSREG_DELETE_VALUE` on the current key.
    public mutating func deleteValue(name: String) {
        commands.append(.deleteValue(name: name))
    }

    /// A batch that merges `tree` into the key at `target` (created when missing): for each key
    /// (parents first) a `createKey` followed by its values. The batch's root is the hive root.
    /// - Throws: `ERROR_INVALID_PARAMETER` for a key name or depth the hive refuses.
    public init(importing tree: ExportedKey, at target: String = "") throws(ClusterError) {
        self.root = ""
        var commands: [BatchCommand] = []
        func add(_ key: ExportedKey, path: [String]) throws(ClusterError) {
            commands.append(.createKey(try KeyPath(components: path)))
            for (name, value) in key.values.sorted(by: { JSONText.utf8Less($0.name, $1.name) }) {
                commands.append(.setValue(name: name, value: value))
            }
            for (name, child) in key.keys.sorted(by: { JSONText.utf8Less($0.name, $1.name) }) {
                try add(child, path: path + [name])
            }
        }
        try add(tree, path: try KeyPath(target).components)
        self.commands = commands
    }
}
