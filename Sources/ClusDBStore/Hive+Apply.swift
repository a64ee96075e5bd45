import ClusDBModel
import ClusDBRaft
import Foundation
import GRDB

/// Applying committed commands: the registry's write rules (`wsfc-spec.md` §3.3 and §3.5).
extension Hive {
    /// A committed command ready to apply.
    public struct Committed: Sendable {
        /// Its log index.
        public var index: UInt64
        /// Its term.
        public var term: UInt64
        /// The command; nil for an entry that changes no key or value (a no-op, a membership
        /// change).
        public var command: HiveCommand?
        /// The membership change a configuration entry carries: the hive records the
        /// configuration it leads to (``Hive/configuration()``), so that every checkpoint holds
        /// the membership at its index.
        public var membershipChange: ConfigurationChange?

        /// Creates a committed command.
        public init(index: UInt64, term: UInt64, command: HiveCommand?, membershipChange: ConfigurationChange? = nil) {
            precondition(command == nil || membershipChange == nil, "an entry is a command or a membership change")
            self.index = index
            self.term = term
            self.command = command
            self.membershipChange = membershipChange
        }

        /// Decodes a log entry read back from storage.
        /// - Throws: `ERROR_CLUSTERLOG_CORRUPT` for a payload that passed its checksum but does
        ///   not decode.
        public init(entry: LogEntry) throws(ClusterError) {
            switch entry.kind {
            case .noop:
                self.init(index: entry.index, term: entry.term, command: nil)
            case .configurationChange:
                guard let change = ConfigurationChange(encoded: entry.payload) else {
                    throw ClusterError(.clusterLogCorrupt, "log entry \(entry.index) passes its checksum but is not a membership change")
                }
                self.init(index: entry.index, term: entry.term, command: nil, membershipChange: change)
            case .command:
                do throws(ClusterError) {
                    self.init(index: entry.index, term: entry.term, command: try HiveCommand(encoded: entry.payload))
                } catch {
                    throw ClusterError(
                        .clusterLogCorrupt, "log entry \(entry.index) passes its checksum but does not decode: \(error.message)")
                }
            }
        }
    }

    /// Applies committed commands in one transaction, each inside its own savepoint so a failing
    /// command changes nothing, and records the last index and term in the same transaction.
    ///
    /// - Precondition: the first index is exactly one past the applied index.
    /// - Returns: one outcome per command, in order.
    public func apply(_ batch: [Committed]) throws(ClusterError) -> [CommandOutcome] {
        guard let last = batch.last else { return [] }
        return try Self.storage {
            try keyIDCache.withLock { cache in
                do {
                    return try applyInTransaction(batch, last: last, cache: cache)
                } catch {
                    // The transaction rolled back: ids the cache learnt in it may not exist.
                    cache.removeAll()
                    throw error
                }
            }
        }
    }

    private func applyInTransaction(_ batch: [Committed], last: Committed, cache: KeyIDCache) throws -> [CommandOutcome] {
        try database.write { db in
            let state = try Self.state(db)
            precondition(
                batch[0].index == state.appliedIndex + 1,
                "apply must continue the hive: index \(batch[0].index) after \(state.appliedIndex)")
            var outcomes: [CommandOutcome] = []
            outcomes.reserveCapacity(batch.count)
            for (offset, item) in batch.enumerated() {
                precondition(offset == 0 || item.index == batch[offset - 1].index + 1, "committed entries are consecutive")
                guard let command = item.command else {
                    if let change = item.membershipChange { try Self.recordMembership(change, at: item.index, in: db) }
                    outcomes.append(.done)
                    continue
                }
                if case .sessioned(let session, let inner) = command {
                    outcomes.append(try Self.applySessioned(inner, session: session, index: item.index, rules: sessionRules, in: db, cache: cache))
                } else {
                    outcomes.append(try Self.applyOne(command, in: db, cache: cache))
                }
            }
            // Cached statements: GRDB re-authorizes every freshly prepared statement, a visible
            // cost when it happens once per group.
            try db.cachedStatement(sql: "UPDATE hive_state SET applied_index = ?, applied_term = ? WHERE id = 1")
                .execute(arguments: [Int64(bitPattern: last.index), Int64(bitPattern: last.term)])
            return outcomes
        }
    }

