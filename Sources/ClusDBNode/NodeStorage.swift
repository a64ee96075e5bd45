import ClusDBModel
import ClusDBRaft
import ClusDBStore
import Foundation
import Logging

/// A node's durable state after recovery: the locked data directory, the quorum log, the hive
/// caught up with the log, and the newest checkpoint.
///
/// Start-up follows `docs/ARCHITECTURE.md`, "Start-up": open the log (cutting a torn tail), find
/// the newest valid checkpoint, use the live hive if it is at or past the checkpoint (else reload
/// it from the checkpoint), read the Raft hard state (or derive it, for a data directory without
/// one), then replay the log past the hive's applied index up to the durable commit index. What
/// the log holds beyond that is the replica's to commit (``durableState()``).
final class NodeStorage {
    let directory: DataDirectory
    let identity: NodeIdentity
    let log: QuorumLog
    let hive: Hive
    /// Index of the newest valid checkpoint at start-up (the node tracks later ones in its status).
    let checkpointIndex: UInt64
    /// The term of the checkpoint's last entry.
    let checkpointTerm: UInt64
    /// The membership the checkpoint records (nil: a checkpoint of a build before
    /// `hive_membership`, whose one member is implied).
    let checkpointConfiguration: RaftConfiguration?
    /// The hard state found in `raft.state`, or derived for a data directory without one.
    let hardState: HardState
    /// The hard state as the file holds it (nil: no file yet; the first write creates it).
    var writtenHardState: HardState?
    /// Index of the last entry in the log or, with an empty log, in the hive.
    var lastIndex: UInt64

    /// Most entries decoded and applied in one transaction during replay.
    static let replayChunkEntries = 4_096

    private init(
        directory: DataDirectory, identity: NodeIdentity, log: QuorumLog, hive: Hive,
        checkpoint: (index: UInt64, term: UInt64, configuration: RaftConfiguration?),
        hardState: HardState, writtenHardState: HardState?
    ) throws(ClusterError) {
        self.directory = directory
        self.identity = identity
        self.log = log
        self.hive = hive
        checkpointIndex = checkpoint.index
        checkpointTerm = checkpoint.term
        checkpointConfiguration = checkpoint.configuration
        self.hardState = hardState
        self.writtenHardState = writtenHardState
        let state = try hive.state()
        lastIndex = max(log.lastIndex ?? 0, state.appliedIndex)
    }

    /// The node's only member identifier while a cluster has one member (issue 11 gives each
    /// member its own).
    static let singleNodeID: NodeID = 1

    /// The membership a single node bootstraps with, and the one a hive without
    /// `hive_membership` implies (docs/FORMATS.md, "Membership").
    static let singleNodeConfiguration = RaftConfiguration(voters: [singleNodeID])

    /// What the replica starts from: the hard state, the newest checkpoint as the snapshot, the
    /// log after it (entries before it stay in the quorum log for the fallback to the older
    /// checkpoint, not in the replica's memory), the hive's applied index.
    func durableState() throws(ClusterError) -> DurableState {
        let configuration = Self.singleNodeConfiguration
        // The snapshot's membership is the checkpoint's own: the configuration at its index.
        let snapshot = checkpointIndex > 0
            ? SnapshotMetadata(index: checkpointIndex, term: checkpointTerm, configuration: checkpointConfiguration ?? configuration) : nil
        let from = max(log.firstEntryIndex, checkpointIndex)
        let logged = log.lastEntryIndex >= from ? try log.raftEntries(from: from, through: log.lastEntryIndex, maxBytes: Int.max) : []
        let entries = DurableState.entries(continuing: snapshot, from: logged)
        if entries.isEmpty, let snapshot, log.lastEntryIndex > snapshot.index {
            // The log does not continue the checkpoint (another term at its index): a node never
            // writes that, and starting would let the term's no-op replace the durable entries.
            throw ClusterError(
                .clusterLogCorrupt,
                "the quorum log does not continue checkpoint \(snapshot.index) (term \(snapshot.term)): its entry there has term \(log.term(at: snapshot.index).map(String.init) ?? "none")")
        }
        return DurableState(
            hardState: hardState, snapshot: snapshot, entries: entries, appliedIndex: try hive.state().appliedIndex,
            bootstrapConfiguration: configuration)
    }

    /// Makes `state` durable when its term or vote changed (`raft.state`, atomically); the commit
    /// index alone is not worth a write (docs/FORMATS.md).
    func save(_ state: HardState) throws(ClusterError) {
        if let written = writtenHardState, written.term == state.term && written.vote == state.vote { return }
        try RaftHardStateFile.write(state, in: directory.path)
        writtenHardState = state
    }

