/// What a snapshot (a cluster checkpoint) stands for: the log up to `index`, whose last entry had
/// `term`, and the configuration in force there. The bytes themselves (the checkpoint image)
/// never pass through the replica: the driver and the transport hold and stream them.
public struct SnapshotMetadata: Sendable, Equatable {
    /// The last index the snapshot covers.
    public var index: UInt64
    /// The term of the entry at `index`.
    public var term: UInt64
    /// The configuration committed at `index`.
    public var configuration: RaftConfiguration

    /// Creates snapshot metadata.
    public init(index: UInt64, term: UInt64, configuration: RaftConfiguration) {
        self.index = index
        self.term = term
        self.configuration = configuration
    }
}
