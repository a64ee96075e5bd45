import ClusDBModel

/// Key ids the apply stage has resolved, by folded path, so that writes below the same parents
/// skip the lookups of those parents.
///
/// Owned by ``Hive`` behind a mutex and used only inside the apply transaction. Anything that
/// may invalidate an id — a deleted key, a rolled-back batch or transaction — empties it.
///
/// Paths are keyed by their UTF-8 bytes, the way SQLite compares `fold`: a `String` key would
/// treat canonically equivalent spellings (`é` and `e` + U+0301, two keys in the hive) as one,
/// so a cached id could answer for a key the database does not hold, and only on a replica whose
/// cache happened to hold it.
final class KeyIDCache {
    private var ids: [PathBytes: Int64] = [:]

    /// A folded path as its UTF-8 bytes, compared byte for byte and hashed in one call (an
    /// array's own hashing feeds the hasher one byte at a time, on every write).
    private struct PathBytes: Hashable {
        let bytes: [UInt8]

        func hash(into hasher: inout Hasher) {
            bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
        }
    }

    /// Cached paths at most; past it the cache starts over (simple, and bounded).
    static let entriesMax = 4_096

    /// The deepest cached prefix of `folded` (its length and id), or nil.
    func longestPrefix(of folded: [String]) -> (depth: Int, id: Int64)? {
        if folded.isEmpty || ids.isEmpty { return nil }
        var depth = folded.count
        while depth > 0 {
            if let id = ids[Self.key(folded[0..<depth])] { return (depth, id) }
            depth -= 1
        }
        return nil
    }

    /// Remembers the id of the key at a folded path.
    func store(_ id: Int64, for folded: ArraySlice<String>) {
        if ids.count >= Self.entriesMax { ids.removeAll(keepingCapacity: true) }
        ids[Self.key(folded)] = id
    }

    /// Forgets everything.
    func removeAll() { ids.removeAll(keepingCapacity: true) }

    /// Folded names cannot contain a backslash, so joining with one is unambiguous.
    private static func key(_ folded: ArraySlice<String>) -> PathBytes {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(folded.reduce(folded.count) { $0 + $1.utf8.count })
        for (position, name) in folded.enumerated() {
            if position > 0 { bytes.append(0x5C) }
            bytes.append(contentsOf: name.utf8)
        }
        return PathBytes(bytes: bytes)
    }
}
