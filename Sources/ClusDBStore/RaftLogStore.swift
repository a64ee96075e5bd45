import ClusDBModel
import ClusDBRaft

/// What the node driver needs of the durable Raft log (issue 10, point 2): the entries' terms
/// without reading files, bounded reads, appends that may first replace a conflicting suffix,
/// and compaction behind a checkpoint. ``QuorumLog`` is the implementation on disk.
///
/// The driver carries a ``Ready``'s entries out with ``save(_:)``: they count as persisted (and
/// may be acknowledged) only once it returns.
public protocol RaftLogStore: AnyObject {
    /// The index of the first entry held; `lastIndex + 1` when the log holds none.
    var firstEntryIndex: UInt64 { get }
    /// The index of the last entry held; `firstEntryIndex - 1` when it holds none.
    var lastEntryIndex: UInt64 { get }
    /// The term of the entry at `index`, nil when the log does not hold it.
    func term(at index: UInt64) -> UInt64?
    /// The entries from `start` through `end` (both held), at most `maxBytes` of payload but
    /// always one.
    func raftEntries(from start: UInt64, through end: UInt64, maxBytes: Int) throws(ClusterError) -> [RaftEntry]
    /// Makes `entries` durable. When the first one's index is within the log, the log from there
    /// on is removed first, crash-safely (a power loss leaves a prefix of the old log or the new
    /// log's prefix, never a mix).
    func save(_ entries: [RaftEntry]) throws(ClusterError)
    /// Drops entries through `index` where whole files allow (a durable checkpoint covers them).
    func compact(through index: UInt64) throws(ClusterError)
    /// Drops every entry, crash-safely: a snapshot received from the leader replaced the log
    /// (it is durable before this is called), and the next ``save(_:)`` starts after it. A crash
    /// part-way leaves a prefix of the old log, which start-up discards against the snapshot
    /// (``DurableState/entries(continuing:from:)``).
    func discardAll() throws(ClusterError)
}

extension QuorumLog: RaftLogStore {
    /// The index of the first entry held; `lastIndex + 1` when the log holds none.
    public var firstEntryIndex: UInt64 { firstIndex ?? (lastEntryIndex + 1) }

    /// The index of the last entry held; one before the next append's when it holds none.
    public var lastEntryIndex: UInt64 {
        if let lastIndex { return lastIndex }
        return (segments.last?.firstIndex ?? 1) - 1
    }

    /// Reads the entries from `start` through `end`, at most `maxBytes` of payload but always one.
    public func raftEntries(from start: UInt64, through end: UInt64, maxBytes: Int) throws(ClusterError) -> [RaftEntry] {
        var result: [RaftEntry] = []
        var bytes = 0
        var full = false
        try readEntries(from: start, through: end) { (batch: [LogEntry]) throws(ClusterError) in
            for entry in batch where !full {
                if !result.isEmpty && bytes + entry.payload.count > maxBytes {
                    full = true
                    return
                }
                bytes += entry.payload.count
                result.append(RaftEntry(entry))
            }
        }
        return result
    }

    /// Appends `entries`, first removing the log from the first one's index on when it is held.
    public func save(_ entries: [RaftEntry]) throws(ClusterError) {
        guard let first = entries.first else { return }
        if first.index <= lastEntryIndex && lastIndex != nil { try truncateSuffix(from: first.index) }
        try append(entries.map(LogEntry.init))
    }

    /// Removes whole segments behind `index` (the last one always stays).
    public func compact(through index: UInt64) throws(ClusterError) {
        try removeSegments(through: index)
    }

    /// Removes every entry (the suffix from the first one); the emptied segment goes at the
    /// next append, which starts a segment at its own index.
    public func discardAll() throws(ClusterError) {
        guard lastIndex != nil else { return }
        try truncateSuffix(from: firstEntryIndex)
    }
}

extension RaftEntry {
    /// The Raft view of a quorum-log entry.
    public init(_ entry: LogEntry) {
        let kind: RaftEntry.Kind
        switch entry.kind {
        case .command: kind = .command
        case .noop: kind = .noOp
        case .configurationChange: kind = .configurationChange
        }
        self.init(index: entry.index, term: entry.term, kind: kind, payload: entry.payload)
    }
}

extension LogEntry {
    /// The quorum-log form of a Raft entry.
    public init(_ entry: RaftEntry) {
        let kind: LogEntry.Kind
        switch entry.kind {
        case .command: kind = .command
        case .noOp: kind = .noop
        case .configurationChange: kind = .configurationChange
        }
        self.init(index: entry.index, term: entry.term, kind: kind, payload: entry.payload)
    }
}
