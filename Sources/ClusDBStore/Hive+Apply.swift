import ClusDBModel
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
        /// The command; nil for an entry that changes nothing (a no-op).
        public var command: HiveCommand?

        /// Creates a committed command.
        public init(index: UInt64, term: UInt64, command: HiveCommand?) {
            self.index = index
            self.term = term
            self.command = command
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
            try database.write { db in
                let state = try Self.state(db)
                precondition(batch[0].index == state.appliedIndex + 1,
                    "apply must continue the hive: index \(batch[0].index) after \(state.appliedIndex)")
                var outcomes: [CommandOutcome] = []
                outcomes.reserveCapacity(batch.count)
                for (offset, item) in batch.enumerated() {
                    precondition(offset == 0 || item.index == batch[offset - 1].index + 1, "committed entries are consecutive")
                    guard let command = item.command else {
                        outcomes.append(.done)
                        continue
                    }
                    outcomes.append(try Self.applyOne(command, in: db))
                }
                try db.execute(
                    sql: "UPDATE hive_state SET applied_index = ?, applied_term = ? WHERE id = 1",
                    arguments: [Int64(bitPattern: last.index), Int64(bitPattern: last.term)])
                return outcomes
            }
        }
    }

    /// Applies one command so that a failure changes nothing.
    ///
    /// A batch can fail after some of its commands changed rows, so it runs inside a savepoint
    /// that is rolled back on failure. Every other command checks everything that can fail before
    /// it changes a row, so it needs no savepoint (which costs two statements per command on the
    /// hottest path). SQLite errors propagate and abort the whole transaction.
    static func applyOne(_ command: HiveCommand, in db: Database) throws -> CommandOutcome {
        guard command.isBatch else {
            do {
                return try execute(command, in: db)
            } catch let error as ClusterError {
                return .failed(error)
            }
        }
        var outcome = CommandOutcome.done
        try db.inSavepoint {
            do {
                outcome = try execute(command, in: db)
                return .commit
            } catch let error as ClusterError {
                outcome = .failed(error)
                return .rollback
            }
        }
        return outcome
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
        guard let row = try Row.fetchOne(
            db, sql: "SELECT applied_index, applied_term, cluster_name, cluster_id FROM hive_state WHERE id = 1")
        else {
            throw ClusterError(.invalidData, "the hive has no state row")
        }
        let index: Int64 = row[0]
        let term: Int64 = row[1]
        return HiveState(
            appliedIndex: UInt64(bitPattern: index), appliedTerm: UInt64(bitPattern: term),
            clusterName: row[2], clusterID: row[3])
    }

    // MARK: Commands

    static func execute(_ command: HiveCommand, in db: Database) throws -> CommandOutcome {
        switch command {
        case .createKey(let path):
            return try createKey(path, in: db).created ? .keyCreated : .keyOpened
        case .setValue(let key, let name, let value, let createMissing):
            let id: Int64
            if createMissing {
                id = try createKey(key, in: db).id
            } else {
                guard let found = try keyID(key, in: db) else { throw missingKey(key) }
                id = found
            }
            try setValue(name: name, value: value, key: id, in: db)
            return .done
        case .deleteValue(let key, let name):
            guard let id = try keyID(key, in: db) else { throw missingKey(key) }
            if try !deleteValue(name: name, key: id, in: db) {
                throw ClusterError(.fileNotFound, "value \(RegistryName.quoted(name)) does not exist in key \(display(key))")
            }
            return .done
        case .deleteKey(let path, let recursive):
            if path.isRoot { throw ClusterError(.accessDenied, "the root key cannot be deleted") }
            guard let id = try keyID(path, in: db) else { throw missingKey(path) }
            if !recursive, try hasSubkeys(id, in: db) {
                throw ClusterError(
                    .accessDenied, "key \(display(path)) has subkeys; delete them first or delete recursively")
            }
            try deleteTree(id, in: db)
            return .done
        case .batch(let root, let commands):
            try executeBatch(root: root, commands: commands, in: db)
            return .done
        }
    }

    /// MS-CMRP `ApiExecuteBatch`: a current-key pointer starts at the root, moves on each
    /// CREATE_KEY, is cleared by DELETE_KEY; CREATE_KEY of an existing key and deletes of missing
    /// targets are not errors. The caller's savepoint undoes everything on the first failure.
    static func executeBatch(root: KeyPath, commands: [BatchCommand], in db: Database) throws {
        guard let rootID = try keyID(root, in: db) else {
            var error = missingKey(root)
            error.failedCommand = -1
            throw error
        }
        var current: Int64? = rootID
        for (index, command) in commands.enumerated() {
            do {
                switch command {
                case .createKey(let relative):
                    current = try createKey(try root.appending(relative), in: db).id
                case .deleteKey(let relative):
                    if let id = try keyID(try root.appending(relative), in: db) {
                        try deleteTree(id, in: db)
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

    /// The id of the key at `path`, nil when it does not exist.
    static func keyID(_ path: KeyPath, in db: Database) throws -> Int64? {
        var id = rootID
        let statement = try db.cachedStatement(sql: "SELECT id FROM hive_key WHERE parent = ? AND fold = ?")
        for component in path.components {
            guard let child = try Int64.fetchOne(statement, arguments: [id, RegistryName.fold(component)]) else {
                return nil
            }
            id = child
        }
        return id
    }

    /// Creates the key at `path` and its missing parents; reports whether the last one was new.
    static func createKey(_ path: KeyPath, in db: Database) throws -> (id: Int64, created: Bool) {
        var id = rootID
        var created = false
        let find = try db.cachedStatement(sql: "SELECT id FROM hive_key WHERE parent = ? AND fold = ?")
        let insert = try db.cachedStatement(sql: "INSERT INTO hive_key(parent, name, fold) VALUES(?, ?, ?)")
        for component in path.components {
            let fold = RegistryName.fold(component)
            if let child = try Int64.fetchOne(find, arguments: [id, fold]) {
                id = child
                created = false
            } else {
                try insert.execute(arguments: [id, component, fold])
                id = db.lastInsertedRowID
                created = true
            }
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