    /// Closes the hive and the log and releases the data-directory lock. Nothing may use the
    /// storage afterwards.
    func close() {
        log.close()
        hive.close()
        directory.unlock()
    }

    static func recover(_ configuration: NodeConfiguration, logger: Logger) throws(ClusterError) -> NodeStorage {
        let directory = try DataDirectory(path: configuration.dataDirectory)
        switch try RestoreJournal.recover(directory.path) {
        case .nothing: break
        case .rolledBack: logger.warning("discarded an unfinished restore that had not reached its commit point")
        case .rolledForward: logger.notice("finished a restore that was interrupted after its commit point")
        }
        let identity = try loadIdentity(directory, configuration)
        let (log, recovery) = try QuorumLog.open(directory: directory.logDirectory)
        if let reason = recovery.reason {
            logger.warning("quorum log: cut \(recovery.truncatedBytes) bytes off the tail", metadata: ["reason": "\(reason)"])
        }
        let (checkpoint, skipped) = try ClusterCheckpoints.newestValid(in: directory.quorumDirectory)
        for (path, problem) in skipped {
            logger.warning(
                "passing over a damaged cluster checkpoint for an older one and the log",
                metadata: ["checkpoint": "\(path)", "problem": "\(problem)", "using": "\(checkpoint?.path ?? "none")"])
        }
        let checkpointIndex = checkpoint?.state.appliedIndex ?? 0
        if let checkpoint, checkpoint.state.clusterID != identity.clusterID {
            throw ClusterError(.clusterLogCorrupt, "checkpoint \(checkpoint.path) belongs to cluster \(checkpoint.state.clusterID), not \(identity.clusterID)")
        }
        if let first = log.firstIndex, first > checkpointIndex + 1 {
            throw QuorumLogErrors.gap(first: first, checkpoint: checkpointIndex)
        }
        let hive = try openHive(directory, checkpoint: checkpoint, log: log, identity: identity, logger: logger)
        let written = try RaftHardStateFile.read(in: directory.path)
        let hardState: HardState
        if let written {
            hardState = written
        } else {
            hardState = try derivedHardState(identity: identity, log: log, hive: hive, logger: logger)
        }
        var checkpointConfiguration: RaftConfiguration?
        if let checkpoint { checkpointConfiguration = try ClusterCheckpoints.configuration(path: checkpoint.path) }
        let storage = try NodeStorage(
            directory: directory, identity: identity, log: log, hive: hive,
            checkpoint: (checkpointIndex, checkpoint?.state.appliedTerm ?? 0, checkpointConfiguration),
            hardState: hardState, writtenHardState: written)
        try storage.replay(through: hardState.commit, logger: logger)
        // Only now that recovery succeeded does anything move: the damaged files step aside so
        // that the next checkpoint takes a new sequence number and pruning keeps a valid one.
        try ClusterCheckpoints.setAside(skipped.map(\.path), in: directory.quorumDirectory)
        return storage
    }

    /// The hard state of a data directory without `raft.state`: one written by format version 1
    /// (before the Raft core), or one a restore just built. Either holds only committed entries
    /// (a single node acknowledged an entry once it was durable; a restore writes a committed
    /// history), so the commit index is the log's end; the term is the highest any file records,
    /// so the next election goes past it.
    private static func derivedHardState(identity: NodeIdentity, log: QuorumLog, hive: Hive, logger: Logger) throws(ClusterError) -> HardState {
        let state = try hive.state()
        let last = max(log.lastIndex ?? 0, state.appliedIndex)
        let term = max(identity.currentTerm, log.lastIndex != nil ? log.lastTerm : 0, state.appliedTerm)
        logger.notice("no raft.state yet: every entry of the log counts as committed", metadata: ["term": "\(term)", "commit": "\(last)"])
        return HardState(term: term, vote: nil, commit: last)
    }

    private static func loadIdentity(_ directory: DataDirectory, _ configuration: NodeConfiguration) throws(ClusterError) -> NodeIdentity {
        if var identity = try directory.readIdentity() {
            if let name = configuration.clusterName, name != identity.clusterName {
                throw ClusterError(
                    .invalidParameter,
                    "data directory \(directory.path) belongs to cluster \"\(identity.clusterName)\", not \"\(name)\"")
            }
            if identity.nodeName != configuration.nodeName {
                identity.nodeName = configuration.nodeName
                try directory.writeIdentity(identity)
            }
            return identity
        }
        let identity = NodeIdentity(
            clusterName: configuration.clusterName ?? "local", clusterID: UUID().uuidString.lowercased(),
            nodeName: configuration.nodeName, nodeID: UUID().uuidString.lowercased())
        try directory.writeIdentity(identity)
        return identity
    }