    /// Applies a session's write once (dissertation §6.3): the same sequence number again is
    /// answered with the stored first outcome and changes nothing; an older one is refused, and so
    /// is the same number with another command (a client that reused a number: answering it with
    /// the first command's outcome would tell it a write happened that did not). Which sessions
    /// are remembered is decided by log indexes alone (``SessionRules``), so every replica decides
    /// alike.
    static func applySessioned(
        _ command: HiveCommand, session: ClientSession, index: UInt64, rules: SessionRules, in db: Database, cache: KeyIDCache
    ) throws -> CommandOutcome {
        let signedIndex = Int64(bitPattern: index)
        // Forgotten: last used more than idleEntries entries ago (whether or not swept yet).
        let oldestRemembered = index > rules.idleEntries ? Int64(bitPattern: index - rules.idleEntries) : Int64.min
        let row = try Row.fetchOne(
            db.cachedStatement(sql: "SELECT sequence, outcome, command_crc FROM hive_session WHERE client = ? AND last_index >= ?"),
            arguments: [Int64(bitPattern: session.client), oldestRemembered])
        let commandCRC = Int64(CRC32C.checksum(command.encoded()))
        if let row {
            let last = UInt64(bitPattern: row[0] as Int64)
            if session.sequence == last {
                // A row written before the check existed has no CRC and is not checked.
                if let storedCRC = row[2] as Int64?, storedCRC != commandCRC {
                    return .failed(
                        ClusterError(
                            .invalidParameter,
                            "session \(session.client) already applied write \(last) with another command; this one was not applied (a client must not reuse a sequence number)"))
                }
                return try CommandOutcome(encoded: Array(row[1] as Data))
            }
            if session.sequence < last {
                return .failed(
                    ClusterError(
                        .invalidParameter,
                        "session \(session.client) already applied write \(last); write \(session.sequence) is older and was not applied again"))
            }
        }
        let outcome = try applyOne(command, in: db, cache: cache)
        try db.cachedStatement(
            sql: "INSERT OR REPLACE INTO hive_session(client, sequence, outcome, last_index, command_crc) VALUES(?, ?, ?, ?, ?)"
        )
        .execute(arguments: [
            Int64(bitPattern: session.client), Int64(bitPattern: session.sequence), Data(outcome.encoded()), signedIndex, commandCRC,
        ])
        if index % rules.sweepEveryEntries == 0 { try sweepSessions(index: index, rules: rules, in: db) }
        return outcome
    }

    /// Deletes forgotten sessions, then the least recently used beyond ``SessionRules/sessionsMax``
    /// (ties by client id, so every replica deletes the same rows).
    static func sweepSessions(index: UInt64, rules: SessionRules, in db: Database) throws {
        if index > rules.idleEntries {
            try db.execute(sql: "DELETE FROM hive_session WHERE last_index < ?", arguments: [Int64(bitPattern: index - rules.idleEntries)])
        }
        let count = try Int.fetchOne(db, sql: "SELECT count(*) FROM hive_session") ?? 0
        if count > rules.sessionsMax {
            try db.execute(
                sql: "DELETE FROM hive_session WHERE client IN (SELECT client FROM hive_session ORDER BY last_index, client LIMIT ?)",
                arguments: [count - rules.sessionsMax])
        }
    }

