@testable import ClusDBRaft
import ClusDBModel

/// Replicas joined by an in-memory network, driven step by step by a test: messages are
/// delivered in the order sent (unless a link is cut or a filter drops them), every Ready is
/// carried out at once (persist, then the messages that wait for it, then apply), and time
/// advances only when the test ticks. The simulator does the same with faults and randomness.
struct RaftTestNetwork {
    var replicas: [NodeID: RaftReplica] = [:]
    /// Durable state per node, as a driver would have written it (for restarts).
    var durable: [NodeID: DurableState] = [:]
    /// Messages sent and not yet delivered, in order.
    var inFlight: [RaftMessage] = []
    /// Links that drop everything: (from, to).
    var cut: Set<[NodeID]> = []
    /// Committed entries each node applied, in order.
    var applied: [NodeID: [RaftEntry]] = [:]
    /// Read states each node received.
    var readStates: [NodeID: [ReadState]] = [:]
    /// Snapshots each node was told to install.
    var installed: [NodeID: [SnapshotMetadata]] = [:]
    /// Every message delivered, for tests that count.
    var delivered: [RaftMessage] = []
    /// Drops a message when it returns true.
    var drop: (RaftMessage) -> Bool = { _ in false }

    init(voters: [NodeID], learners: [NodeID] = [], options: RaftOptions = Self.testOptions, seed: UInt64 = 1) {
        let configuration = RaftConfiguration(voters: Set(voters), learners: Set(learners))
        for node in voters + learners {
            let state = DurableState(bootstrapConfiguration: configuration)
            durable[node] = state
            replicas[node] = Self.replica(node, from: state, options: options, seed: seed &+ node)
            applied[node] = []
        }
    }

    /// A replica from a durable state the test built (consistent by construction).
    static func replica(_ node: NodeID, from state: DurableState, options: RaftOptions, seed: UInt64) -> RaftReplica {
        do {
            return try RaftReplica(id: node, durable: state, options: options, random: RandomSource(seed: seed))
        } catch {
            preconditionFailure("the test's durable state is consistent: \(error)")
        }
    }

    static var testOptions: RaftOptions {
        var options = RaftOptions()
        options.checksInvariants = true
        return options
    }

    /// Adds a node that starts from `state` (a new member, or a restart).
    mutating func start(_ node: NodeID, from state: DurableState, options: RaftOptions = Self.testOptions, seed: UInt64 = 7) {
        durable[node] = state
        replicas[node] = Self.replica(node, from: state, options: options, seed: seed &+ node)
        applied[node] = applied[node] ?? []
    }

    /// Crashes `node` (keeping only its durable state) and starts it again.
    mutating func restart(_ node: NodeID) {
        var state = durable[node]!
        state.appliedIndex = UInt64(applied[node]!.last?.index ?? state.snapshot?.index ?? 0)
        start(node, from: state)
    }

    func leaders() -> [NodeID] { replicas.values.filter { $0.role == .leader }.map(\.id).sorted() }

    // MARK: Driving

    /// Carries out `node`'s Ready, as the production driver does.
    mutating func handleReady(_ node: NodeID) {
        guard var replica = replicas[node], replica.hasReady else { return }
        let ready = replica.takeReady()
        send(ready.messages)
        var state = durable[node]!
        if let snapshot = ready.snapshot {
            state.snapshot = snapshot
            state.entries = []
            installed[node, default: []].append(snapshot)
            applied[node] = []  // The state machine is replaced by the snapshot's image.
        }
        if let hardState = ready.hardState { state.hardState = hardState }
        if let first = ready.entries.first {
            let base = state.snapshot?.index ?? 0
            state.entries.removeLast(state.entries.count - Int(first.index - base - 1))
            state.entries.append(contentsOf: ready.entries)
        }
        durable[node] = state
        send(ready.messagesAfterPersist)
        if let last = ready.entries.last { replica.persisted(index: last.index, term: last.term) }
        if !ready.committedEntries.isEmpty {
            applied[node, default: []].append(contentsOf: ready.committedEntries)
            replica.applied(index: ready.committedEntries.last!.index)
        }
        readStates[node, default: []].append(contentsOf: ready.readStates)
        replicas[node] = replica
    }

    mutating func send(_ messages: [RaftMessage]) {
        for message in messages where !cut.contains([message.from, message.to]) && !drop(message) {
            inFlight.append(message)
        }
    }

    /// Handles every Ready and delivers messages until nothing moves (bounded).
    mutating func settle(maxSteps: Int = 100_000) {
        var steps = 0
        while steps < maxSteps {
            steps += 1
            guard deliverNext() else { return }
        }
        preconditionFailure("the network did not settle within \(maxSteps) steps")
    }

    /// Handles every Ready, then delivers the oldest message in flight.
    /// - Returns: false when no message was in flight.
    mutating func deliverNext() -> Bool {
        for node in replicas.keys.sorted() { handleReady(node) }
        guard !inFlight.isEmpty else { return false }
        let message = inFlight.removeFirst()
        guard replicas[message.to] != nil, !cut.contains([message.from, message.to]) else { return true }
        delivered.append(message)
        replicas[message.to]!.step(message)
        return true
    }

    /// Ticks every node once (or only `nodes`), then settles.
    mutating func tick(_ nodes: [NodeID]? = nil, times: Int = 1) {
        for _ in 0..<times {
            for node in (nodes ?? replicas.keys.sorted()) { replicas[node]?.tick() }
            settle()
        }
    }

    /// Ticks `node` alone until it campaigns, then settles: it wins if it can.
    mutating func campaign(_ node: NodeID, transfer: Bool = false) {
        replicas[node]!.campaign(transfer: transfer)
        settle()
    }

    /// Proposes on `node` (which must lead) and settles.
    @discardableResult
    mutating func propose(_ node: NodeID, _ text: String) -> Result<UInt64, ProposalRefusal> {
        let result = replicas[node]!.propose(Array(text.utf8))
        settle()
        return result
    }

    /// Cuts (or heals) both directions between `a` and every node of `others`.
    mutating func isolate(_ a: NodeID, from others: [NodeID]? = nil, heal: Bool = false) {
        for other in (others ?? replicas.keys.filter { $0 != a }) {
            if heal {
                cut.remove([a, other])
                cut.remove([other, a])
            } else {
                cut.insert([a, other])
                cut.insert([other, a])
            }
        }
    }

    /// The payloads of `node`'s applied commands, as text.
    func appliedCommands(_ node: NodeID) -> [String] {
        applied[node]!.filter { $0.kind == .command }.map { String(decoding: $0.payload, as: UTF8.self) }
    }
}
