import ClusDBModel
import Foundation
import GRDB

/// Reading the hive: each call is one read transaction, so it sees one applied index.
extension Hive {
    /// Succeeds when the key exists (`ClusterRegOpenKey`).
    /// - Throws: `ERROR_FILE_NOT_FOUND` for a missing key.
    public func openKey(_ path: KeyPath) async throws(ClusterError) {
        let exists = try await read { db in try Self.keyID(path, in: db) != nil }
        if !exists { throw Self.missingKey(path) }
    }

    /// The subkeys and values of a key.
    /// - Throws: `ERROR_FILE_NOT_FOUND` for a missing key.
    public func listing(of path: KeyPath) async throws(ClusterError) -> KeyListing {
        try await read { db in try Self.listing(of: path, in: db) }
    }

    /// One value (`ClusterRegQueryValue`).
    /// - Throws: `ERROR_FILE_NOT_FOUND` for a missing key or value.
    public func queryValue(key: KeyPath, name: String) async throws(ClusterError) -> RegistryValue {
        try await read { db in
            guard let id = try Self.keyID(key, in: db) else { throw Self.missingKey(key) }
            guard let value = try Self.value(keyID: id, name: name, in: db) else {
                throw ClusterError(.fileNotFound, "value \(RegistryName.quoted(name)) does not exist in key \(Self.display(key))")
            }
            return value
        }
    }

    /// One value of the key with row id `id`, nil when it does not exist.
    static func value(keyID id: Int64, name: String, in db: Database) throws -> RegistryValue? {
        guard let row = try Row.fetchOne(
            db.cachedStatement(sql: "SELECT type, data FROM hive_value WHERE key = ? AND fold = ?"), arguments: [id, RegistryName.fold(name)])
        else { return nil }
        return try value(type: row[0], data: row[1])
    }

    /// The subtree at `path` in the export format.
    /// - Throws: `ERROR_FILE_NOT_FOUND` for a missing key.
    public func export(_ path: KeyPath) async throws(ClusterError) -> ExportedKey {
        try await read { db in try Self.export(path, in: db) }
    }

    /// ``export(_:)`` read on the calling thread, for callers that are not async (tools, tests).
    public func exportBlocking(_ path: KeyPath) throws(ClusterError) -> ExportedKey {
        try Self.storage { try database.read { db in try Self.export(path, in: db) } }
    }

    /// Keys (the root excluded) and values in the whole hive.
    public func counts() async throws(ClusterError) -> (keys: Int, values: Int) {
        try await read { db in try Self.counts(db) }
    }

    /// The state row and the counts of keys (the root excluded) and values, read in one
    /// transaction: a summary of exactly one applied index.
    public func summary() throws(ClusterError) -> (state: HiveState, keys: Int, values: Int) {
        try Self.storage {
            try database.read { db in
                let counts = try Self.counts(db)
                return (try Self.state(db), counts.keys, counts.values)
            }
        }
    }

    static func counts(_ db: Database) throws -> (keys: Int, values: Int) {
        let keys = try Int.fetchOne(db, sql: "SELECT count(*) FROM hive_key") ?? 1
        let values = try Int.fetchOne(db, sql: "SELECT count(*) FROM hive_value") ?? 0
        return (keys - 1, values)
    }

    static func value(type: Int64, data: Data) throws -> RegistryValue {
        guard let number = UInt32(exactly: type), let valueType = ValueType(rawValue: number) else {
            throw ClusterError(.invalidData, "the hive holds a value of unknown type \(type)")
        }
        return try RegistryValue(type: valueType, storedBytes: [UInt8](data))
    }

    static func listing(of path: KeyPath, in db: Database) throws -> KeyListing {
        guard let id = try keyID(path, in: db) else { throw missingKey(path) }
        let keys = try String.fetchAll(db, sql: "SELECT name FROM hive_key WHERE parent = ? ORDER BY name", arguments: [id])
        var values: [NamedValue] = []
        let rows = try Row.fetchCursor(
            db, sql: "SELECT name, type, data FROM hive_value WHERE key = ? ORDER BY name", arguments: [id])
        while let row = try rows.next() {
            values.append(NamedValue(name: row[0], value: try value(type: row[1], data: row[2])))
        }
        return KeyListing(keys: keys, values: values)
    }

    static func export(_ path: KeyPath, in db: Database) throws -> ExportedKey {
        guard let rootID = try keyID(path, in: db) else { throw missingKey(path) }
        let subtree = "WITH RECURSIVE sub(id) AS (SELECT ? UNION ALL SELECT k.id FROM hive_key k JOIN sub ON k.parent = sub.id)"
        var children: [Int64: [(name: String, id: Int64)]] = [:]
        let keyRows = try Row.fetchCursor(
            db, sql: "\(subtree) SELECT k.id, k.parent, k.name FROM hive_key k JOIN sub ON k.id = sub.id WHERE k.id != ?",
            arguments: [rootID, rootID])
        while let row = try keyRows.next() {
            children[row[1], default: []].append((row[2], row[0]))
        }
        var values: [Int64: [(name: String, value: RegistryValue)]] = [:]
        let valueRows = try Row.fetchCursor(
            db, sql: "\(subtree) SELECT v.key, v.name, v.type, v.data FROM hive_value v JOIN sub ON v.key = sub.id",
            arguments: [rootID])
        while let row = try valueRows.next() {
            values[row[0], default: []].append((row[1], try value(type: row[2], data: row[3])))
        }
        func build(_ id: Int64) -> ExportedKey {
            ExportedKey(
                values: values[id] ?? [],
                keys: (children[id] ?? []).map { ($0.name, build($0.id)) })
        }
        return build(rootID)
    }
}

extension Hive {
    /// `Quorum\MaxQuorumLogSize` in bytes: the default when unset or not a number, and never
    /// below ``Limits/maxQuorumLogSizeMin``.
    public func maxQuorumLogSize() throws(ClusterError) -> Int {
        let value: RegistryValue? = try Self.storage {
            try database.read { db in
                guard let key = try Self.keyID(try KeyPath("Quorum"), in: db),
                    let row = try Row.fetchOne(
                        db, sql: "SELECT type, data FROM hive_value WHERE key = ? AND fold = ?",
                        arguments: [key, RegistryName.fold("MaxQuorumLogSize")])
                else { return nil }
                return try Self.value(type: row[0], data: row[1])
            }
        }
        let configured: Int
        switch value {
        case .dword(let number): configured = Int(number)
        case .qword(let number): configured = Int(clamping: number)
        default: configured = Limits.maxQuorumLogSizeDefault
        }
        return max(configured, Limits.maxQuorumLogSizeMin)
    }
}
