import ClusDBRaft
import ClusDBModel

/// One simulated ClusDB node: a replica and the driver work the production node will do around
/// it — persisting, sending, applying, compacting, answering clients — with what is durable kept
/// apart from what a crash loses. A class: the simulation changes nodes in place, and copying a
/// replica with its log on every change was most of a run's time.
final class SimulatedNode {
    /// A client request this node holds until it can answer it.
    struct WaitingWrite: Sendable, Equatable {
        var client: Int
        var write: ClientWrite
    }

    /// A read waiting for its read index, then for the state machine to apply it.
    struct WaitingRead: Sendable, Equatable {
        var client: Int
        /// The client's operation in the history: a client that gave up on a read and asked
        /// again for the same value must not get the old request's late answer.
        var historyIndex: Int
        var key: String
        var context: UInt64
        var index: UInt64?
    }

    let id: NodeID
    /// Nil while crashed.
    var replica: RaftReplica?
    /// What survives a crash: hard state, log, snapshot metadata.
    var durable: DurableState
    /// The state machine; durable, applied atomically with its index (like the hive).
    var stateMachine = KeyValueStateMachine()
    /// The image of the durable snapshot (a cluster checkpoint), for followers that need it.
    var snapshotImage = KeyValueStateMachine()
    /// An image that arrived with an InstallSnapshot message, until the replica asks for it.
    var receivedImage: KeyValueStateMachine?
    /// Volatile: requests waiting on this node.
    var waitingWrites: [UInt64: WaitingWrite] = [:]
    var waitingReads: [WaitingRead] = []
    var nextReadContext: UInt64 = 1

    var isUp: Bool { replica != nil }

    init(id: NodeID, durable: DurableState) {
        self.id = id
        self.durable = durable
    }

    /// Starts (or restarts) the replica from the durable state.
    func start(options: RaftOptions, seed: UInt64) {
        var state = durable
        state.appliedIndex = stateMachine.appliedIndex
        replica = RaftReplica(id: id, durable: state, options: options, random: RandomSource(seed: seed))
    }

    /// Loses everything volatile.
    func crash() {
        replica = nil
        waitingWrites = [:]
        waitingReads = []
        receivedImage = nil
    }

    /// Makes a Ready's snapshot, hard state and entries durable.
    func persist(_ ready: Ready) {
        if let snapshot = ready.snapshot {
            let image = receivedImage ?? KeyValueStateMachine()
            precondition(image.appliedIndex == snapshot.index, "the image arrived with its snapshot message")
            durable.snapshot = snapshot
            durable.entries = []
            snapshotImage = image
            stateMachine.install(image)
            receivedImage = nil
        }
        if let hardState = ready.hardState { durable.hardState = hardState }
        if let first = ready.entries.first {
            let base = durable.snapshot?.index ?? 0
            precondition(first.index > base && first.index <= base + UInt64(durable.entries.count) + 1, "entries continue the durable log")
            durable.entries.removeLast(durable.entries.count - Int(first.index - base - 1))
            durable.entries.append(contentsOf: ready.entries)
        }
    }

    /// Drops durable entries up to `index` (a snapshot at it is durable now).
    func compactDurable(through index: UInt64, term: UInt64, configuration: RaftConfiguration) {
        let base = durable.snapshot?.index ?? 0
        guard index > base else { return }
        durable.entries.removeFirst(Int(index - base))
        durable.snapshot = SnapshotMetadata(index: index, term: term, configuration: configuration)
        snapshotImage = stateMachine
    }
}
