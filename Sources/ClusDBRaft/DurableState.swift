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
