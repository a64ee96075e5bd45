#if canImport(Glibc)
import Glibc
#endif
import ClusDBModel
import GRDB
import Synchronization

/// The cluster hive on SQLite: keys, typed values, and the index of the last applied log entry.
///
/// The registry's rules are written here once. Production runs it on a file in WAL mode
/// (``open(path:)``); tests and the simulator run the same code in memory (``inMemory()``).
///
/// Schema (see `docs/FORMATS.md`): `hive_key(id, parent, name, fold)` with the root as id 1,
/// `hive_value(key, fold, name, type, data)`, and the one-row `hive_state(applied_index,
/// applied_term, cluster_name, cluster_id)`, the client sessions, and the one-row
/// `hive_membership(configuration)` (the Raft configuration at the applied index). `fold` is ``RegistryName/fold(_:)`` of the name:
/// lookups compare folds, output shows names as they were first written.
///
/// - Important: ``apply(_:)`` writes the applied index in the same transaction as the changes,
///   so after a crash the hive is exactly the state at the index it records.
public final class Hive: Sendable {
    /// The database connection (a pool on disk, a queue in memory).
    public let database: any DatabaseWriter
    /// The id of the root key row.
    static let rootID: Int64 = 1
    /// Key ids the apply stage resolved (see ``KeyIDCache``).
    let keyIDCache = Mutex(KeyIDCache())
    /// A connection of its own for WAL checkpoints, so they never wait for or delay the writer's
    /// queue; opened on first use.
    private let checkpointConnection = Mutex<DatabaseQueue?>(nil)

    /// Copies committed WAL frames into the database file (SQLite's PASSIVE checkpoint: it never
    /// waits for readers or the writer, it does what it can now). The node calls it from a
    /// background thread, so the apply stage does not pay for checkpoint I/O and its fsync.
    public func checkpointWAL() throws(ClusterError) {
        guard let pool = database as? DatabasePool else { return }
        try Self.storage {
            try checkpointConnection.withLock { connection in
                if connection == nil {
                    var configuration = Configuration()
                    configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") }
                    connection = try DatabaseQueue(path: pool.path, configuration: configuration)
                }
                try connection?.writeWithoutTransaction { db in
                    _ = try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(PASSIVE)")
                }
            }
        }
    }

    /// Copies the whole WAL into the database file and empties it (SQLite's TRUNCATE
    /// checkpoint), so the database file alone holds every committed transaction.
    public func checkpointWALCompletely() throws(ClusterError) {
        try Self.storage {
            try database.writeWithoutTransaction { db in
                _ = try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(TRUNCATE)")
            }
        }
    }

    /// How long client sessions are remembered: ``SessionRules/standard`` except in tests, since
    /// every replica must apply the same rules.
    public let sessionRules: SessionRules

    /// Wraps a database, creating the schema if needed.
    public init(database: any DatabaseWriter, sessionRules: SessionRules = .standard) throws(ClusterError) {
        self.database = database
        self.sessionRules = sessionRules
        try Self.storage {
            try database.write { db in try Self.createSchema(db) }
        }
    }

    /// An empty hive in memory.
    public static func inMemory(sessionRules: SessionRules = .standard) throws(ClusterError) -> Hive {
        try Hive(database: try storage { try DatabaseQueue() }, sessionRules: sessionRules)
    }

