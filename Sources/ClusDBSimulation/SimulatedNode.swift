import ClusDBRaft
import ClusDBModel
import ClusDBStore

/// One simulated ClusDB node: a replica and the driver work the production node will do around
/// it — persisting, sending, applying, compacting, answering clients — with what is durable kept
/// apart from what a crash loses. A class: the simulation changes nodes in place, and copying a
/// replica with its log on every change was most of a run's time.
final class SimulatedNode {
    /// Whom the driver answers: a simulated client and its request.
    enum Ticket: Sendable, Equatable {
        /// A write of `client`.
        case write(client: Int, write: ClientWrite)
        /// A read of `client`: its operation in the history (a client that gave up on a read
        /// and asked again for the same value must not get the old request's late answer).
        case read(client: Int, historyIndex: Int, key: String)
    }

    let id: NodeID
    /// The production driver around the replica; nil while crashed.
    var driver: ReplicaDriver<Ticket>?
    /// The replica, for reading (it changes only through the driver).
    var replica: RaftReplica? { driver?.replica }
    /// What survives a crash: hard state, log, snapshot metadata.
    var durable: DurableState
    /// The state machine, the hive; durable, applied atomically with its index.
    let stateMachine: SimulatedStateMachine
    /// The image of the durable snapshot (a cluster checkpoint), for followers that need it; nil
    /// before the first. With a disk, read back from the checkpoint file at each start.
    var snapshotImage: SimulatedStateMachine.Image?
    /// The images written as checkpoint files, by index: the ghost state a checkpoint read back
    /// from its file is given, and the contents it must have (those the disk still keeps).
    private var writtenImages: [UInt64: SimulatedStateMachine.Image] = [:]
    /// What the last start found wrong with a checkpoint read back from its file (a finding: its
    /// checks passed, yet it is not what was written); the node is then left down.
    private(set) var readBackMismatch: String?
    /// Newer checkpoints the last start passed over as damaged.
    private(set) var checkpointsPassedOver = 0
    /// Whether the last start was refused by its storage steps (``SimulatedDisk/open()``, or a
    /// log that does not continue the checkpoint), not by the replica.
    private(set) var startRefusedByStorage = false
    /// Images that arrived with InstallSnapshot messages, by snapshot index, until a Ready hands
    /// the snapshot out (volatile: the transport holds them in memory or a temporary file).
    var receivedImages: [UInt64: SimulatedStateMachine.Image] = [:]
    /// The production quorum log and hard-state file under a power-loss model, when the run
    /// uses disks (``SimulationOptions/diskDirectory``); else only the model above.
    var disk: SimulatedDisk?
    /// The Ready whose persistence is under way (one at a time), and the step it completes at.
    var readyInFlight: (ready: Ready, image: SimulatedStateMachine.Image?, configurations: [RaftConfiguration], completesAt: Int)?
    /// The configurations the replica had since the last Ready was taken: a message in a Ready
    /// was created under one of them (checkers judge it by that one, not by the configuration
    /// in force when a slow disk lets it leave).
    var configurationsSinceTake: [RaftConfiguration] = []

    /// Notes the replica's configuration after an input.
    func noteConfiguration() {
        guard let configuration = replica?.configuration, configurationsSinceTake.last != configuration else { return }
        configurationsSinceTake.append(configuration)
    }

    var isUp: Bool { driver != nil }

    /// A node with an empty hive.
    init(id: NodeID, durable: DurableState) throws(ClusterError) {
        self.id = id
        self.durable = durable
        stateMachine = try SimulatedStateMachine(bootstrap: durable.bootstrapConfiguration)
    }

