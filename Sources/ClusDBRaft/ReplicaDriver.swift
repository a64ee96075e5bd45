/// The node's decisions around its replica, as an explicit state machine without threads,
/// clocks or I/O (issue 10: the driver whose transitions are tested without threads; threads
/// only carry out its ``Action``s). The simulator runs it as the node will.
///
/// It keeps one ``Ready`` in flight at a time (the contract of ``Ready``), remembers which client
/// waits for which log index or read, and turns the replica's output into actions in the order
/// the contract demands: send what may go at once; persist; once told the state is durable, send
/// what waited for it, apply committed entries (each with the client waiting for it, if any);
/// serve reads once their index is applied. Requests that cannot complete — the replica refused
/// them, a new leader overwrote the entry, the read was never confirmed — are handed back to be
/// retried (with the client's session, a write is still applied once), at the latest after
/// ``requestTimeoutTicks``.
///
/// `Waiter` is whatever the executor needs to answer a client (a connection, a promise, a
/// simulated client's id).
public struct ReplicaDriver<Waiter: Sendable>: Sendable {
    /// What the executor must do, in the order given.
    public enum Action: Sendable {
        /// Send these messages.
        case send([RaftMessage])
        /// Make the Ready's snapshot (install its image), hard state (when its term or vote is
        /// new) and entries durable, in that order, then call ``ReplicaDriver/persisted()``. No
        /// other persistence comes until then. Its committed entries come as an ``apply(_:)``
        /// before it: they are durable already.
        case persist(Ready)
        /// Apply these committed entries in order, answering each waiter with its entry's
        /// outcome, then call ``ReplicaDriver/applied(through:)``.
        case apply([(entry: RaftEntry, waiter: Waiter?)])
        /// The state machine holds everything this read must see: serve it now.
        case serveRead(Waiter)
        /// The request did not complete here; the client should try again (at `leader` when
        /// one is known). A write may still be applied: its session makes a retry safe.
        case retry(Waiter, leader: NodeID?)
    }

    private struct WaitingWrite: Sendable {
        var term: UInt64
        var waiter: Waiter
        var deadline: UInt64
    }

    private struct WaitingRead: Sendable {
        var waiter: Waiter
        var deadline: UInt64
        /// Set once the read index is known.
        var index: UInt64?
    }

    /// The replica (read it freely; change it only through the driver).
    public private(set) var replica: RaftReplica
    /// Whether a Ready's persistence is under way.
    public var isPersisting: Bool { persisting != nil }
    /// Client requests waiting here (writes and reads).
    public var waitingRequests: Int { writes.count + reads.count }

    /// Ticks a request may wait before it is handed back for a retry.
    public let requestTimeoutTicks: UInt64
    /// Requests that may wait at once; more are handed back at once.
    public let maxWaitingRequests: Int

    private var persisting: Ready?
    private var writes: [UInt64: WaitingWrite] = [:]
    private var reads: [UInt64: WaitingRead] = [:]
    /// Contexts of reads whose index is known, in the order their indexes arrived (served in
    /// that order once applied; a confirmed read never needs a sort of every waiting one).
    private var confirmedReads: [UInt64] = []
    /// No deadline of a waiting request is earlier: ticks before it need not look at any.
    private var earliestDeadline: UInt64 = .max
    private var nextReadContext: UInt64
    private var now: UInt64 = 0
    private var applied: UInt64
    /// The hard state the executor last made durable (term and vote are what must be).
    private var durableHardState: HardState

    /// Drives `replica`. Read contexts start from `readNonce` (random per start: an answer to
    /// a read of a previous run must not match a new one).
    public init(replica: RaftReplica, readNonce: UInt64, requestTimeoutTicks: UInt64 = 60, maxWaitingRequests: Int = 4096) {
        precondition(requestTimeoutTicks > 0 && maxWaitingRequests > 0, "limits are positive")
        self.replica = replica
        self.requestTimeoutTicks = requestTimeoutTicks
        self.maxWaitingRequests = maxWaitingRequests
        nextReadContext = readNonce << 32
        applied = replica.appliedIndex
        durableHardState = replica.hardState
    }

    // MARK: Inputs

    /// A client's write: proposed when this replica leads, handed back otherwise.
    public mutating func propose(_ payload: [UInt8], for waiter: Waiter) -> [Action] {
        let refused = proposeOne(payload, for: waiter)
        return refused + carryOn()
    }

