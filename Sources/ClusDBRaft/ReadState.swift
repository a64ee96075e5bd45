/// A linearizable read that may now be served: once the state machine has applied `index`, a
/// read of it sees every write acknowledged before the read was requested (ReadIndex, §6.4).
public struct ReadState: Sendable, Equatable {
    /// The context the read was requested with.
    public var context: UInt64
    /// The index the state machine must have applied first.
    public var index: UInt64

    /// Creates a read state.
    public init(context: UInt64, index: UInt64) {
        self.context = context
        self.index = index
    }
}
