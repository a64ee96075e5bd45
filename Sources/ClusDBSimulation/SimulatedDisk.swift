import ClusDBModel
import ClusDBRaft
import ClusDBStore

/// A simulated node's disk: the production quorum log (``QuorumLog`` as a ``RaftLogStore``,
/// its record framing and recovery) and hard-state file (``RaftHardStateFile``) on real files
/// in a tmpfs directory, watched by a ``PowerLossDisk`` that models what a power loss keeps.
/// Syncs are modelled, not performed. A crash turns the directory into the image a power loss
/// would leave — unsynced writes lost, or torn (a prefix of them, or any subset of their pages)
/// — and a restart runs the production start-up on it.
///
/// What stays in memory: the snapshot's metadata and image (the cluster checkpoint file, written
/// atomically; its own crash safety is tested with the node).
final class SimulatedDisk {
    /// The node's directory; each crash moves to a fresh generation below it.
    private let base: String
    private var generation = 0
    private var powerLoss: PowerLossDisk
    private var log: QuorumLog?
    /// Syncs this disk never performs (a deliberately broken node, to show the sync matters).
    private let skippedSites: Set<SyncSite>
    /// The hard state last written (the file is rewritten only when it changes).
    private var writtenHardState = HardState()

    /// Whether the disk is full: every write fails with `ENOSPC` (``PowerLossDisk/isFull``),
    /// across crashes, until freed.
    var isFull = false {
        didSet { powerLoss.isFull = isFull }
    }

    /// Whether a full disk takes the first part of each write before it fails (a short write,
    /// which the quorum log must cut back) rather than none of it.
    var shortWritesWhenFull = false {
        didSet { powerLoss.shortWritesWhenFull = shortWritesWhenFull }
    }

    /// Segments this small rotate every few appends, so recovery and suffix replacement cross
    /// segment boundaries often.
    static let segmentTargetBytes = 2048

    private var root: String { FileSystem.join(base, "g\(generation)") }

    /// Creates an empty disk in `base` (which must not exist) whose syncs at `skippedSites` make
    /// nothing durable.
    init(base: String, skippedSites: Set<SyncSite> = []) throws(ClusterError) {
        self.base = base
        self.skippedSites = skippedSites
        // The log's directory exists (durably) before the model starts, as a node's data
        // directory's does once created.
        try FileSystem.makeDirectories(FileSystem.join(base, "g0/log"))
        powerLoss = try PowerLossDisk(root: FileSystem.join(base, "g0"))
        powerLoss.performsSyncs = false
        powerLoss.skippedSites = skippedSites
        FileLayer.install(powerLoss)
    }

    /// Opens the log (the production recovery) and reads what a start-up reads.
    /// - Returns: the hard state (none written yet: zero) and every entry the log holds.
    func open() throws(ClusterError) -> (hardState: HardState, entries: [RaftEntry]) {
        log?.close()
        let (opened, _) = try QuorumLog.open(directory: FileSystem.join(root, "log"), segmentTargetBytes: Self.segmentTargetBytes)
        log = opened
        let hardState = try RaftHardStateFile.read(in: root) ?? HardState()
        writtenHardState = hardState
        let entries = opened.lastEntryIndex >= opened.firstEntryIndex
            ? try opened.raftEntries(from: opened.firstEntryIndex, through: opened.lastEntryIndex, maxBytes: Int.max) : []
        return (hardState, entries)
    }

    /// Writes the hard state when it changed (term or vote: the commit index alone is not
    /// worth a write, as in the node).
    func save(_ hardState: HardState) throws(ClusterError) {
        guard hardState.term != writtenHardState.term || hardState.vote != writtenHardState.vote else { return }
        try RaftHardStateFile.write(hardState, in: root)
        writtenHardState = hardState
    }

    /// Appends entries, replacing a conflicting suffix first.
    func save(_ entries: [RaftEntry]) throws(ClusterError) {
        guard let log else { preconditionFailure("the disk is open") }
        try log.save(entries)
    }

    /// Appends entries whose sync a crash will beat: written, not durable, so the power loss
    /// that follows keeps none, a prefix or some pages of them (a torn group for recovery).
    func saveUnsynced(_ entries: [RaftEntry]) throws(ClusterError) {
        powerLoss.skippedSites = skippedSites.union([.logAppend])
        defer { powerLoss.skippedSites = skippedSites }
        try save(entries)
    }

    /// A received snapshot replaced the log.
    func discardLog() throws(ClusterError) {
        guard let log else { preconditionFailure("the disk is open") }
        try log.discardAll()
    }

    /// Drops whole segments covered by a durable snapshot.
    func compact(through index: UInt64) throws(ClusterError) {
        try log?.compact(through: index)
    }

    /// Power fails: the directory becomes what `tear` leaves of it.
    func crash(tear: PowerLossDisk.Tear) throws(ClusterError) {
        log?.close()
        log = nil
        let image = powerLoss.image(tear: tear)
        FileLayer.remove(powerLoss)
        let old = root
        generation += 1
        try PowerLossDisk.materialize(image, at: root)
        try FileSystem.removeTree(old)
        powerLoss = try PowerLossDisk(root: root)
        powerLoss.performsSyncs = false
        powerLoss.skippedSites = skippedSites
        powerLoss.isFull = isFull
        powerLoss.shortWritesWhenFull = shortWritesWhenFull
        FileLayer.install(powerLoss)
    }

    /// Removes the directory and stops watching it.
    func remove() {
        log?.close()
        FileLayer.remove(powerLoss)
        try? FileSystem.removeTree(base)
    }
}