    /// Clients' writes proposed together: while no persistence is under way they go to the
    /// disk in one ``Action/persist(_:)`` (group commit), where one at a time would persist the
    /// first alone.
    public mutating func propose(_ batch: [(payload: [UInt8], waiter: Waiter)]) -> [Action] {
        var refused: [Action] = []
        for (payload, waiter) in batch { refused += proposeOne(payload, for: waiter) }
        return refused + carryOn()
    }

    /// Proposes without carrying on; returns the hand-backs.
    private mutating func proposeOne(_ payload: [UInt8], for waiter: Waiter) -> [Action] {
        guard waitingRequests < maxWaitingRequests else { return [.retry(waiter, leader: replica.leader)] }
        switch replica.propose(payload) {
        case .success(let index):
            // A write still waiting at this index lost its entry to another history (a received
            // snapshot cut the log below it): hand it back rather than forget it (found in review).
            let displaced = writes[index].map { Action.retry($0.waiter, leader: replica.leader) }
            writes[index] = WaitingWrite(term: replica.term, waiter: waiter, deadline: now + requestTimeoutTicks)
            earliestDeadline = min(earliestDeadline, now + requestTimeoutTicks)
            return displaced.map { [$0] } ?? []
        case .failure(let refusal):
            return [.retry(waiter, leader: Self.leader(in: refusal))]
        }
    }

    /// Hands back every request waiting here (the node stops writing after a disk failure:
    /// what it holds in memory may no longer match the disk). Their writes may or may not be
    /// durable; their sessions make a retry safe.
    public mutating func handBackAllRequests() -> [Action] {
        let handedBack = writes.keys.sorted().map { Action.retry(writes[$0]!.waiter, leader: nil) }
            + reads.keys.sorted().map { Action.retry(reads[$0]!.waiter, leader: nil) }
        writes = [:]
        reads = [:]
        confirmedReads = []
        earliestDeadline = .max
        return handedBack
    }

    /// A client's linearizable read (ReadIndex, from any member).
    public mutating func read(for waiter: Waiter) -> [Action] {
        guard waitingRequests < maxWaitingRequests else { return [.retry(waiter, leader: replica.leader)] }
        let context = nextReadContext
        nextReadContext += 1
        switch replica.requestRead(context: context) {
        case .success:
            reads[context] = WaitingRead(waiter: waiter, deadline: now + requestTimeoutTicks)
            earliestDeadline = min(earliestDeadline, now + requestTimeoutTicks)
            return carryOn()
        case .failure(let refusal):
            return [.retry(waiter, leader: Self.leader(in: refusal))] + carryOn()
        }
    }

    /// A message from another replica.
    public mutating func receive(_ message: RaftMessage) -> [Action] {
        replica.step(message)
        return carryOn()
    }

    /// One tick of logical time; requests past their deadline are handed back.
    public mutating func tick() -> [Action] {
        now += 1
        replica.tick()
        guard earliestDeadline <= now else { return carryOn() }
        // One pass over what waits (not a sort of it per tick); only the expired are ordered,
        // so that the simulator's runs stay deterministic.
        let expiredWrites = writes.filter { $0.value.deadline <= now }.keys.sorted()
        let expiredReads = reads.filter { $0.value.deadline <= now }.keys.sorted()
        var actions: [Action] = []
        for index in expiredWrites {
            actions.append(.retry(writes.removeValue(forKey: index)!.waiter, leader: replica.leader))
        }
        for context in expiredReads {
            actions.append(.retry(reads.removeValue(forKey: context)!.waiter, leader: replica.leader))
        }
        if !expiredReads.isEmpty { confirmedReads.removeAll { reads[$0] == nil } }
        earliestDeadline = min(writes.values.map(\.deadline).min() ?? .max, reads.values.map(\.deadline).min() ?? .max)
        return actions + carryOn()
    }

    /// The persisting Ready's state is durable.
    public mutating func persisted() -> [Action] {
        guard let ready = persisting else { preconditionFailure("persisted() answers a .persist action") }
        persisting = nil
        if let last = ready.entries.last { replica.persisted(index: last.index, term: last.term) }
        return afterPersistence(of: ready) + carryOn()
    }

    /// The state machine applied everything through `index` (the end of an ``Action/apply(_:)``).
    public mutating func applied(through index: UInt64) -> [Action] {
        replica.applied(index: index)
        applied = max(applied, index)
        return serveAppliedReads() + carryOn()
    }

    /// A durable snapshot covers the log through `index` (see ``RaftReplica/compact(through:)``).
    public mutating func compact(through index: UInt64) {
        replica.compact(through: index)
    }

