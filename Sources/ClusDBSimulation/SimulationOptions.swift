import ClusDBRaft
import ClusDBModel

/// What one simulation run does: its seed decides everything else.
public struct SimulationOptions: Sendable, Equatable {
    /// The seed of every random choice: equal seeds give equal runs (and trace digests).
    public var seed: UInt64
    /// Voters at the start (1–7).
    public var nodes = 3
    /// Steps of simulated time the faulty phase lasts; a healing phase follows.
    public var steps = 3_000
    /// Steps between two ticks of each replica's clock.
    public var stepsPerTick = 5
    /// Steps after the faulty phase in which the cluster must elect a leader and converge
    /// (liveness), with every link healed and every node up.
    public var healingSteps = 3_000
    /// Clients issuing writes and reads.
    public var clients = 3
    /// Registry values the clients contend on.
    public var keys = 3
    /// Per message: the chance it is lost, and that it is delivered twice.
    public var lossRate = 0.05
    /// The chance a message is duplicated.
    public var duplicationRate = 0.02
    /// The most steps a message takes; each takes 1...this, so messages overtake each other.
    public var maxDelaySteps = 8
    /// Per step: the chance a node crashes (losing everything not persisted), a crashed node
    /// restarts, the network's links change (a random partition, one-way links included), or
    /// heal.
    public var crashRate = 0.004
    /// The chance per step that a crashed node restarts.
    public var restartRate = 0.02
    /// The chance per step that the links are cut anew.
    public var partitionRate = 0.004
    /// The chance per step that every link heals.
    public var healRate = 0.006
    /// The chance that a crash falls between a Ready's sending and its persisting, or between
    /// persisting and the messages that wait for it (rather than between two Readys).
    public var crashInsideReadyRate = 0.5
    /// The most steps a node's disk takes to make a Ready durable (0: at once). Meanwhile the
    /// replica takes messages, ticks and requests, and a leader's appends are out before its
    /// own copy is durable.
    public var maxPersistDelaySteps = 3
    /// Steps a client waits for an answer before it tries another node (with the same session
    /// sequence number, so a write is applied once).
    public var clientTimeoutSteps = 150
    /// Attempts per operation before the client gives up (its outcome then stays unknown).
    public var clientAttemptsMax = 5
    /// The chance per step that a voter set change or a leadership transfer is requested.
    public var membershipChangeRate = 0.002
    /// Applied entries between two compactions of a node's log (snapshots for laggards).
    public var compactionEveryEntries = 40
    /// Bytes of entries per append (small values split groups across messages: more interleavings).
    public var maxAppendBytes = 4096
    /// When set, each node keeps its log and hard state in the production files (quorum-log
    /// segments, `raft.state`) in a directory below this one (tmpfs is best: syncs are only
    /// modelled), under a power-loss model: a crash keeps what a power loss would, torn writes
    /// included, and a restart runs the production recovery. Nil: an in-memory model only.
    public var diskDirectory: String?
    /// With disks: the chance per step that an up node's disk fills (every write fails with
    /// `ENOSPC`: the production quorum log and hard-state file see the error), and that a full
    /// disk frees again. A node whose persistence fails stops, as the node does (it refuses
    /// writes until restarted), and restarts once its disk has room. 0: never (and no random
    /// draw is spent on it, so runs without full disks keep their schedules).
    public var fullDiskRate = 0.0
    /// The chance per step that a full disk frees.
    public var diskFreedRate = 0.02
    /// With disks: the chance per crash that one bit of the crashed node's files flips while it
    /// is down (a kept checkpoint or its checksum file, `raft.state`, a log segment before the
    /// last). The checksums must catch every flip that start-up reads: a damaged newest
    /// checkpoint is passed over for the older one and the log, other damage stops the node
    /// for good (it stays down, like a node whose operator has not replaced its disk). A flip
    /// is made only while no node is stopped so and the node's loss leaves its voters a quorum.
    /// 0: never (and no random draw is spent on it).
    public var bitFlipRate = 0.0
    /// Syncs the nodes' disks never make (deliberately broken storage, to show that the
    /// checkers catch the loss; with ``diskDirectory`` only).
    public var skippedSyncSites: Set<String> = []
    /// Deliberate bugs in the replica, to show the checkers catch them.
    public var brokenProtocol: BrokenProtocol = []
    /// A deliberate bug in the state machine: it applies a retried write again.
    public var applyRetriedWritesTwice = false

    /// Options with `seed` and the defaults.
    public init(seed: UInt64) { self.seed = seed }

    /// Slow disks that fail often: persistence takes up to 30 steps and nodes crash five times
    /// as often. The regime in which a leader that counts its own copy before it is durable
    /// (``BrokenProtocol/countLeaderBeforeDurable``) commits an entry a crash then loses: about
    /// one seed in 25 shows it, against one in 400 under the swarm's rates.
    public mutating func slowFailingDisks() {
        crashRate = 0.02
        maxPersistDelaySteps = 30
    }

    /// Options whose fault mix is drawn from the seed as well (swarm testing): one seed loses
    /// many messages, another partitions often, another crashes nodes or changes members, so a
    /// sweep covers mixes no single set of rates would.
    public static func swarm(seed: UInt64, nodes: Int) -> SimulationOptions {
        var options = SimulationOptions(seed: seed)
        options.nodes = nodes
        var random = RandomSource(seed: seed ^ 0x5A5A_F00D_5A5A_F00D)
        func pick<T>(_ choices: [T]) -> T { choices[Int.random(in: 0..<choices.count, using: &random)] }
        options.lossRate = pick([0, 0.02, 0.05, 0.15])
        options.duplicationRate = pick([0, 0.02, 0.1])
        options.maxDelaySteps = pick([2, 8, 30])
        options.crashRate = pick([0, 0.002, 0.004, 0.01])
        options.restartRate = pick([0.01, 0.05])
        options.partitionRate = pick([0, 0.004, 0.02])
        options.healRate = pick([0.003, 0.01, 0.03])
        options.clients = pick([2, 3, 6])
        options.keys = pick([2, 3, 5])
        options.membershipChangeRate = pick([0, 0.002, 0.01])
        options.compactionEveryEntries = pick([10, 40, 200])
        options.maxAppendBytes = pick([64, 4096, 1 << 20])
        options.maxPersistDelaySteps = pick([0, 3, 12])
        return options
    }
}
