import ClusDBModel

/// The replica's view of its log: the entries after the last snapshot (compacted prefix), in
/// memory, with the indexes that are durable, committed and applied.
///
/// Why all in memory: the driver compacts it (after each checkpoint; a node that is its
/// cluster's only member after each apply), the driver shares the payload arrays
/// (copy-on-write), and a pure replica must not read files. The driver loads it at start-up from
/// the quorum log. (A follower far behind is served from memory too: reading older entries from
/// the quorum log, bounded by `Quorum\MaxQuorumLogSize`, is issue 11's.)
struct RaftLog: Sendable {
    /// The index and term of the last entry covered by the snapshot (0, 0 with none).
    private(set) var snapshotIndex: UInt64
    private(set) var snapshotTerm: UInt64
    /// Entries `snapshotIndex + 1` ... `lastIndex`.
    private(set) var entries: [RaftEntry]
    /// The highest index known committed.
    private(set) var committed: UInt64
    /// The highest index the driver reported durable (with the term it had then).
    private(set) var persisted: UInt64
    /// The highest index handed to the driver to persist; entries after it are unstable.
    private(set) var handedOut: UInt64
    /// The highest index the driver reported applied.
    private(set) var applied: UInt64
    /// The highest index handed to the driver to apply.
    private(set) var handedOutForApply: UInt64

    /// A log restored from durable state: everything given is persisted; `committed` from the
    /// hard state, `applied` from the state machine.
    ///
    /// The disk can hold states no correct run leaves whole, and they must not trap: a commit
    /// index past the durable log (the hard state is written before the entries of its Ready,
    /// and a crash came between) is lowered to the log's end — it is only knowledge, and the
    /// leader tells it again; a state machine behind the snapshot (a crash while installing one)
    /// is reported by `stateMachineBehindSnapshot`, and the replica hands the snapshot out again.
    /// What no crash of a correct driver leaves (indexes with gaps, terms going back, a state
    /// machine past the log's end) is refused as damage.
    init(snapshot: SnapshotMetadata?, entries: [RaftEntry], committed: UInt64, applied: UInt64) throws(ClusterError) {
        let base = snapshot?.index ?? 0
        snapshotIndex = base
        snapshotTerm = snapshot?.term ?? 0
        for (offset, entry) in entries.enumerated() {
            guard entry.index == base + 1 + UInt64(offset) else {
                throw ClusterError(.clusterLogCorrupt, "the durable log has entry \(entry.index) where \(base + 1 + UInt64(offset)) belongs")
            }
            guard entry.term >= (offset == 0 ? snapshotTerm : entries[offset - 1].term) else {
                throw ClusterError(.clusterLogCorrupt, "the durable log's term goes back at entry \(entry.index) (\(entry.term))")
            }
        }
        self.entries = entries
        let last = base + UInt64(entries.count)
        guard applied <= last else {
            throw ClusterError(.clusterLogCorrupt, "the state machine applied \(applied) but the durable log ends at \(last)")
        }
        stateMachineBehindSnapshot = applied < base
        let appliedOrSnapshot = max(applied, base)
        // The state machine may be ahead of the persisted commit index (the hard state is not
        // rewritten for every commit); what it applied was committed.
        self.committed = max(min(committed, last), appliedOrSnapshot)
        persisted = last
        handedOut = last
        self.applied = appliedOrSnapshot
        handedOutForApply = appliedOrSnapshot
    }

    /// Whether the state machine found at start-up was behind the snapshot: the driver must
    /// install the snapshot's image before applying anything (the replica's first ``Ready``
    /// hands it out).
    private(set) var stateMachineBehindSnapshot = false

    /// The first index still in the log (one past the snapshot).
    var firstIndex: UInt64 { snapshotIndex + 1 }
    /// The last index in the log (the snapshot's when empty).
    var lastIndex: UInt64 { snapshotIndex + UInt64(entries.count) }
    /// The term of the last entry.
    var lastTerm: UInt64 { entries.last?.term ?? snapshotTerm }

    /// The term at `index`: 0 before the log starts (index 0), the snapshot's term at its index,
    /// nil when compacted away or beyond the end.
    func term(at index: UInt64) -> UInt64? {
        if index == snapshotIndex { return snapshotTerm }
        if index < snapshotIndex || index > lastIndex { return nil }
        return entries[Int(index - snapshotIndex - 1)].term
    }

    /// The entry at `index` (must be in the log).
    func entry(at index: UInt64) -> RaftEntry {
        precondition(index > snapshotIndex && index <= lastIndex, "entry \(index) is in the log")
        return entries[Int(index - snapshotIndex - 1)]
    }

    /// Whether (index, term) names an entry this log holds.
    func matches(index: UInt64, term: UInt64) -> Bool { self.term(at: index) == term }

    /// Whether a log ending at (lastIndex, lastTerm) is at least as up to date as this one (§5.4.1).
    func isUpToDate(lastIndex otherIndex: UInt64, lastTerm otherTerm: UInt64) -> Bool {
        otherTerm > lastTerm || (otherTerm == lastTerm && otherIndex >= lastIndex)
    }