    /// Applies one command so that a failure changes nothing.
    ///
    /// A batch can fail after some of its commands changed rows, so it runs inside a savepoint
    /// that is rolled back on failure. Every other command checks everything that can fail before
    /// it changes a row, so it needs no savepoint (which costs two statements per command on the
    /// hottest path). SQLite errors propagate and abort the whole transaction.
    static func applyOne(_ command: HiveCommand, in db: Database, cache: KeyIDCache) throws -> CommandOutcome {
        guard command.isBatch else {
            do {
                return try execute(command, in: db, cache: cache)
            } catch let error as ClusterError {
                return .failed(error)
            }
        }
        var outcome = CommandOutcome.done
        try db.inSavepoint {
            do {
                outcome = try execute(command, in: db, cache: cache)
                return .commit
            } catch let error as ClusterError {
                // Keys the batch created are rolled back: forget every id it may have cached.
                cache.removeAll()
                outcome = .failed(error)
                return .rollback
            }
        }
        return outcome
    }

    /// Records the configuration a committed membership change leads to. The change applies to
    /// the configuration the hive holds, as the replica applies it to its own (a change that does
    /// not apply leaves both as they were).
    /// - Throws: `ERROR_CLUSTERLOG_CORRUPT` when the hive records no configuration: a hive that
    ///   was never given its bootstrap membership cannot know what the change changes.
    static func recordMembership(_ change: ConfigurationChange, at index: UInt64, in db: Database) throws {
        guard let current = try configuration(db) else {
            throw ClusterError(.clusterLogCorrupt, "membership change \(change) at index \(index), but the hive records no configuration to change")
        }
        guard let next = current.applying(change) else { return }
        try db.execute(sql: "UPDATE hive_membership SET configuration = ? WHERE id = 1", arguments: [Data(next.encoded)])
    }

    /// Records `configuration` as the cluster's membership, replacing any (at bootstrap, before
    /// the first entry: the configuration every replica starts from).
    public func setConfiguration(_ configuration: RaftConfiguration) throws(ClusterError) {
        try Self.storage {
            try database.write { db in
                try db.execute(
                    sql: "INSERT OR REPLACE INTO hive_membership(id, configuration) VALUES(1, ?)", arguments: [Data(configuration.encoded)])
            }
        }
    }

    /// The membership at the applied index: the bootstrap configuration with every applied change;
    /// nil for a hive never given one (a single node of format version 1, whose one member is
    /// implied).
    public func configuration() throws(ClusterError) -> RaftConfiguration? {
        try Self.storage { try database.read { db in try Self.configuration(db) } }
    }

    static func configuration(_ db: Database) throws -> RaftConfiguration? {
        // A checkpoint written before the table existed, opened read-only, has none.
        guard try db.tableExists("hive_membership") else { return nil }
        guard let data = try Data.fetchOne(db, sql: "SELECT configuration FROM hive_membership WHERE id = 1") else { return nil }
        guard let configuration = RaftConfiguration(encoded: Array(data)) else {
            throw ClusterError(.invalidData, "the hive's membership record does not decode (\(data.count) bytes)")
        }
        return configuration
    }

    /// Sets the cluster identity recorded in the hive (at bootstrap and restore).
    public func setIdentity(clusterName: String, clusterID: String) throws(ClusterError) {
        try Self.storage {
            try database.write { db in
                try db.execute(
                    sql: "UPDATE hive_state SET cluster_name = ?, cluster_id = ? WHERE id = 1",
                    arguments: [clusterName, clusterID])
            }
        }
    }

    /// The hive's state row.
    public func state() throws(ClusterError) -> HiveState {
        try Self.storage { try database.read { db in try Self.state(db) } }
    }

    static func state(_ db: Database) throws -> HiveState {
        let statement = try db.cachedStatement(
            sql: "SELECT applied_index, applied_term, cluster_name, cluster_id FROM hive_state WHERE id = 1")
        guard let row = try Row.fetchOne(statement) else {
            throw ClusterError(.invalidData, "the hive has no state row")
        }
        let index: Int64 = row[0]
        let term: Int64 = row[1]
        return HiveState(
            appliedIndex: UInt64(bitPattern: index), appliedTerm: UInt64(bitPattern: term),
            clusterName: row[2], clusterID: row[3])
    }