    /// Other requests of the replica itself (membership changes, transfers, snapshot reports),
    /// made through the driver so that their output is carried on.
    public mutating func withReplica(_ body: (inout RaftReplica) -> Void) -> [Action] {
        body(&replica)
        return carryOn()
    }

    // MARK: Output

    /// Takes the replica's output while no persistence is under way. Committed entries are
    /// applied at once: the replica hands out only entries already durable here, so they need
    /// not wait for this Ready's own persistence. A Ready with durable work (a snapshot, entries,
    /// a new term or vote; a commit index alone is not worth a write) waits for ``persisted()``
    /// before the messages that promise durability go.
    private mutating func carryOn() -> [Action] {
        var actions: [Action] = []
        while persisting == nil, replica.hasReady {
            let ready = replica.takeReady()
            // Entries applied before the persist would be wiped by the snapshot's image; the
            // replica never hands out both (after a restore everything up to it counts applied).
            precondition(ready.snapshot == nil || ready.committedEntries.isEmpty, "no committed entries come with a snapshot")
            if !ready.messages.isEmpty { actions.append(.send(ready.messages)) }
            actions += applyCommitted(ready)
            actions += takeReadStates(ready)
            let newVote = ready.hardState.map { $0.term != durableHardState.term || $0.vote != durableHardState.vote } ?? false
            if ready.snapshot != nil || newVote || !ready.entries.isEmpty {
                persisting = ready
                actions.append(.persist(ready))
            } else {
                actions += afterPersistence(of: ready)
            }
        }
        return actions
    }

    /// The committed entries of a Ready, each with the write waiting for it (when it is the
    /// entry that write proposed: same index and term).
    private mutating func applyCommitted(_ ready: Ready) -> [Action] {
        guard !ready.committedEntries.isEmpty else { return [] }
        var actions: [Action] = []
        var batch: [(entry: RaftEntry, waiter: Waiter?)] = []
        for entry in ready.committedEntries {
            guard let write = writes.removeValue(forKey: entry.index) else {
                batch.append((entry, nil))
                continue
            }
            if write.term == entry.term {
                batch.append((entry, write.waiter))
            } else {
                // Another leader's entry took the index: this write was not applied here.
                batch.append((entry, nil))
                actions.append(.retry(write.waiter, leader: replica.leader))
            }
        }
        return actions + [.apply(batch)]
    }

    /// Read indexes that arrived (reads whose index is applied already are served at once), and
    /// reads that will get none, handed back at once.
    private mutating func takeReadStates(_ ready: Ready) -> [Action] {
        var actions: [Action] = []
        for context in ready.droppedReads {
            guard let read = reads.removeValue(forKey: context) else { continue }
            actions.append(.retry(read.waiter, leader: replica.leader))
        }
        if !ready.droppedReads.isEmpty { confirmedReads.removeAll { reads[$0] == nil } }
        guard !ready.readStates.isEmpty else { return actions }
        for state in ready.readStates where reads[state.context]?.index == nil {
            reads[state.context]?.index = state.index
            if reads[state.context] != nil { confirmedReads.append(state.context) }
        }
        return actions + serveAppliedReads()
    }

    /// Serves the reads whose index the state machine has applied, in the order their indexes
    /// arrived.
    private mutating func serveAppliedReads() -> [Action] {
        guard !confirmedReads.isEmpty else { return [] }
        var actions: [Action] = []
        confirmedReads.removeAll { context in
            guard let read = reads[context], let readIndex = read.index else { return true }
            guard readIndex <= applied else { return false }
            reads[context] = nil
            actions.append(.serveRead(read.waiter))
            return true
        }
        return actions
    }

    /// What follows a Ready once its state is durable.
    private mutating func afterPersistence(of ready: Ready) -> [Action] {
        var actions: [Action] = []
        if let hardState = ready.hardState { durableHardState = hardState }
        if !ready.messagesAfterPersist.isEmpty { actions.append(.send(ready.messagesAfterPersist)) }
        if let snapshot = ready.snapshot {
            // The image replaced the state machine: writes it covers were applied (or lost) in
            // another history; their clients retry and their sessions answer.
            applied = max(applied, snapshot.index)
            for (index, write) in writes.sorted(by: { $0.key < $1.key }) where index <= snapshot.index {
                writes[index] = nil
                actions.append(.retry(write.waiter, leader: replica.leader))
            }
            actions += serveAppliedReads()
        }
        return actions
    }

    private static func leader(in refusal: ProposalRefusal) -> NodeID? {
        if case .notLeader(let leader) = refusal { return leader }
        return nil
    }
}
