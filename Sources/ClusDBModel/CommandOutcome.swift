/// What applying one ``HiveCommand`` did. A failed command changed nothing.
public enum CommandOutcome: Sendable, Equatable {
    /// The command succeeded.
    case done
    /// `createKey` made a new key (`REG_CREATED_NEW_KEY`).
    case keyCreated
    /// `createKey` opened an existing key (`REG_OPENED_EXISTING_KEY`).
    case keyOpened
    /// The command failed and changed nothing.
    case failed(ClusterError)
}

/// A committed command's outcome together with the log index it was committed at.
public struct CommitResult: Sendable, Equatable {
    /// The quorum-log index of the entry.
    public var index: UInt64
    /// What applying it did.
    public var outcome: CommandOutcome

    /// Creates a result.
    public init(index: UInt64, outcome: CommandOutcome) {
        self.index = index
        self.outcome = outcome
    }
}
