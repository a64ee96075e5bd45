import ClusDBModel
import ClusDBRaft
import ClusDBStore

/// A simulated node's state machine: the production hive on in-memory SQLite, applying committed
/// entries with the production rules (sessions included) from their production encoding.
///
/// Beside the hive it keeps what only the checkers read (ghost state, as TigerBeetle's auditor
/// keeps): which client writes took effect, in order. A write took effect when applying it changed
/// its value to its own data; every write's data is unique, so a retried write applied a second
/// time after another write changed the value is seen. (Applied twice in a row it is invisible,
/// and harmless: no client can tell.)
///
/// Like the hive file, it survives a crash: it is applied atomically with its applied index.
final class SimulatedStateMachine {
    /// A whole-hive copy taken at a snapshot (a cluster checkpoint's contents), with the ghost
    /// state of that moment. Never applied to: a node installs a copy of it.
    struct Image {
        /// The hive as the snapshot holds it (written to checkpoint files, copied on install).
        let hive: Hive
        /// The index of the last entry the image holds.
        let appliedIndex: UInt64
        fileprivate let appliedWrites: [ClientWrite]
        fileprivate let appliedWriteSet: Set<ClientWrite>
    }

    /// What applying one entry did, as the checkers see it.
    enum Applied {
        /// No client write took effect: a no-op or a membership change.
        case nothing
        /// A client write that had taken effect before (a retry committed again) left the hive as
        /// it was — its session answered it, or nothing had changed the value since.
        case replayed(ClientWrite)
        /// `write` took effect; `before` says whether it had taken effect before (a violation of
        /// exactly-once application).
        case write(ClientWrite, before: Bool)
    }

    /// The rules every simulated hive applies: the production ones, except that forgotten
    /// sessions are swept every 64 entries, so that the sweep runs in short simulations (no
    /// session is forgotten: a run has far fewer clients and entries than the limits).
    static let sessionRules = SessionRules(idleEntries: 100_000_000, sessionsMax: 100_000, sweepEveryEntries: 64)

    private let hive: Hive
    /// The index of the last applied entry (the hive records it too, in the same transaction).
    private(set) var appliedIndex: UInt64 = 0
    /// Every client write that took effect, in order (ghost state).
    private(set) var appliedWrites: [ClientWrite] = []
    private var appliedWriteSet: Set<ClientWrite> = []

    /// An empty hive that records `bootstrap` as its membership, as every replica starts.
    init(bootstrap: RaftConfiguration) throws(ClusterError) {
        hive = try Hive.inMemory(sessionRules: Self.sessionRules)
        try hive.setConfiguration(bootstrap)
    }

    /// Applies a committed entry.
    ///
    /// - Parameter applyRetriedTwice: the broken-protocol switch: a client write's session is
    ///   ignored, so a retry is applied again.
    /// - Returns: what the checkers see, and the hive's outcome (what the client is answered).
    /// - Throws: `ERROR_CLUSTERLOG_CORRUPT` for a command that does not decode, the hive's error
    ///   when SQLite fails (both findings: neither may happen).
    func apply(_ entry: RaftEntry, applyRetriedTwice: Bool) throws(ClusterError) -> (Applied, CommandOutcome) {
        precondition(entry.index == appliedIndex + 1, "entries are applied in order, once (\(entry.index) after \(appliedIndex))")
        var command: HiveCommand?
        var membershipChange: ConfigurationChange?
        switch entry.kind {
        case .command:
            do throws(ClusterError) {
                command = try HiveCommand(encoded: entry.payload)
            } catch {
                throw ClusterError(.clusterLogCorrupt, "entry \(entry.index) does not decode: \(error.message)")
            }
        case .configurationChange:
            guard let change = ConfigurationChange(encoded: entry.payload) else {
                throw ClusterError(.clusterLogCorrupt, "entry \(entry.index) is not a membership change")
            }
            membershipChange = change
        case .noOp:
            break
        }
        let write = command.flatMap { ClientWrite(command: $0) }
        if applyRetriedTwice, case .sessioned(_, let inner) = command { command = inner }
        var before: String?
        if let write { before = try value(named: write.key) }
        let outcome = try hive.apply([Hive.Committed(index: entry.index, term: entry.term, command: command, membershipChange: membershipChange)])[0]
        appliedIndex = entry.index
        guard let write else { return (.nothing, outcome) }
        guard before != write.value, try value(named: write.key) == write.value else {
            return (appliedWriteSet.contains(write) ? .replayed(write) : .nothing, outcome)
        }
        appliedWrites.append(write)
        return (.write(write, before: !appliedWriteSet.insert(write).inserted), outcome)
    }

    /// The `REG_SZ` value `name` of the root key, nil when there is none.
    func value(named name: String) throws(ClusterError) -> String? {
        guard let value = try hive.valueBlocking(key: .root, name: name) else { return nil }
        guard case .string(let text) = value else { preconditionFailure("simulated clients write REG_SZ values only") }
        return text
    }

    /// The whole hive in the export format (equal exports: equal keys and values).
    func export() throws(ClusterError) -> ExportedKey {
        try hive.exportBlocking(.root)
    }

    /// The membership the hive records at its applied index.
    func configuration() throws(ClusterError) -> RaftConfiguration? {
        try hive.configuration()
    }

    /// A copy of everything, for a snapshot.
    func image() throws(ClusterError) -> Image {
        Image(hive: try hive.inMemoryImage(), appliedIndex: appliedIndex, appliedWrites: appliedWrites, appliedWriteSet: appliedWriteSet)
    }

    /// An image whose hive was read back from a checkpoint file, with the ghost state of the
    /// image written there (`ghost`, at the same index): ghost state lives in no file.
    static func image(readBack hive: Hive, ghost: Image) throws(ClusterError) -> Image {
        let state = try hive.state()
        precondition(state.appliedIndex == ghost.appliedIndex, "a checkpoint read back is the image written at its index")
        return Image(hive: hive, appliedIndex: ghost.appliedIndex, appliedWrites: ghost.appliedWrites, appliedWriteSet: ghost.appliedWriteSet)
    }

    /// Replaces everything with a snapshot's image (the image itself stays as it was).
    func install(_ image: Image) throws(ClusterError) {
        try hive.install(image: image.hive)
        let installed = try hive.state()
        precondition(installed.appliedIndex == image.appliedIndex, "the image's hive holds its applied index")
        appliedIndex = image.appliedIndex
        appliedWrites = image.appliedWrites
        appliedWriteSet = image.appliedWriteSet
    }
}