    /// Starts (or restarts) the replica from the durable state. Read contexts start from a new
    /// random nonce, as a real driver's do: answers meant for the previous run may still arrive.
    /// - Throws: the replica's refusal of the durable state (a finding: no crash of a correct
    ///   driver may leave a state the replica refuses).
    func start(options: RaftOptions, seed: UInt64) throws(ClusterError) {
        readBackMismatch = nil
        checkpointsPassedOver = 0
        startRefusedByStorage = false
        if let disk {
            // The production start-up: recovery of the log, the newest valid checkpoint as the
            // snapshot, the hard state, and the log's entries, which must continue the snapshot.
            let recovered: SimulatedDisk.Opened
            do { recovered = try disk.open() } catch {
                startRefusedByStorage = true
                throw error
            }
            durable.hardState = recovered.hardState
            checkpointsPassedOver = recovered.passedOver.count
            if let (state, hive) = recovered.checkpoint {
                // What was read back must be what was written; anything else is damage the
                // checks let through (a finding, reported before anything uses it).
                guard let written = writtenImages[state.appliedIndex] else {
                    readBackMismatch = "a checkpoint that passed its checks records index \(state.appliedIndex), at which this node wrote none"
                    return
                }
                guard try hive.exportBlocking(.root) == written.hive.exportBlocking(.root), try hive.configuration() == written.hive.configuration(),
                    try hive.state() == written.hive.state()
                else {
                    readBackMismatch = "the checkpoint at index \(state.appliedIndex) passed its checks but holds other keys, values or state than were written"
                    return
                }
                let configuration = try hive.configuration() ?? durable.bootstrapConfiguration
                durable.snapshot = SnapshotMetadata(index: state.appliedIndex, term: state.appliedTerm, configuration: configuration)
                snapshotImage = try SimulatedStateMachine.image(readBack: hive, ghost: written)
            } else {
                durable.snapshot = nil
                snapshotImage = nil
            }
            durable.entries = DurableState.entries(continuing: durable.snapshot, from: recovered.entries)
            if durable.entries.isEmpty, let snapshot = durable.snapshot, let last = recovered.entries.last, last.index > snapshot.index {
                // As NodeStorage refuses it: starting would let a new term replace durable entries.
                startRefusedByStorage = true
                throw ClusterError(.clusterLogCorrupt, "the quorum log does not continue checkpoint \(snapshot.index) (term \(snapshot.term))")
            }
            let reach = durable.entries.last?.index ?? durable.snapshot?.index ?? 0
            if stateMachine.appliedIndex > reach {
                // The hive is ahead of everything durable beside it: a follower whose only
                // checkpoint came with a snapshot (its log was discarded) and was then damaged.
                // The replica would refuse it; say why. (Taking the intact hive as the snapshot
                // instead is issue 11's, with the follower's recovery.)
                startRefusedByStorage = true
                throw ClusterError(
                    .clusterLogCorrupt,
                    "the hive applied \(stateMachine.appliedIndex), but the log ends at \(durable.entries.last?.index ?? 0) and "
                        + "\(SimulatedDisk.logBeforeCheckpointMessage) \(durable.snapshot?.index ?? 0)")
            }
        }
        var state = durable
        state.appliedIndex = stateMachine.appliedIndex
        var nonces = RandomSource(seed: ~seed)
        let replica = try RaftReplica(id: id, durable: state, options: options, random: RandomSource(seed: seed))
        driver = ReplicaDriver(replica: replica, readNonce: nonces.next() >> 32)
        configurationsSinceTake = [replica.configuration]
    }

    /// Loses everything volatile; a disk keeps what `tear` leaves of its unsynced writes, and
    /// with `flippingABit` has one bit of its files flipped.
    /// - Returns: the bit flipped, if one was.
    func crash(tear: PowerLossDisk.Tear, flippingABit: Bool, random: inout RandomSource) throws(ClusterError) -> SimulatedDisk.BitFlip? {
        let flipped = try disk?.crash(tear: tear, flippingABit: flippingABit, random: &random)
        driver = nil
        readyInFlight = nil
        receivedImages = [:]
        configurationsSinceTake = []
        return flipped
    }

    /// How far a crash let a Ready's persistence get, in the driver's order (``Ready``): the
    /// snapshot's checkpoint file, the state machine replaced by its image, the hard state, then
    /// entries one by one (a log file keeps a prefix of what was written).
    enum PersistStage: Comparable {
        case nothing
        case snapshotFile
        case snapshotInstalled
        case hardState
        case entries(Int)
        case all

        static func < (left: PersistStage, right: PersistStage) -> Bool { left.rank < right.rank }
        private var rank: Int {
            switch self {
            case .nothing: 0
            case .snapshotFile: 1
            case .snapshotInstalled: 2
            case .hardState: 3
            case .entries(let count): 4 + count
            case .all: Int.max
            }
        }
    }