    // MARK: Commands

    ///
    /// Every command but a batch checks everything that can fail before it changes a row (see
    /// ``applyOne(_:in:cache:)``); keep it so when adding one.
    static func execute(_ command: HiveCommand, in db: Database, cache: KeyIDCache) throws -> CommandOutcome {
        switch command {
        case .createKey(let path):
            return try createKey(path, in: db, cache: cache).created ? .keyCreated : .keyOpened
        case .setValue(let key, let name, let value, let createMissing):
            let id: Int64
            if createMissing {
                id = try createKey(key, in: db, cache: cache).id
            } else {
                guard let found = try keyID(key, in: db, cache: cache) else { throw missingKey(key) }
                id = found
            }
            try setValue(name: name, value: value, key: id, in: db)
            return .done
        case .deleteValue(let key, let name):
            guard let id = try keyID(key, in: db, cache: cache) else { throw missingKey(key) }
            if try !deleteValue(name: name, key: id, in: db) {
                throw ClusterError(.fileNotFound, "value \(RegistryName.quoted(name)) does not exist in key \(display(key))")
            }
            return .done
        case .deleteKey(let path, let recursive):
            if path.isRoot { throw ClusterError(.accessDenied, "the root key cannot be deleted") }
            guard let id = try keyID(path, in: db, cache: cache) else { throw missingKey(path) }
            if !recursive, try hasSubkeys(id, in: db) {
                throw ClusterError(
                    .accessDenied, "key \(display(path)) has subkeys; delete them first or delete recursively")
            }
            try deleteTree(id, in: db)
            cache.removeAll()
            return .done
        case .batch(let root, let commands):
            try executeBatch(root: root, commands: commands, in: db, cache: cache)
            return .done
        case .sessioned:
            preconditionFailure("a session write is applied by applySessioned, and never holds another")
        }
    }

    /// MS-CMRP `ApiExecuteBatch`: a current-key pointer starts at the root, moves on each
    /// CREATE_KEY, is cleared by DELETE_KEY; CREATE_KEY of an existing key and deletes of missing
    /// targets are not errors. The caller's savepoint undoes everything on the first failure.
    static func executeBatch(root: KeyPath, commands: [BatchCommand], in db: Database, cache: KeyIDCache) throws {
        guard let rootID = try keyID(root, in: db, cache: cache) else {
            var error = missingKey(root)
            error.failedCommand = -1
            throw error
        }
        var current: Int64? = rootID
        for (index, command) in commands.enumerated() {
            do {
                switch command {
                case .createKey(let relative):
                    current = try createKey(try root.appending(relative), in: db, cache: cache).id
                case .deleteKey(let relative):
                    if let id = try keyID(try root.appending(relative), in: db, cache: cache) {
                        try deleteTree(id, in: db)
                        cache.removeAll()
                    }
                    current = nil
                case .setValue(let name, let value):
                    guard let key = current else { throw noCurrentKey() }
                    try setValue(name: name, value: value, key: key, in: db)
                case .deleteValue(let name):
                    guard let key = current else { throw noCurrentKey() }
                    _ = try deleteValue(name: name, key: key, in: db)
                }
            } catch let error as ClusterError {
                throw ClusterError(error.code, "batch command \(index): \(error.message)", failedCommand: index)
            }
        }
    }

    private static func noCurrentKey() -> ClusterError {
        ClusterError(.invalidParameter, "a value command follows a DELETE_KEY with no CREATE_KEY in between")
    }

    static func missingKey(_ path: KeyPath) -> ClusterError {
        ClusterError(.fileNotFound, "key \(display(path)) does not exist")
    }

    static func display(_ path: KeyPath) -> String {
        path.isRoot ? "(root)" : RegistryName.quoted(path.description)
    }