    /// Entries from `index` on, at most `maxBytes` of them but always one.
    func entries(from index: UInt64, maxBytes: Int) -> [RaftEntry] {
        precondition(index > snapshotIndex, "entries before the snapshot are gone")
        guard index <= lastIndex else { return [] }
        var result: [RaftEntry] = []
        var bytes = 0
        for position in Int(index - snapshotIndex - 1)..<entries.count {
            let entry = entries[position]
            if !result.isEmpty && bytes + entry.sizeForFlowControl > maxBytes { break }
            bytes += entry.sizeForFlowControl
            result.append(entry)
        }
        return result
    }

    /// The hint for a leader whose append at (index, term) did not match: the largest index at or
    /// below `index` whose term is at most `term` (etcd-io/raft's findConflictByTerm), and its term.
    func conflictHint(index: UInt64, term: UInt64) -> (index: UInt64, term: UInt64) {
        var candidate = min(index, lastIndex)
        while candidate > snapshotIndex, let found = self.term(at: candidate), found > term {
            candidate -= 1
        }
        return (candidate, self.term(at: candidate) ?? 0)
    }

    // MARK: Changes

    /// Appends entries of a leader after a match at `entries.first.index - 1`; a conflicting
    /// suffix (same index, other term) is dropped first. Returns the first index that changed,
    /// or nil when every entry was already there.
    mutating func append(matching newEntries: [RaftEntry]) -> UInt64? {
        guard let first = newEntries.first else { return nil }
        precondition(first.index > snapshotIndex && first.index <= lastIndex + 1, "appends continue the log")
        var skip = 0
        while skip < newEntries.count, term(at: newEntries[skip].index) == newEntries[skip].term { skip += 1 }
        guard skip < newEntries.count else { return nil }
        let from = newEntries[skip].index
        precondition(from > committed, "a committed entry (\(from) <= \(committed)) is never replaced")
        truncate(after: from - 1)
        entries.append(contentsOf: newEntries[skip...])
        return from
    }

    /// Appends new entries of this replica's own term at the end.
    mutating func appendOwn(_ entry: RaftEntry) {
        precondition(entry.index == lastIndex + 1, "own entries go at the end")
        precondition(entry.term >= lastTerm, "terms never decrease along the log")
        entries.append(entry)
    }

    private mutating func truncate(after index: UInt64) {
        guard index < lastIndex else { return }
        entries.removeLast(Int(lastIndex - index))
        handedOut = min(handedOut, index)
        persisted = min(persisted, index)
    }

    /// Raises the commit index (never lowers it).
    mutating func commit(to index: UInt64) {
        precondition(index <= lastIndex, "commit \(index) is within the log (last \(lastIndex))")
        if index > committed { committed = index }
    }

    /// Entries not yet handed to the driver to persist; marks them handed out.
    mutating func takeUnstable() -> [RaftEntry] {
        guard handedOut < lastIndex else { return [] }
        let result = Array(entries[Int(handedOut - snapshotIndex)...])
        handedOut = lastIndex
        return result
    }

    /// Records that the driver made the log durable up to (index, term). Ignored when the entry
    /// there has been replaced since (the durable one was another term's and is gone).
    mutating func persisted(index: UInt64, term: UInt64) {
        guard index > persisted, index <= handedOut, self.term(at: index) == term else { return }
        persisted = index
    }

    /// Committed, durable entries not yet handed out for applying; marks them handed out.
    mutating func takeCommitted(maxBytes: Int) -> [RaftEntry] {
        let limit = min(committed, persisted)
        guard handedOutForApply < limit else { return [] }
        var result: [RaftEntry] = []
        var bytes = 0
        var index = handedOutForApply + 1
        while index <= limit {
            let entry = self.entry(at: index)
            if !result.isEmpty && bytes + entry.sizeForFlowControl > maxBytes { break }
            bytes += entry.sizeForFlowControl
            result.append(entry)
            index += 1
        }
        handedOutForApply = index - 1
        return result
    }

    /// Records that the state machine applied up to `index`.
    mutating func applied(index: UInt64) {
        precondition(index <= handedOutForApply, "only entries handed out are applied (\(index) > \(handedOutForApply))")
        if index > applied { applied = index }
    }

    /// Drops entries up to `index` (they are in a durable snapshot). Only applied entries go.
    mutating func compact(through index: UInt64) {
        guard index > snapshotIndex else { return }
        precondition(index <= applied, "only applied entries are compacted (\(index) > \(applied))")
        let term = self.term(at: index)!
        entries.removeFirst(Int(index - snapshotIndex))
        snapshotIndex = index
        snapshotTerm = term
    }

    /// Replaces the whole log with a snapshot received from the leader. Everything up to its
    /// index counts as durable and applied from now on: the Ready that hands the snapshot out
    /// has the driver install it before anything else, and nothing of this log before it is
    /// handed out again.
    mutating func restore(_ snapshot: SnapshotMetadata) {
        precondition(snapshot.index > committed, "a snapshot moves the log forward")
        entries = []
        snapshotIndex = snapshot.index
        snapshotTerm = snapshot.term
        committed = snapshot.index
        persisted = snapshot.index
        handedOut = snapshot.index
        applied = snapshot.index
        handedOutForApply = snapshot.index
    }
}