    /// Makes a Ready's snapshot, hard state and entries durable, up to `stage` (all of it unless
    /// a crash cuts it short).
    func persist(_ ready: Ready, image: SimulatedStateMachine.Image?, upTo stage: PersistStage = .all) throws(ClusterError) {
        if let snapshot = ready.snapshot, stage >= .snapshotFile {
            guard let image else { preconditionFailure("a Ready's snapshot comes with its image") }
            precondition(image.appliedIndex == snapshot.index, "the image is the snapshot's")
            try checkMembership(of: image, against: snapshot)
            if let disk {
                // The received image becomes the newest checkpoint file, then the log goes.
                try writeCheckpoint(image, on: disk)
                try disk.discardLog()
            }
            durable.snapshot = snapshot
            durable.entries = []
            snapshotImage = image
            if stage >= .snapshotInstalled { try stateMachine.install(image) }
        }
        if let hardState = ready.hardState, stage >= .hardState {
            durable.hardState = hardState
            try disk?.save(hardState)
        }
        if !ready.entries.isEmpty, stage > .hardState, let disk {
            // On a disk, a crash part-way through the append is a power loss before its sync:
            // the tear chosen at the crash decides what of the group survives.
            if stage == .all { try disk.save(ready.entries) } else { try disk.saveUnsynced(ready.entries) }
        }
        if let first = ready.entries.first, stage > .hardState {
            let base = durable.snapshot?.index ?? 0
            precondition(first.index > base && first.index <= base + UInt64(durable.entries.count) + 1, "entries continue the durable log")
            durable.entries.removeLast(durable.entries.count - Int(first.index - base - 1))
            let count: Int
            if case .entries(let kept) = stage { count = min(kept, ready.entries.count) } else { count = ready.entries.count }
            durable.entries.append(contentsOf: ready.entries.prefix(count))
        }
    }

    /// The image for a Ready's snapshot, taken when the Ready is: one that came with the
    /// message, or (at start-up, the state machine behind the snapshot) the durable checkpoint's.
    func takeImage(for ready: Ready) -> SimulatedStateMachine.Image? {
        guard let snapshot = ready.snapshot else { return nil }
        defer { receivedImages = [:] }
        return receivedImages[snapshot.index] ?? (snapshotImage?.appliedIndex == snapshot.index ? snapshotImage : nil)
    }

    /// The term of the durable log's entry at `index` (the snapshot's at its index, 0 at 0).
    func durableTerm(at index: UInt64) -> UInt64? {
        let base = durable.snapshot?.index ?? 0
        if index == base { return durable.snapshot?.term ?? 0 }
        guard index > base, index <= base + UInt64(durable.entries.count) else { return nil }
        return durable.entries[Int(index - base - 1)].term
    }

    /// Drops durable entries up to `index` (a snapshot at it is durable now).
    func compactDurable(through index: UInt64, term: UInt64, configuration: RaftConfiguration) throws(ClusterError) {
        let base = durable.snapshot?.index ?? 0
        guard index > base else { return }
        // The image first: if it cannot be taken, the durable state stays as it was.
        let image = try stateMachine.image()
        precondition(image.appliedIndex == index, "a snapshot's image is the state machine at its index")
        let snapshot = SnapshotMetadata(index: index, term: term, configuration: configuration)
        try checkMembership(of: image, against: snapshot)
        if let disk {
            try writeCheckpoint(image, on: disk)
        }
        durable.entries.removeFirst(Int(index - base))
        durable.snapshot = snapshot
        snapshotImage = image
    }

    /// Writes a fresh checkpoint of the live hive when a start set the newest aside as damaged,
    /// as the node does before serving. The replica's snapshot stays the older checkpoint until
    /// the next compaction; the next start finds the fresh one.
    /// - Returns: whether one was written.
    func writeFreshCheckpointIfNeeded() throws(ClusterError) -> Bool {
        guard let disk, stateMachine.appliedIndex > 0, try disk.needsFreshCheckpoint() else { return false }
        try writeCheckpoint(try stateMachine.image(), on: disk)
        return true
    }

    /// Checks that a snapshot's image records the membership the replica gives the snapshot: a
    /// checkpoint read back at start-up takes its configuration from the image.
    /// - Throws: `ERROR_INVALID_DATA` naming both (a finding).
    private func checkMembership(of image: SimulatedStateMachine.Image, against snapshot: SnapshotMetadata) throws(ClusterError) {
        let recorded = try image.hive.configuration()
        guard recorded == snapshot.configuration else {
            throw ClusterError(
                .invalidData,
                "membership: the image at index \(snapshot.index) records \(recorded.map { "voters \($0.voters.sorted()) learners \($0.learners.sorted())" } ?? "none"), "
                    + "the snapshot voters \(snapshot.configuration.voters.sorted()) learners \(snapshot.configuration.learners.sorted())")
        }
    }

    /// Writes `image` as a checkpoint file and prunes, remembering it (first: a write that
    /// fails part-way may still leave the file in place) and forgetting images older than every
    /// checkpoint the disk keeps.
    private func writeCheckpoint(_ image: SimulatedStateMachine.Image, on disk: SimulatedDisk) throws(ClusterError) {
        writtenImages[image.appliedIndex] = image
        try disk.writeCheckpoint(of: image.hive)
        if let oldestKept = try disk.pruneCheckpoints() { writtenImages = writtenImages.filter { $0.key >= oldestKept } }
    }
}