    // MARK: Rows

    /// The id of the key at `path`, nil when it does not exist. With a cache (the apply stage),
    /// known prefixes skip their lookups.
    static func keyID(_ path: KeyPath, in db: Database, cache: KeyIDCache? = nil) throws -> Int64? {
        let folded = path.folded
        var id = rootID
        var start = 0
        if let cache, let (depth, cached) = cache.longestPrefix(of: folded) {
            id = cached
            start = depth
        }
        let statement = try db.cachedStatement(sql: "SELECT id FROM hive_key WHERE parent = ? AND fold = ?")
        for depth in start..<folded.count {
            guard let child = try Int64.fetchOne(statement, arguments: [id, folded[depth]]) else { return nil }
            id = child
            cache?.store(id, for: folded[0...depth])
        }
        return id
    }

    /// Creates the key at `path` and its missing parents; reports whether the last one was new.
    static func createKey(_ path: KeyPath, in db: Database, cache: KeyIDCache? = nil) throws -> (id: Int64, created: Bool) {
        let folded = path.folded
        var id = rootID
        var start = 0
        if let cache, let (depth, cached) = cache.longestPrefix(of: folded) {
            id = cached
            start = depth
        }
        var created = false
        // Insert first: a new key (the common case for writes) costs one statement.
        let insert = try db.cachedStatement(sql: "INSERT INTO hive_key(parent, name, fold) VALUES(?, ?, ?) ON CONFLICT(parent, fold) DO NOTHING")
        let find = try db.cachedStatement(sql: "SELECT id FROM hive_key WHERE parent = ? AND fold = ?")
        for depth in start..<folded.count {
            try insert.execute(arguments: [id, path.components[depth], folded[depth]])
            if db.changesCount > 0 {
                id = db.lastInsertedRowID
                created = true
            } else {
                guard let child = try Int64.fetchOne(find, arguments: [id, folded[depth]]) else {
                    preconditionFailure("a key that conflicts on insert exists")
                }
                id = child
                created = false
            }
            cache?.store(id, for: folded[0...depth])
        }
        return (id, created)
    }

    static func setValue(name: String, value: RegistryValue, key: Int64, in db: Database) throws {
        let statement = try db.cachedStatement(
            sql: """
                INSERT INTO hive_value(key, fold, name, type, data) VALUES(?, ?, ?, ?, ?)
                ON CONFLICT(key, fold) DO UPDATE SET type = excluded.type, data = excluded.data
                """)
        try statement.execute(arguments: [
            key, RegistryName.fold(name), name, Int64(value.type.rawValue), Data(value.storedBytes),
        ])
    }

    static func deleteValue(name: String, key: Int64, in db: Database) throws -> Bool {
        let statement = try db.cachedStatement(sql: "DELETE FROM hive_value WHERE key = ? AND fold = ?")
        try statement.execute(arguments: [key, RegistryName.fold(name)])
        return db.changesCount > 0
    }

    static func hasSubkeys(_ id: Int64, in db: Database) throws -> Bool {
        try Bool.fetchOne(db, sql: "SELECT EXISTS(SELECT 1 FROM hive_key WHERE parent = ?)", arguments: [id]) ?? false
    }

    /// Deletes a key, its values and its whole subtree.
    static func deleteTree(_ id: Int64, in db: Database) throws {
        precondition(id != rootID, "the root key is never deleted")
        let subtree = "WITH RECURSIVE sub(id) AS (SELECT ? UNION ALL SELECT k.id FROM hive_key k JOIN sub ON k.parent = sub.id)"
        try db.execute(sql: "\(subtree) DELETE FROM hive_value WHERE key IN (SELECT id FROM sub)", arguments: [id])
        try db.execute(sql: "\(subtree) DELETE FROM hive_key WHERE id IN (SELECT id FROM sub)", arguments: [id])
    }
}
