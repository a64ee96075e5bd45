/// What a replica starts from: what its driver found durable at start-up.
public struct DurableState: Sendable, Equatable {
    /// The persisted term, vote and commit index.
    public var hardState: HardState
    /// The newest snapshot (cluster checkpoint) the log continues, or nil.
    public var snapshot: SnapshotMetadata?
    /// The durable log after the snapshot, contiguous.
    public var entries: [RaftEntry]
    /// The index the state machine has applied (it is at or past the snapshot's).
    public var appliedIndex: UInt64
    /// The configuration at index 0, before any entry: the cluster's bootstrap members. Used when
    /// there is no snapshot; every member of one cluster starts from the same.
    public var bootstrapConfiguration: RaftConfiguration

    /// The durable log entries a replica may start with after `snapshot` (Raft Figure 13): when
    /// the log holds the snapshot's last entry (same index and term), the entries after it; else
    /// none — the log is from a history the snapshot replaced (a crash came between making a
    /// received snapshot durable and discarding the old log), and its entries, never committed
    /// where they conflict, must not follow the snapshot.
    /// - Parameters:
    ///   - snapshot: the durable snapshot, if any.
    ///   - log: the durable log, contiguous, in index order.
    public static func entries(continuing snapshot: SnapshotMetadata?, from log: [RaftEntry]) -> [RaftEntry] {
        guard let snapshot else { return log }
        guard let first = log.first else { return [] }
        if first.index > snapshot.index + 1 { return [] }
        if first.index == snapshot.index + 1 {
            // Nothing to compare at the snapshot's index: the log continues it if its terms do.
            return first.term >= snapshot.term ? log : []
        }
        let position = Int(snapshot.index - first.index)
        guard position < log.count, log[position].term == snapshot.term else { return [] }
        return Array(log[(position + 1)...])
    }

    /// Creates a durable state.
    public init(
        hardState: HardState = HardState(), snapshot: SnapshotMetadata? = nil, entries: [RaftEntry] = [], appliedIndex: UInt64 = 0,
        bootstrapConfiguration: RaftConfiguration
    ) {
        self.hardState = hardState
        self.snapshot = snapshot
        self.entries = entries
        self.appliedIndex = appliedIndex
        self.bootstrapConfiguration = bootstrapConfiguration
    }
}
