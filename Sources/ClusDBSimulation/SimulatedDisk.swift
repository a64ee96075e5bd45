import ClusDBModel
import ClusDBRaft
import ClusDBStore
#if canImport(Glibc)
import Glibc
#endif

/// A simulated node's disk: the production quorum log (``QuorumLog`` as a ``RaftLogStore``,
/// its record framing and recovery), hard-state file (``RaftHardStateFile``) and cluster
/// checkpoints (``ClusterCheckpoints``: image, checksum file, pruning, the log kept from the
/// older kept checkpoint on) on real files in a tmpfs directory, watched by a ``PowerLossDisk``
/// that models what a power loss keeps. Syncs are modelled, not performed. A crash turns the
/// directory into the image a power loss would leave — unsynced writes lost, or torn (a prefix
/// of them, or any subset of their pages) — and a restart runs the production start-up steps on
/// it: log recovery, the newest valid checkpoint (a damaged one passed over for the older one
/// and the log), the hard state.
///
/// What stays in memory: the live hive (``SimulatedStateMachine``; the node's `hive.sqlite`
/// syncs itself and is not modelled, as in the node's own power-loss tests).
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
        try FileSystem.makeDirectories(FileSystem.join(base, "g0/quorum"))
        powerLoss = try PowerLossDisk(root: FileSystem.join(base, "g0"))
        powerLoss.performsSyncs = false
        powerLoss.skippedSites = skippedSites
        FileLayer.install(powerLoss)
    }

    /// The cluster checkpoints' directory, named as in a node's data directory.
    private var checkpointDirectory: String { FileSystem.join(root, "quorum") }

    /// What a start-up found on the disk.
    struct Opened {
        /// The hard state (zero when none was written yet).
        var hardState: HardState
        /// Every entry the log holds.
        var entries: [RaftEntry]
        /// The newest checkpoint that passed its checks, and its hive read into memory.
        var checkpoint: (state: HiveState, hive: Hive)?
        /// Newer checkpoints passed over as damaged, with what is wrong with each.
        var passedOver: [(path: String, problem: String)]
    }

    /// Part of the refusal of a log that does not reach back to the newest valid checkpoint.
    static let logBeforeCheckpointMessage = "the newest valid checkpoint holds only"

    /// The production start-up's storage steps: recovers the log (cutting a torn tail), finds
    /// the newest valid checkpoint (passing over damaged ones), checks that the log reaches
    /// back to it, reads the hard state; only then are damaged checkpoints set aside.
    /// - Throws: what the production start-up refuses with (damage before the log's tail, a
    ///   log that does not reach the checkpoint, a hard-state file that fails its checksum).
    func open() throws(ClusterError) -> Opened {
        log?.close()
        log = nil
        let (opened, _) = try QuorumLog.open(directory: FileSystem.join(root, "log"), segmentTargetBytes: Self.segmentTargetBytes)
        do throws(ClusterError) {
            let (checkpoint, passedOver) = try ClusterCheckpoints.newestValid(in: checkpointDirectory)
            let checkpointIndex = checkpoint?.state.appliedIndex ?? 0
            if let first = opened.firstIndex, first > checkpointIndex + 1 {
                throw ClusterError(.clusterLogCorrupt, "the quorum log starts at index \(first) but \(Self.logBeforeCheckpointMessage) \(checkpointIndex)")
            }
            let hardState = try RaftHardStateFile.read(in: root) ?? HardState()
            let entries = opened.lastEntryIndex >= opened.firstEntryIndex
                ? try opened.raftEntries(from: opened.firstEntryIndex, through: opened.lastEntryIndex, maxBytes: Int.max) : []
            var loaded: (HiveState, Hive)?
            if let checkpoint {
                let file = try Hive.openReadOnly(path: checkpoint.path)
                defer { file.close() }
                loaded = (checkpoint.state, try file.inMemoryImage())
            }
            try ClusterCheckpoints.setAside(passedOver.map(\.path), in: checkpointDirectory)
            writtenHardState = hardState
            log = opened
            return Opened(hardState: hardState, entries: entries, checkpoint: loaded, passedOver: passedOver)
        } catch {
            opened.close()
            throw error
        }
    }

    /// Writes `hive` as the newest cluster checkpoint as the node does: the image, its checksum
    /// file, the rename, the directory sync, SQLite's full integrity check.
    func writeCheckpoint(of hive: Hive) throws(ClusterError) {
        let checkpoint = try ClusterCheckpoints.write(from: hive, to: checkpointDirectory)
        _ = try ClusterCheckpoints.validate(path: checkpoint.path, fullIntegrityCheck: true, checkingSum: false)
    }

    /// Whether a start set a damaged checkpoint aside after the newest one kept was written: the
    /// node then writes a fresh one before serving, so that the fallback is there again (decided
    /// from the files, as the node decides it, so a start that could not write it leaves it to
    /// the next).
    func needsFreshCheckpoint() throws(ClusterError) -> Bool {
        let newestKept = try ClusterCheckpoints.list(in: checkpointDirectory).last?.sequence ?? 0
        return try ClusterCheckpoints.newestSetAsideSequence(in: checkpointDirectory) > newestKept
    }

    /// Keeps the newest ``Limits/clusterCheckpointsKept`` checkpoints and removes the log's
    /// segments through the older kept one, as the node does after a checkpoint (not through the
    /// newest: the older one and the log are the fallback when the newest is found damaged).
    /// - Returns: the index of the oldest checkpoint kept, nil when there is none.
    func pruneCheckpoints() throws(ClusterError) -> UInt64? {
        try ClusterCheckpoints.prune(in: checkpointDirectory)
        guard let olderKept = try ClusterCheckpoints.olderKeptIndex(in: checkpointDirectory) else {
            guard let only = try ClusterCheckpoints.list(in: checkpointDirectory).last else { return nil }
            return try ClusterCheckpoints.state(path: only.path).appliedIndex
        }
        try log?.compact(through: olderKept)
        return olderKept
    }

    /// The files a bit flip may hit, in four kinds, each with the offsets that hold data: the
    /// newest checkpoint image and its checksum file (the ones a start-up checks first; the older
    /// one is read only when those fail, and a node with both damaged stays down like one with a
    /// damaged log), the hard-state file, and the log's segments but the last, headers and
    /// records without their padding (a flip in the last
    /// segment's last group is indistinguishable from a torn write: see "Known limits" in
    /// docs/ARCHITECTURE.md). In a checkpoint image only bytes that are not zero count: a small
    /// hive's pages are mostly unused space, where a flip changes nothing anyone reads.
    private func flipCandidates() throws(ClusterError) -> [[(kind: BitFlip.Kind, path: String, offsets: [Int])]] {
        typealias Candidate = (kind: BitFlip.Kind, path: String, offsets: [Int])
        func data(_ kind: BitFlip.Kind, _ path: String, nonzeroOnly: Bool = false) throws(ClusterError) -> [Candidate] {
            let bytes = try SystemFile(path: path, flags: O_RDONLY).readAll()
            guard let last = bytes.lastIndex(where: { $0 != 0 }) else { return [] }
            return [(kind, path, nonzeroOnly ? (0...last).filter { bytes[$0] != 0 } : Array(0...last))]
        }
        /// A segment's header and records without their zero padding (FORMATS.md: `u32 length |
        /// u32 crc | body | zeros to a multiple of 8`): padding is no data, and no check reads it.
        func segmentData(_ path: String) throws(ClusterError) -> [Candidate] {
            let bytes = try SystemFile(path: path, flags: O_RDONLY).readAll()
            var offsets = Array(0..<min(QuorumLog.segmentHeaderSize, bytes.count))
            var offset = QuorumLog.segmentHeaderSize
            while offset + LogRecord.headerSize <= bytes.count {
                let length = (0..<4).reduce(0) { $0 | Int(bytes[offset + $1]) << (8 * $1) }
                guard length > 0, offset + LogRecord.headerSize + length <= bytes.count else { break }
                offsets += offset..<(offset + LogRecord.headerSize + length)
                offset += (LogRecord.headerSize + length + 7) & ~7
            }
            return [(.logSegment, path, offsets)]
        }
        var kinds: [[Candidate]] = []
        if let (_, path) = try ClusterCheckpoints.list(in: checkpointDirectory).last {
            kinds.append(try data(.checkpointImage, path, nonzeroOnly: true))
            if FileSystem.exists(path + ClusterCheckpoints.checksumSuffix) {
                kinds.append(try data(.checkpointSum, path + ClusterCheckpoints.checksumSuffix))
            }
        }
        let hardState = FileSystem.join(root, RaftHardStateFile.fileName)
        if FileSystem.exists(hardState) { kinds.append(try data(.hardState, hardState)) }
        let logDirectory = FileSystem.join(root, "log")
        var segments: [Candidate] = []
        for name in try FileSystem.list(logDirectory).filter({ $0.hasSuffix(".seg") }).sorted().dropLast() {
            segments += try segmentData(FileSystem.join(logDirectory, name))
        }
        kinds.append(segments)
        return kinds.filter { !$0.isEmpty }
    }

    /// One bit flipped in a crashed node's files, and what the next start-up must make of it.
    struct BitFlip {
        /// The kinds of file a flip may hit (``flipCandidates()``).
        enum Kind {
            case checkpointImage, checkpointSum, hardState, logSegment
        }

        /// The kind of file flipped.
        var kind: Kind
        /// The file's name.
        var fileName: String
        /// What was flipped, for the run's milestones.
        var description: String

        /// Whether a start-up that read the flipped file and refused to start did so because
        /// of this flip: the hard state's or the segment's own checks name the file; a damaged
        /// newest checkpoint is passed over, and a start is refused only when the log does not
        /// reach back to the older one (after a received snapshot replaced the log).
        func explains(_ error: ClusterError) -> Bool {
            guard error.code == .clusterLogCorrupt || error.code == .invalidData else { return false }
            switch kind {
            case .hardState, .logSegment: return error.message.contains(fileName)
            case .checkpointImage, .checkpointSum: return error.message.contains(SimulatedDisk.logBeforeCheckpointMessage)
            }
        }
    }

    /// Flips one bit, chosen by `random`, of a file ``flipCandidates()`` names, in place: a
    /// disk's silent corruption of data at rest. Called while the node is down, between the
    /// power loss and the new model, so the flip is durable. Which byte of a checkpoint image
    /// is hit depends on SQLite's file layout, so a replay with another SQLite may flip another.
    /// - Returns: what was flipped, nil when no file holds data yet.
    private func flipRandomBit(using random: inout RandomSource) throws(ClusterError) -> BitFlip? {
        // A kind first, then a file of it: the log's many small segments would otherwise take
        // nearly every flip.
        let kinds = try flipCandidates()
        guard !kinds.isEmpty else { return nil }
        let files = kinds[Int.random(in: 0..<kinds.count, using: &random)]
        let (kind, path, offsets) = files[Int.random(in: 0..<files.count, using: &random)]
        let offset = offsets[Int.random(in: 0..<offsets.count, using: &random)]
        let bit = Int.random(in: 0..<8, using: &random)
        let file = try SystemFile(path: path, flags: O_RDWR)
        var byte = try file.read(count: 1, at: offset)
        precondition(byte.count == 1, "the flipped byte exists")
        byte[0] ^= UInt8(1) << UInt8(bit)
        try file.write(byte, at: offset)
        let fileName = String(path.split(separator: "/").last ?? "")
        return BitFlip(kind: kind, fileName: fileName, description: "bit \(bit) of byte \(offset) of \(path.dropFirst(root.count + 1))")
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

    /// Power fails: the directory becomes what `tear` leaves of it; with `flippingABit`, one
    /// bit of what it holds is then flipped (``flipRandomBit(using:)``).
    /// - Returns: the bit flipped, if one was.
    func crash(tear: PowerLossDisk.Tear, flippingABit: Bool, random: inout RandomSource) throws(ClusterError) -> BitFlip? {
        log?.close()
        log = nil
        let image = powerLoss.image(tear: tear)
        FileLayer.remove(powerLoss)
        let old = root
        generation += 1
        try PowerLossDisk.materialize(image, at: root)
        let flipped = flippingABit ? try flipRandomBit(using: &random) : nil
        try FileSystem.removeTree(old)
        powerLoss = try PowerLossDisk(root: root)
        powerLoss.performsSyncs = false
        powerLoss.skippedSites = skippedSites
        powerLoss.isFull = isFull
        powerLoss.shortWritesWhenFull = shortWritesWhenFull
        FileLayer.install(powerLoss)
        return flipped
    }

    /// Removes the directory and stops watching it.
    func remove() {
        log?.close()
        FileLayer.remove(powerLoss)
        try? FileSystem.removeTree(base)
    }
}