    /// Opens the live hive, or rebuilds it from the newest checkpoint when it is missing, damaged,
    /// behind the checkpoint, or of another cluster.
    private static func openHive(
        _ directory: DataDirectory, checkpoint: ClusterCheckpoint?, log: QuorumLog, identity: NodeIdentity, logger: Logger
    ) throws(ClusterError) -> Hive {
        var reason: String?
        if FileSystem.exists(directory.hivePath) {
            do throws(ClusterError) {
                let hive = try Hive.open(path: directory.hivePath)
                let state = try hive.state()
                if let checkpoint, state.appliedIndex < checkpoint.state.appliedIndex {
                    reason = "the hive is at index \(state.appliedIndex), behind checkpoint \(checkpoint.state.appliedIndex)"
                } else if !state.clusterID.isEmpty && state.clusterID != identity.clusterID {
                    reason = "the hive belongs to cluster \(state.clusterID)"
                } else {
                    if state.clusterID.isEmpty {
                        try hive.setIdentity(clusterName: identity.clusterName, clusterID: identity.clusterID)
                    }
                    try recordMembership(in: hive)
                    return hive
                }
            } catch {
                reason = "the hive does not open: \(error.message)"
            }
        } else {
            reason = "there is no hive file"
        }
        let hivePath = directory.hivePath
        for suffix in ["", "-wal", "-shm"] { try FileSystem.removeFile(hivePath + suffix) }
        if let checkpoint {
            logger.notice("loading the hive from a cluster checkpoint", metadata: ["checkpoint": "\(checkpoint.path)", "why": "\(reason ?? "")"])
            try FileSystem.copyFile(checkpoint.path, to: hivePath + ".new", site: SyncSite("hive.reload").file)
            try FileSystem.renameFile(hivePath + ".new", to: hivePath, site: SyncSite("hive.reload"))
        } else if let first = log.firstIndex, first > 1 {
            throw ClusterError(.clusterLogCorrupt, "\(reason ?? "the hive is unusable") and no checkpoint covers the log before index \(first)")
        } else {
            try FileSystem.syncDirectory(directory.path, site: SyncSite("hive.remove"))
        }
        let hive = try Hive.open(path: hivePath)
        try hive.setIdentity(clusterName: identity.clusterName, clusterID: identity.clusterID)
        try recordMembership(in: hive)
        return hive
    }

    /// Records the single node's membership in a hive that has none (a new one, or one of a
    /// build before `hive_membership`, which implied it), so that every checkpoint carries its
    /// configuration (docs/FORMATS.md, "Membership").
    private static func recordMembership(in hive: Hive) throws(ClusterError) {
        if try hive.configuration() == nil { try hive.setConfiguration(singleNodeConfiguration) }
    }

    /// Applies the log entries past the hive's applied index that the durable commit index
    /// covers (the rest waits for the replica to commit them).
    private func replay(through commit: UInt64, logger: Logger) throws(ClusterError) {
        let applied = try hive.state().appliedIndex
        let end = log.lastIndex ?? applied
        if applied > end {
            throw ClusterError(
                .clusterLogCorrupt, "the hive has applied index \(applied) but the quorum log ends at \(end): acknowledged entries are missing")
        }
        let last = min(end, commit)
        guard applied < last else { return }
        var chunk: [Hive.Committed] = []
        let hive = self.hive
        func flush() throws(ClusterError) {
            if chunk.isEmpty { return }
            _ = try hive.apply(chunk)
            chunk.removeAll(keepingCapacity: true)
        }
        try log.readEntries(from: applied + 1, through: last) { (entries) throws(ClusterError) in
            for entry in entries {
                chunk.append(try Hive.Committed(entry: entry))
                if chunk.count >= Self.replayChunkEntries { try flush() }
            }
        }
        try flush()
        logger.info("replayed the quorum log", metadata: ["from": "\(applied + 1)", "through": "\(last)"])
    }
}

/// Errors of quorum-log coverage.
enum QuorumLogErrors {
    static func gap(first: UInt64, checkpoint: UInt64) -> ClusterError {
        ClusterError(.clusterLogCorrupt, "the quorum log starts at index \(first) but the newest checkpoint covers only up to \(checkpoint)")
    }
}
