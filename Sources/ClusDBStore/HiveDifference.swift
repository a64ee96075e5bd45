import ClusDBModel
import Foundation
import GRDB

/// How two hives differ, counted key by key and value by value (a restore's dry run).
///
/// Keys are matched by their folded paths, values by key path and folded name, so a difference
/// only in a name's spelling counts as a changed value. Both hives are read as two sorted
/// streams and merged, in constant memory whatever their size.
public struct HiveDifference: Codable, Sendable, Equatable {
    /// Keys in the restored hive that the current one lacks.
    public var keysAdded = 0
    /// Keys of the current hive that the restored one lacks.
    public var keysRemoved = 0
    /// Values in the restored hive that the current one lacks.
    public var valuesAdded = 0
    /// Values in both whose type, data or name spelling differ.
    public var valuesChanged = 0
    /// Values of the current hive that the restored one lacks.
    public var valuesRemoved = 0

    /// No differences.
    public init() {}

    /// Counts what changes when `current` (nil: no hive) is replaced by `restored`.
    public static func between(current: Hive?, restored: Hive) throws(ClusterError) -> HiveDifference {
        var difference = HiveDifference()
        try Hive.storage {
            try restored.database.read { restoredDB in
                guard let current else {
                    let counts = try Hive.counts(restoredDB)
                    difference.keysAdded = counts.keys
                    difference.valuesAdded = counts.values
                    return
                }
                try current.database.read { currentDB in
                    try difference.compareKeys(currentDB, restoredDB)
                    try difference.compareValues(currentDB, restoredDB)
                }
            }
        }
        return difference
    }

    /// Every key's folded path (`\a\b`), the root excluded, in byte order.
    private static let keyPathsSQL = """
        WITH RECURSIVE p(id, path) AS (
            SELECT 1, ''
            UNION ALL
            SELECT k.id, p.path || char(92) || k.fold FROM hive_key k JOIN p ON k.parent = p.id WHERE k.id <> 1)
        SELECT path FROM p WHERE id <> 1 ORDER BY path
        """

    /// Every value with its key's folded path, in byte order of (path, fold).
    private static let valuesSQL = """
        WITH RECURSIVE p(id, path) AS (
            SELECT 1, ''
            UNION ALL
            SELECT k.id, p.path || char(92) || k.fold FROM hive_key k JOIN p ON k.parent = p.id WHERE k.id <> 1)
        SELECT p.path, v.fold, v.name, v.type, v.data FROM hive_value v JOIN p ON v.key = p.id ORDER BY p.path, v.fold
        """

    private mutating func compareKeys(_ currentDB: Database, _ restoredDB: Database) throws {
        let old = try String.fetchCursor(currentDB, sql: Self.keyPathsSQL)
        let new = try String.fetchCursor(restoredDB, sql: Self.keyPathsSQL)
        var a = try old.next()
        var b = try new.next()
        while a != nil || b != nil {
            switch Self.order(a.map { [$0] }, b.map { [$0] }) {
            case .ascending:
                keysRemoved += 1
                a = try old.next()
            case .descending:
                keysAdded += 1
                b = try new.next()
            case .same:
                a = try old.next()
                b = try new.next()
            }
        }
    }

    private struct ValueRow {
        var key: [String]
        var name: String
        var type: Int64
        var data: [UInt8]

        init(_ row: Row) {
            key = [row[0], row[1]]
            name = row[2]
            type = row[3]
            let bytes: Data = row[4] ?? Data()
            data = [UInt8](bytes)
        }
    }

    private mutating func compareValues(_ currentDB: Database, _ restoredDB: Database) throws {
        let old = try Row.fetchCursor(currentDB, sql: Self.valuesSQL).map(ValueRow.init)
        let new = try Row.fetchCursor(restoredDB, sql: Self.valuesSQL).map(ValueRow.init)
        var a = try old.next()
        var b = try new.next()
        while a != nil || b != nil {
            switch Self.order(a?.key, b?.key) {
            case .ascending:
                valuesRemoved += 1
                a = try old.next()
            case .descending:
                valuesAdded += 1
                b = try new.next()
            case .same:
                // Spellings compare as bytes: String's == would miss an NFC/NFD re-spelling.
                if a!.type != b!.type || a!.data != b!.data || !a!.name.utf8.elementsEqual(b!.name.utf8) {
                    valuesChanged += 1
                }
                a = try old.next()
                b = try new.next()
            }
        }
    }

    private enum Order { case ascending, descending, same }

    /// Orders two merge positions as SQLite's BINARY collation does (UTF-8 bytes); nil is past
    /// the end of its stream.
    private static func order(_ a: [String]?, _ b: [String]?) -> Order {
        guard let a else { return .descending }
        guard let b else { return .ascending }
        // Bytes, not String's ==, which calls canonically equivalent spellings equal.
        for (x, y) in zip(a, b) where !x.utf8.elementsEqual(y.utf8) {
            return x.utf8.lexicographicallyPrecedes(y.utf8) ? .ascending : .descending
        }
        return .same
    }
}
