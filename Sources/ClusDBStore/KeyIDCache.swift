import ClusDBModel

/// Key ids the apply stage has resolved, by folded path, so that writes below the same parents
/// skip the lookups of those parents.
///
/// Owned by ``Hive`` behind a mutex and used only inside the apply transaction. Anything that
/// may invalidate an id — a deleted key, a rolled-back batch or transaction — empties it.
final class KeyIDCache {
    private var ids: [String: Int64] = [:]

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
    private static func key(_ folded: ArraySlice<String>) -> String { folded.joined(separator: "\\") }
}
