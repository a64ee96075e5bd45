/// What the replica asks its driver to do, taken with ``RaftReplica/takeReady()``.
///
/// The driver carries it out in this order: send ``messages`` (they may go before anything is
/// durable: a leader's appends travel while its own write is in flight, §10.2.1); make
/// ``snapshot``, ``hardState`` and ``entries`` durable, in that order (entries replace any
/// suffix of the log from the first one's index on; the hard state goes first because a vote
/// must never be forgotten, while a commit index past the durable log is only lowered at the
/// next start); then send ``messagesAfterPersist`` (votes and append acknowledgements, which
/// promise durability, and every message of a Ready whose term or vote is new); report
/// ``RaftReplica/persisted(index:term:)``; apply ``committedEntries`` in order and report
/// ``RaftReplica/applied(index:)``; serve ``readStates`` once their index is applied.
/// ``committedEntries`` never go past what an *earlier* persistence made durable, so a driver
/// may apply them while this Ready's own persistence is in flight (``ReplicaDriver`` does).
///
/// One Ready is in flight at a time: the driver takes the next only once this one's state is
/// durable (it may step messages, ticks and requests into the replica meanwhile). That is what
/// lets a later Ready's ``messages`` rely on this one's hard state.
public struct Ready: Sendable, Equatable {
    /// Messages that may be sent at once.
    public var messages: [RaftMessage] = []
    /// A snapshot to install before anything else of this value: the state machine is replaced
    /// by the checkpoint's image and the whole log by the snapshot (no entry survives it; the
    /// leader sends what follows). Also handed out at start-up when the state machine found on
    /// disk is behind the durable snapshot (a crash came while installing it).
    public var snapshot: SnapshotMetadata?
    /// The hard state to persist, when it changed.
    public var hardState: HardState?
    /// Entries to append durably; the first one's index may be below the log's end, and then the
    /// log from there on is replaced (a conflicting suffix the leader overrode).
    public var entries: [RaftEntry] = []
    /// Messages to send only once the hard state, snapshot and entries above are durable.
    public var messagesAfterPersist: [RaftMessage] = []
    /// Entries committed and already durable here (by an earlier persistence), to apply in order.
    public var committedEntries: [RaftEntry] = []
    /// Reads that may be served once their index is applied.
    public var readStates: [ReadState] = []
    /// Contexts of reads requested here that will get no ``ReadState`` (the leader refused
    /// them, or this replica's leader or leadership changed): retry them.
    public var droppedReads: [UInt64] = []

    /// Creates an empty value.
    public init() {}

    /// Whether there is nothing to do.
    public var isEmpty: Bool {
        messages.isEmpty && snapshot == nil && hardState == nil && entries.isEmpty && messagesAfterPersist.isEmpty
            && committedEntries.isEmpty && readStates.isEmpty && droppedReads.isEmpty
    }
}
