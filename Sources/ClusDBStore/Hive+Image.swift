import ClusDBModel
import GRDB

/// Whole-hive images in memory: what a snapshot is to a replica that keeps its state machine in
/// memory (the simulator; issue 10 runs the hive's apply rules there on in-memory SQLite). The
/// node's snapshots are checkpoint files (``ClusterCheckpoints``); these are the same bytes, in
/// memory, taken and installed with SQLite's online backup.
extension Hive {
    /// A copy of the whole hive in memory — keys, values, client sessions, the applied index and
    /// term — as one read transaction saw it.
    public func inMemoryImage() throws(ClusterError) -> Hive {
        let copy = try Self.storage { try DatabaseQueue() }
        try Self.storage { try database.backup(to: copy) }
        return try Hive(database: copy, sessionRules: sessionRules)
    }

    /// Replaces everything in this hive with `image` (a snapshot installed): no row of the old
    /// state survives, the applied index is the image's, and the ids the apply stage cached are
    /// forgotten (the image numbers its keys its own way).
    public func install(image: Hive) throws(ClusterError) {
        try Self.storage { try image.database.backup(to: database) }
        keyIDCache.withLock { $0.removeAll() }
        // The backup copied the image's schema too: bring an older one up to this build's.
        try Self.storage { try database.write { db in try Self.createSchema(db) } }
    }

    /// One value, read on the calling thread (``queryValue(key:name:)`` for async callers); nil
    /// when the key or the value does not exist.
    ///
    /// For the simulator and tools, which read between applies: it reads on the writer's
    /// connection, outside a transaction. That is isolated — writes are serialized on that
    /// connection, so none lands between its statements — and it spares the read transaction
    /// and `query_only` switches of a reader, most of a lookup's cost in memory. Not for serving
    /// paths: on a hive file it waits behind the apply stage's transactions.
    public func valueBlocking(key: KeyPath, name: String) throws(ClusterError) -> RegistryValue? {
        try Self.storage {
            try database.writeWithoutTransaction { db -> RegistryValue? in
                guard let id = try Self.keyID(key, in: db) else { return nil }
                return try Self.value(keyID: id, name: name, in: db)
            }
        }
    }
}