    /// Opens (creating) the hive file at `path` in WAL mode.
    ///
    /// `synchronous=NORMAL` is enough: a power loss can only lose the last transactions, which the
    /// fsynced quorum log replays, and the log is only truncated behind an fsynced checkpoint.
    public static func open(path: String) throws(ClusterError) -> Hive {
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            // WAL checkpoints run off the write path (``checkpointWAL()``); this only bounds the
            // WAL if they stop.
            try db.execute(sql: "PRAGMA wal_autocheckpoint = \(Limits.hiveWALAutocheckpointPages)")
        }
        let pool = try storage { try DatabasePool(path: path, configuration: configuration) }
        // The hive is sensitive; SQLite creates the -wal and -shm files with the database's mode.
        for suffix in ["", "-wal", "-shm"] { chmod(path + suffix, 0o600) }
        return try Hive(database: pool)
    }

    /// Opens a hive image read-only (a checkpoint or a backup), without creating anything.
    public static func openReadOnly(path: String) throws(ClusterError) -> Hive {
        var configuration = Configuration()
        configuration.readonly = true
        let queue = try storage { try DatabaseQueue(path: path, configuration: configuration) }
        let hive = Hive(unchecked: queue)
        return hive
    }

    private init(unchecked database: any DatabaseWriter) {
        self.database = database
        sessionRules = .standard
    }

    /// Closes the database connections (releasing the files); the hive must not be used after.
    /// A connection still in use stays open until it is released.
    public func close() {
        checkpointConnection.withLock { connection in
            try? connection?.close()
            connection = nil
        }
        if let pool = database as? DatabasePool {
            try? pool.close()
        } else if let queue = database as? DatabaseQueue {
            try? queue.close()
        }
    }

    static func createSchema(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE IF NOT EXISTS hive_key(
                    id INTEGER PRIMARY KEY,
                    parent INTEGER NOT NULL,
                    name TEXT NOT NULL,
                    fold TEXT NOT NULL,
                    UNIQUE(parent, fold));
                CREATE TABLE IF NOT EXISTS hive_value(
                    key INTEGER NOT NULL,
                    fold TEXT NOT NULL,
                    name TEXT NOT NULL,
                    type INTEGER NOT NULL,
                    data BLOB NOT NULL,
                    PRIMARY KEY(key, fold)) WITHOUT ROWID;
                CREATE TABLE IF NOT EXISTS hive_state(
                    id INTEGER PRIMARY KEY CHECK(id = 1),
                    format_version INTEGER NOT NULL,
                    applied_index INTEGER NOT NULL,
                    applied_term INTEGER NOT NULL,
                    cluster_name TEXT NOT NULL,
                    cluster_id TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS hive_session(
                    client INTEGER PRIMARY KEY,
                    sequence INTEGER NOT NULL,
                    outcome BLOB NOT NULL,
                    last_index INTEGER NOT NULL,
                    command_crc INTEGER);
                CREATE INDEX IF NOT EXISTS hive_session_by_last_index ON hive_session(last_index, client);
                CREATE TABLE IF NOT EXISTS hive_membership(
                    id INTEGER PRIMARY KEY CHECK(id = 1),
                    configuration BLOB NOT NULL);
                INSERT OR IGNORE INTO hive_key(id, parent, name, fold) VALUES(1, 0, '', '');
                INSERT OR IGNORE INTO hive_state VALUES(1, 1, 0, 0, '', '');
                """)
        // A hive whose session table predates the command check (docs/FORMATS.md, "Client
        // sessions"): the column is added, empty; rows without it are not checked.
        let sessionColumns = try String.fetchAll(db, sql: "SELECT name FROM pragma_table_info('hive_session')")
        if !sessionColumns.contains("command_crc") {
            try db.execute(sql: "ALTER TABLE hive_session ADD COLUMN command_crc INTEGER")
        }
    }

    /// Runs a database call, turning SQLite errors into ``ClusterError``.
    static func storage<T>(_ body: () throws -> T) throws(ClusterError) -> T {
        do {
            return try body()
        } catch let error as ClusterError {
            throw error
        } catch let error as DatabaseError {
            let code: Win32Error
            switch error.resultCode {
            case .SQLITE_FULL: code = .diskFull
            case .SQLITE_BUSY, .SQLITE_LOCKED: code = .sharingViolation
            case .SQLITE_PERM, .SQLITE_READONLY, .SQLITE_AUTH, .SQLITE_CANTOPEN: code = .accessDenied
            case .SQLITE_CORRUPT, .SQLITE_NOTADB: code = .invalidData
            default: code = .invalidData
            }
            throw ClusterError(code, "hive database: \(error.message ?? "\(error.resultCode)")")
        } catch {
            throw ClusterError(.invalidData, "hive database: \(error)")
        }
    }

    /// Async form of ``storage(_:)`` for reads.
    func read<T: Sendable>(_ body: @Sendable @escaping (Database) throws -> T) async throws(ClusterError) -> T {
        do {
            return try await database.read(body)
        } catch {
            throw Self.mapped(error)
        }
    }

    static func mapped(_ error: any Error) -> ClusterError {
        do throws(ClusterError) {
            try storage { () throws -> Void in throw error }
            preconditionFailure("storage(_:) rethrows the error it was given")
        } catch {
            return error
        }
    }
}

/// The hive's identity and position: what it was applied up to, and which cluster it belongs to.
public struct HiveState: Sendable, Equatable {
    /// Index of the last applied log entry (0 for an empty hive).
    public var appliedIndex: UInt64
    /// Term of that entry.
    public var appliedTerm: UInt64
    /// The cluster's name.
    public var clusterName: String
    /// The cluster's id (a UUID string).
    public var clusterID: String

    /// Creates a state.
    public init(appliedIndex: UInt64, appliedTerm: UInt64, clusterName: String, clusterID: String) {
        self.appliedIndex = appliedIndex
        self.appliedTerm = appliedTerm
        self.clusterName = clusterName
        self.clusterID = clusterID
    }
}
