/// What the replica asks its driver to do, taken with ``RaftReplica/takeReady()``.
///
/// The driver carries it out in this order: send ``messages`` (they may go before anything is
/// durable: a leader's appends travel while its own write is in flight, §10.2.1); make
/// ``snapshot``, ``hardState`` and ``entries`` durable (entries replace any suffix of the log
/// from the first one's index on); then send ``messagesAfterPersist`` (votes and append
/// acknowledgements, which promise durability); report ``RaftReplica/persisted(index:term:)``;
/// apply ``committedEntries`` in order and report ``RaftReplica/applied(index:)``; serve
/// ``readStates`` once their index is applied.
public struct Ready: Sendable, Equatable {
    /// Messages that may be sent at once.
    public var messages: [RaftMessage] = []
    /// A snapshot to install before anything else of this value (the state machine is replaced
    /// by the checkpoint's image; the log is emptied up to its index).
    public var snapshot: SnapshotMetadata?
    /// The hard state to persist, when it changed.
    public var hardState: HardState?
    /// Entries to append durably; the first one's index may be below the log's end, and then the
    /// log from there on is replaced (a conflicting suffix the leader overrode).
    public var entries: [RaftEntry] = []
    /// Messages to send only once the hard state, snapshot and entries above are durable.
    public var messagesAfterPersist: [RaftMessage] = []
    /// Entries committed and durable here, to apply in order.
    public var committedEntries: [RaftEntry] = []
    /// Reads that may be served once their index is applied.
    public var readStates: [ReadState] = []

    /// Creates an empty value.
    public init() {}

    /// Whether there is nothing to do.
    public var isEmpty: Bool {
        messages.isEmpty && snapshot == nil && hardState == nil && entries.isEmpty && messagesAfterPersist.isEmpty
            && committedEntries.isEmpty && readStates.isEmpty
    }
}
