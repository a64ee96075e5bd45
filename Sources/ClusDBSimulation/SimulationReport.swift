/// The outcome of one ``ClusterSimulation`` run.
public struct SimulationReport {
    /// Counts that show what a run exercised.
    public struct Statistics: Sendable, Equatable {
        /// Crashes and restarts of nodes.
        public var crashes = 0, restarts = 0
        /// Random partitions.
        public var partitions = 0
        /// Membership changes and leadership transfers the leader accepted.
        public var membershipChanges = 0, transfers = 0
        /// Snapshots sent, installed; log compactions.
        public var snapshotsSent = 0, snapshotsInstalled = 0, compactions = 0
        /// Disks that filled; persistences a full disk refused (the node then stopped).
        public var fullDisks = 0, persistenceRefused = 0
        /// Bits flipped in crashed nodes' files; start-ups that refused the damage (the node
        /// stayed down); start-ups that passed over a damaged newest checkpoint for the older.
        public var bitFlips = 0, corruptionsRefused = 0, checkpointFallbacks = 0
        /// Set when nodes stopped by damage left some configuration without a quorum, so the
        /// healing phase could not elect a leader (not a failure; convergence is not checked).
        public var quorumLostToDamage = false
        /// Client operations answered, and given up (outcome unknown).
        public var answered = 0, abandoned = 0
        /// Client writes committed again (a retry committed twice) that left the hive unchanged,
        /// summed over nodes: the session rule answered them, or nothing had changed the value
        /// since (the count cannot tell which).
        public var sessionReplays = 0
        /// The leader's term and commit index at the end.
        public var finalTerm: UInt64 = 0, finalCommit: UInt64 = 0
        /// Set when the linearizability checker hit its bound (the run counts as passed).
        public var linearizabilityUndecided: String?

        /// All zero.
        public init() {}
    }

    /// The seed that reproduces the run.
    public let seed: UInt64
    /// The number of voters it started with.
    public let nodes: Int
    /// What went wrong; empty for a passing run.
    public let violations: [String]
    /// A digest of every event, equal for equal seeds (determinism).
    public let traceDigest: UInt64
    /// What the run exercised.
    public let statistics: Statistics
    /// The clients' history.
    public let history: ClientHistory<ClusterSimulation.Model>
    /// What happened, a line each: elections, membership changes, crashes and restarts.
    public let milestones: [String]
    /// The command-line flags beyond seed and nodes that the run needs (disks, skipped syncs).
    public let replayFlags: String

    /// Whether no checker fired.
    public var passed: Bool { violations.isEmpty }

    /// The one-line command that replays this run.
    public var replayCommand: String {
        "swift run clusdb-simulate --seed \(seed) --nodes \(nodes)\(replayFlags)"
    }
}

/// FNV-1a over the events of a run: two runs of one seed must produce the same value.
struct TraceDigest: Sendable {
    private(set) var value: UInt64 = 0xCBF2_9CE4_8422_2325

    mutating func add(_ numbers: any BinaryInteger...) {
        for number in numbers {
            var bits = UInt64(truncatingIfNeeded: number)
            for _ in 0..<8 {
                value ^= bits & 0xFF
                value &*= 0x100_0000_01B3
                bits >>= 8
            }
        }
    }
}
