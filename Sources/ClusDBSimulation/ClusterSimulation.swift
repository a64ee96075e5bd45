#if canImport(Glibc)
import Glibc
#endif
import ClusDBModel
import ClusDBRaft
import ClusDBStore
import Synchronization

/// A seeded, single-threaded simulation of a ClusDB cluster (DESIGN §2): replicas running the
/// production Raft core exchange messages over a ``SimulatedNetwork`` that loses, delays,
/// duplicates and reorders them and is partitioned at random (one-way links included); nodes
/// crash (losing what was not persisted, at every point of a Ready's handling) and restart;
/// members are added as learners, promoted and removed, leadership is transferred; clients write
/// and read through any node and retry with their session. Everything follows from the seed.
///
/// After the faulty phase every link heals and every node restarts: the cluster must elect a
/// leader and converge (liveness). The ``SimulationChecker`` watches safety all along; at the end
/// the client history must be linearizable, no acknowledged write lost, none applied twice.
///
/// The replicas apply to the production hive on in-memory SQLite (``SimulatedStateMachine``),
/// with the production command encoding and client sessions.
public struct ClusterSimulation {
    /// The client history's model: one register per registry value.
    public typealias Model = RegistryRegisterModel<String>

    private struct Client {
        enum Request {
            case write(ClientWrite)
            case read(key: String, historyIndex: Int)
        }

        struct Pending {
            var historyIndex: Int
            var request: Request
            var node: NodeID
            var sentAt: Int
            var attempts: Int
        }

        let id: Int
        var nextSequence: UInt64 = 1
        var pending: Pending?
        var lastAnswerAt = -1
        var leaderHint: NodeID?
    }

    private let options: SimulationOptions
    private var random: RandomSource
    private var raftOptions: RaftOptions
    private var nodes: [NodeID: SimulatedNode] = [:]
    private var network = SimulatedNetwork()
    private var clients: [Client] = []
    private var history = ClientHistory<Model>()
    private var checker = SimulationChecker()
    private var now = 0
    private var healing = false
    private var nextNodeID: NodeID
    private var digest = TraceDigest()
    private var statistics = SimulationReport.Statistics()
    /// What happened, in a line each (elections, membership changes, crashes), for a replay.
    private var milestones: [String] = []
    /// Writes clients were told succeeded.
    private var acknowledgedWrites: [ClientWrite] = []
    /// Nodes whose last crash flipped a bit of their files, with what was flipped.
    private var flippedNodes: [NodeID: SimulatedDisk.BitFlip] = [:]
    /// Nodes whose start-up refused a flipped bit: they stay down for the rest of the run.
    private var stoppedByDamage: Set<NodeID> = []

    /// Prepares a run; ``run()`` carries it out.
    public init(options: SimulationOptions) {
        precondition((1...7).contains(options.nodes), "1 to 7 nodes")
        self.options = options
        random = RandomSource(seed: options.seed)
        raftOptions = RaftOptions()
        raftOptions.checksInvariants = true
        raftOptions.brokenProtocol = options.brokenProtocol
        raftOptions.maxAppendBytes = options.maxAppendBytes
        let voters = Set((1...NodeID(options.nodes)))
        if let directory = options.diskDirectory {
            runDirectory = FileSystem.join(directory, "clusdb-sim-\(options.seed)-\(options.nodes)-\(Self.runNumbers.add(1, ordering: .relaxed).oldValue)-\(getpid())")
        }
        nextNodeID = NodeID(options.nodes) + 1
        clients = (0..<options.clients).map { Client(id: $0) }
        for id in voters.sorted() {
            nodes[id] = makeNode(id, bootstrap: RaftConfiguration(voters: voters), seed: options.seed &+ id)
        }
    }

    /// Runs the simulation to its end and checks it.
    public mutating func run() -> SimulationReport {
        let total = options.steps + options.healingSteps
        while now < total && checker.violations.isEmpty {
            if now == options.steps { startHealing() }
            let (arrived, lost) = network.due(at: now)
            for envelope in lost {
                if case .installSnapshot(let snapshot) = envelope.message.body {
                    reportSnapshot(from: envelope.message.from, to: envelope.message.to, index: snapshot.index, succeeded: false)
                }
            }
            completeDueReadys()
            for envelope in arrived { deliver(envelope) }
            if now % options.stepsPerTick == 0 {
                for id in nodes.keys.sorted() where nodes[id]!.isUp {
                    drive(id) { driver in driver.tick() }
                }
            }
            if !healing { injectFaults() }
            for index in clients.indices { stepClient(index) }
            now += 1
        }
        if checker.violations.isEmpty { checkEnd() }
        for node in nodes.values { node.disk?.remove() }
        if let runDirectory { try? FileSystem.removeTree(runDirectory) }
        return SimulationReport(
            seed: options.seed, nodes: options.nodes, violations: checker.violations, traceDigest: digest.value, statistics: statistics,
            history: history, milestones: milestones,
            replayFlags: (options.diskDirectory.map { " --disks \($0)" } ?? "") + options.skippedSyncSites.sorted().map { " --skip-sync \($0)" }.joined()
                + (options.fullDiskRate > 0 ? " --full-disks \(options.fullDiskRate)" : "")
                + (options.bitFlipRate > 0 ? " --bit-flips \(options.bitFlipRate)" : "")
                + (options.compactionEveryEntries != SimulationOptions.swarm(seed: options.seed, nodes: options.nodes).compactionEveryEntries
                    ? " --compact-every \(options.compactionEveryEntries)" : ""))
    }

    // MARK: Nodes

    /// Numbers runs of this process, so that parallel runs of one seed get their own directories.
    private static let runNumbers = Atomic<Int>(0)
    /// Where this run's disks live, when it uses disks.
    private var runDirectory: String?

    /// A new node with an empty durable state (and disk), started.
    private func makeNode(_ id: NodeID, bootstrap: RaftConfiguration, seed: UInt64) -> SimulatedNode {
        do {
            let node = try SimulatedNode(id: id, durable: DurableState(bootstrapConfiguration: bootstrap))
            if let runDirectory {
                node.disk = try SimulatedDisk(
                    base: FileSystem.join(runDirectory, "node-\(id)"), skippedSites: Set(options.skippedSyncSites.map(SyncSite.init)))
            }
            try node.start(options: raftOptions, seed: seed)
            return node
        } catch {
            preconditionFailure("an empty durable state and an empty hive in memory start: \(error)")
        }
    }

    /// Notes a milestone of the run (bounded: a replay needs the story, not every step).
    private mutating func note(_ line: String) {
        if milestones.count < Self.milestonesMax { milestones.append("step \(now): \(line)") }
    }

    /// The most milestones a run keeps.
    static let milestonesMax = 10_000

    private var memberIDs: [NodeID] { nodes.keys.sorted() }

    /// Gives `id`'s driver an input and carries out the actions it returns (the node's threads'
    /// part). Nothing happens on a crashed node.
    private mutating func drive(
        _ id: NodeID, alsoCreatedUnder earlier: [RaftConfiguration] = [],
        _ input: (inout ReplicaDriver<SimulatedNode.Ticket>) -> [ReplicaDriver<SimulatedNode.Ticket>.Action]
    ) {
        guard let node = nodes[id], var driver = node.driver else { return }
        let actions = input(&driver)
        node.driver = driver
        node.noteConfiguration()
        checker.commits(driver.replica)
        execute(id, actions, createdUnder: earlier + node.configurationsSinceTake)
        if let replica = nodes[id]?.replica, replica.role == .leader {
            if checker.leads(replica) { note("elected: \(replica.summary), voters \(replica.configuration.voters.sorted())") }
        }
    }

    /// Carries out a driver's actions in order; messages were created under `configurations`.
    private mutating func execute(_ id: NodeID, _ actions: [ReplicaDriver<SimulatedNode.Ticket>.Action], createdUnder configurations: [RaftConfiguration]) {
        for action in actions {
            guard let node = nodes[id], node.isUp else { return }  // crashed part-way
            switch action {
            case .send(let messages):
                for message in messages { transmit(message, createdUnder: configurations) }
            case .persist(let ready):
                node.configurationsSinceTake = [node.replica!.configuration]
                let image = node.takeImage(for: ready)
                digest.add(id, now, ready.entries.count, ready.messages.count, ready.committedEntries.count)
                if maybeCrashInsideReady(id, ready, image) { return }
                // The disk takes a while: meanwhile messages, ticks and requests reach the driver.
                let delay = options.maxPersistDelaySteps == 0 ? 0 : Int.random(in: 0...options.maxPersistDelaySteps, using: &random)
                if delay > 0 {
                    node.readyInFlight = (ready, image, configurations, now + delay)
                } else {
                    completePersistence(id, ready, image, configurations)
                }
            case .apply(let batch):
                apply(id, batch)
            case .serveRead(let ticket):
                guard case .read(let client, let historyIndex, let key) = ticket else { continue }
                let value: String?
                do { value = try node.stateMachine.value(named: key) } catch {
                    checker.record("hive: node \(id) could not read \(key): \(error)")
                    return
                }
                answer(client: client, output: value.map { .value($0) } ?? .notFound, for: .read(key: key, historyIndex: historyIndex))
            case .retry(let ticket, let leader):
                retrySoon(ticket, at: leader)
            }
        }
    }

    /// Completes the persistence that is due, and carries on with what follows it.
    private mutating func completeDueReadys() {
        for id in memberIDs {
            guard let node = nodes[id], let (ready, image, configurations, completesAt) = node.readyInFlight, completesAt <= now else { continue }
            node.readyInFlight = nil
            if maybeCrashInsideReady(id, ready, image) { continue }
            completePersistence(id, ready, image, configurations)
        }
    }

    /// A Ready's state reaches the disk; the driver is told, and what it returns is carried out.
    private mutating func completePersistence(_ id: NodeID, _ ready: Ready, _ image: SimulatedStateMachine.Image?, _ configurations: [RaftConfiguration]) {
        let node = nodes[id]!
        do { try node.persist(ready, image: image) } catch {
            if error.code == .diskFull && node.disk?.isFull == true {
                // The node's answer to a write it cannot make durable: stop (it refuses writes
                // until restarted); nothing of this Ready was acknowledged.
                statistics.persistenceRefused += 1
                note("node \(id) stops: its disk is full")
                crash(id)
                return
            }
            checker.record("disk: node \(id) could not persist a Ready: \(error)")
            return
        }
        checker.persists(ready.entries, on: id, previousTerm: { index in node.durableTerm(at: index) })
        if let snapshot = ready.snapshot {
            statistics.snapshotsInstalled += 1
            digest.add(id, snapshot.index)
        }
        if maybeCrashAfterPersist(id) { return }
        // The messages that waited for this persistence were created before it began.
        drive(id, alsoCreatedUnder: configurations) { driver in driver.persisted() }
    }

    /// Applies committed entries to the node's state machine, answering the clients waiting.
    private mutating func apply(_ id: NodeID, _ batch: [(entry: RaftEntry, waiter: SimulatedNode.Ticket?)]) {
        let node = nodes[id]!
        for (entry, waiter) in batch {
            checker.applies(entry, on: id)
            if entry.index > node.stateMachine.appliedIndex {  // else: in a snapshot just installed
                let applied: SimulatedStateMachine.Applied
                let outcome: CommandOutcome
                do { (applied, outcome) = try node.stateMachine.apply(entry, applyRetriedTwice: options.applyRetriedWritesTwice) } catch {
                    checker.record("hive: node \(id) could not apply entry \(entry.index): \(error)")
                    return
                }
                // The write its client waits for is the session's newest and the same bytes as
                // first sent: the hive has no reason to refuse it (an older retry, committed
                // after its client moved on, may be refused; nobody waits for that one).
                if case .failed(let error) = outcome, case .write(let client, let write) = waiter, isWaiting(client, for: write) {
                    checker.record("hive: node \(id) refused write \(write.client)/\(write.sequence) that its client waits for, at index \(entry.index): \(error)")
                    return
                }
                switch applied {
                case .write(let write, before: true):
                    checker.record("exactly once: node \(id) applied write \(write.client)/\(write.sequence) a second time at index \(entry.index)")
                case .replayed: statistics.sessionReplays += 1
                case .write, .nothing: break
                }
            }
            if case .write(let client, let write) = waiter { answer(client: client, output: .ok, for: .write(write)) }
        }
        guard let last = batch.last else { return }
        drive(id) { driver in driver.applied(through: last.entry.index) }
        compactIfDue(id)
    }

    /// A crash while the Ready's state is being persisted: some prefix of it reaches the disk
    /// (in the driver's order), none of its later messages go.
    private mutating func maybeCrashInsideReady(_ id: NodeID, _ ready: Ready, _ image: SimulatedStateMachine.Image?) -> Bool {
        guard !healing, Double.random(in: 0..<1, using: &random) < options.crashRate * options.crashInsideReadyRate else { return false }
        let stages: [SimulatedNode.PersistStage] =
            [.nothing, .snapshotFile, .snapshotInstalled, .hardState] + (0...ready.entries.count).map { .entries($0) }
        do { try nodes[id]!.persist(ready, image: image, upTo: stages.randomElement(using: &random)!) } catch {
            if !(error.code == .diskFull && nodes[id]!.disk?.isFull == true) {
                checker.record("disk: node \(id) could not persist part of a Ready: \(error)")
            }
        }
        crash(id)
        return true
    }

    /// A crash once the Ready is durable, before the messages that waited for it.
    private mutating func maybeCrashAfterPersist(_ id: NodeID) -> Bool {
        guard !healing, Double.random(in: 0..<1, using: &random) < options.crashRate * options.crashInsideReadyRate else { return false }
        crash(id)
        return true
    }

    /// Compacts the log behind a fresh snapshot every few entries, so that laggards get snapshots.
    private mutating func compactIfDue(_ id: NodeID) {
        guard let node = nodes[id], let applied = node.replica?.appliedIndex else { return }
        guard applied >= node.replica!.firstIndex + UInt64(options.compactionEveryEntries), node.stateMachine.appliedIndex == applied else { return }
        // The snapshot the compaction makes, worked out on a copy: the replica compacts only once
        // the checkpoint is durable, as the node's does.
        var compacted = node.replica!
        compacted.compact(through: applied)
        let snapshot = compacted.snapshotMetadata
        do { try node.compactDurable(through: snapshot.index, term: snapshot.term, configuration: snapshot.configuration) } catch {
            // A full disk fails the checkpoint and the log keeps growing, as in the node; the
            // next compaction tries again.
            if !(error.code == .diskFull && node.disk?.isFull == true) { checker.record("disk: node \(id) could not compact its log: \(error)") }
            return
        }
        node.driver!.compact(through: applied)
        statistics.compactions += 1
    }

    /// Tells the sender's replica how a snapshot transfer ended.
    private mutating func reportSnapshot(from sender: NodeID, to receiver: NodeID, index: UInt64, succeeded: Bool) {
        drive(sender) { driver in driver.withReplica { $0.snapshotSent(to: receiver, index: index, succeeded: succeeded) } }
    }

    /// Sends a message created while its sender had `configurations`.
    private mutating func transmit(_ message: RaftMessage, createdUnder configurations: [RaftConfiguration]) {
        guard nodes[message.from]?.replica != nil else { return }
        checker.sends(message, configurations: configurations, preVoteConfigured: raftOptions.preVote)
        var image: SimulatedStateMachine.Image?
        if case .installSnapshot(let snapshot) = message.body {
            image = nodes[message.from]!.snapshotImage
            guard image?.appliedIndex == snapshot.index else {
                // A newer checkpoint replaced this one while the message waited for its Ready
                // (a persistence in flight): the transport has nothing to send and says so.
                reportSnapshot(from: message.from, to: message.to, index: snapshot.index, succeeded: false)
                return
            }
            statistics.snapshotsSent += 1
        }
        let sent = network.send(message, image: image, now: now, options: options, random: &random)
        if !sent, case .installSnapshot(let snapshot) = message.body {
            reportSnapshot(from: message.from, to: message.to, index: snapshot.index, succeeded: false)
        }
    }

    private mutating func deliver(_ envelope: SimulatedNetwork.Envelope) {
        let message = envelope.message
        guard let node = nodes[message.to], node.isUp else {
            if case .installSnapshot(let snapshot) = message.body {
                reportSnapshot(from: message.from, to: message.to, index: snapshot.index, succeeded: false)
            }
            return
        }
        digest.add(message.from, message.to, message.term, now)
        checker.delivers(message)
        // State-machine safety, before the replica's own precondition would stop the process:
        // an append must never replace an entry some node applied.
        // (Appends of an older term are refused by the replica anyway.)
        if case .append(_, _, let entries, _) = message.body, message.term >= node.replica!.term {
            let commitIndex = node.replica!.commitIndex
            for entry in entries where entry.index <= commitIndex {
                if let existing = node.replica!.term(at: entry.index), existing != entry.term {
                    checker.record("committed entry overwritten: node \(message.to) would replace entry \(entry.index) of term \(existing) (committed) with one of term \(entry.term) from \(message.from)")
                    return
                }
            }
        }
        if case .installSnapshot(let snapshot) = message.body, let image = envelope.image { node.receivedImages[snapshot.index] = image }
        drive(message.to) { driver in driver.receive(message) }
        if case .installSnapshot(let snapshot) = message.body {
            // Delivered and (with the receiver's next Ready) made durable: the transport reports it.
            reportSnapshot(from: message.from, to: message.to, index: snapshot.index, succeeded: true)
        }
    }

    private mutating func crash(_ id: NodeID) {
        guard nodes[id]?.isUp == true else { return }
        // Requests waiting on the node are lost with it; their clients time out and retry.
        // What a power loss keeps of a disk's unsynced writes: nothing, a prefix, or any pages.
        let tear: PowerLossDisk.Tear
        switch Int.random(in: 0..<3, using: &random) {
        case 0: tear = .dropUnsynced
        case 1: tear = .prefix(seed: random.next())
        default: tear = .pages(seed: random.next())
        }
        let flipping = options.bitFlipRate > 0 && options.diskDirectory != nil && !healing
            && Double.random(in: 0..<1, using: &random) < options.bitFlipRate && mayStopForGood(id)
        do {
            if let flipped = try nodes[id]!.crash(tear: tear, flippingABit: flipping, random: &random) {
                flippedNodes[id] = flipped
                statistics.bitFlips += 1
                note("node \(id) crashes; \(flipped.description) flips")
                digest.add(id, now, 0xF1A9)
            } else {
                note("node \(id) crashes")
            }
        } catch {
            checker.record("disk: node \(id) could not be crashed: \(error)")
        }
        statistics.crashes += 1
        digest.add(id, now, 0xC4A5)
    }

    private mutating func restart(_ id: NodeID) {
        guard nodes[id]?.isUp == false, !stoppedByDamage.contains(id) else { return }
        let flip = flippedNodes.removeValue(forKey: id)
        let flipped = flip.map { " (\($0.description) flipped)" } ?? ""
        do { try nodes[id]!.start(options: raftOptions, seed: random.next()) } catch {
            if let flip, nodes[id]!.startRefusedByStorage, flip.explains(error) {
                // The checksums caught the flip and the start-up refused it, changing nothing:
                // the node stays down, as one whose operator has not replaced its disk yet.
                stoppedByDamage.insert(id)
                statistics.corruptionsRefused += 1
                note("node \(id) refuses to start\(flipped): \(error)")
                return
            }
            checker.record("start-up: node \(id) refused the state a crash left\(flipped): \(error)")
            return
        }
        if let mismatch = nodes[id]!.readBackMismatch {
            checker.record("checkpoint: node \(id) started from a damaged checkpoint\(flipped): \(mismatch)")
            return
        }
        // Every flip is in a file this start read: it must have been caught.
        switch flip?.kind {
        case nil:
            if nodes[id]!.checkpointsPassedOver > 0 {
                checker.record("checkpoint: node \(id) passed over a checkpoint no bit flip damaged: a checkpoint in place must be whole")
                return
            }
        case .checkpointImage?, .checkpointSum?:
            guard nodes[id]!.checkpointsPassedOver > 0 else {
                checker.record("checkpoint: node \(id) started from its newest checkpoint\(flipped) without noticing the damage")
                return
            }
            statistics.checkpointFallbacks += 1
            note("node \(id) passes over its newest checkpoint\(flipped) for the older one and the log")
        case .hardState?, .logSegment?:
            checker.record("start-up: node \(id) started\(flipped) without noticing the damage")
            return
        }
        do {
            if try nodes[id]!.writeFreshCheckpointIfNeeded() { note("node \(id) writes a fresh checkpoint after passing over a damaged one") }
        } catch {
            // A full disk fails it and the next start tries again, as in the node.
            if !(error.code == .diskFull && nodes[id]!.disk?.isFull == true) { checker.record("disk: node \(id) could not write a fresh checkpoint: \(error)") }
        }
        statistics.restarts += 1
        note("node \(id) restarts: \(nodes[id]!.replica!.summary)")
        // A replica that starts with output (a snapshot to reinstall) hands it out at once.
        digest.add(id, now, 0x5EA7)
        drive(id) { driver in driver.withReplica { _ in } }
    }

    // MARK: Faults

    private mutating func injectFaults() {
        if Double.random(in: 0..<1, using: &random) < options.crashRate, let id = memberIDs.filter({ nodes[$0]!.isUp }).randomElement(using: &random) {
            crash(id)
        }
        if Double.random(in: 0..<1, using: &random) < options.restartRate,
            let id = memberIDs.filter({ !nodes[$0]!.isUp && !stoppedByDamage.contains($0) }).randomElement(using: &random)
        {
            restart(id)
        }
        if Double.random(in: 0..<1, using: &random) < options.partitionRate {
            network.partition(nodes: memberIDs, random: &random)
            statistics.partitions += 1
        }
        if Double.random(in: 0..<1, using: &random) < options.healRate { network.cut = [] }
        if Double.random(in: 0..<1, using: &random) < options.membershipChangeRate { changeMembership() }
        if options.fullDiskRate > 0 && options.diskDirectory != nil {
            if Double.random(in: 0..<1, using: &random) < options.fullDiskRate,
                let id = memberIDs.filter({ nodes[$0]!.isUp && nodes[$0]!.disk?.isFull == false }).randomElement(using: &random)
            {
                let short = Bool.random(using: &random)
                nodes[id]!.disk!.shortWritesWhenFull = short
                nodes[id]!.disk!.isFull = true
                statistics.fullDisks += 1
                note("node \(id)'s disk is full\(short ? " (short writes)" : "")")
            }
            if Double.random(in: 0..<1, using: &random) < options.diskFreedRate,
                let id = memberIDs.filter({ nodes[$0]!.disk?.isFull == true }).randomElement(using: &random)
            {
                nodes[id]!.disk!.isFull = false
                note("node \(id)'s disk has room again")
            }
        }
    }

    /// Whether `id` may be stopped for good by a flipped bit: no node is stopped so yet or has a
    /// flip its start-up has not read, no membership change is pending, and without `id` the
    /// voters of the leader's configuration still make a quorum (the healing phase must find a
    /// leader). With no leader in sight, no.
    private func mayStopForGood(_ id: NodeID) -> Bool {
        // The leader of the highest term: an older one may not know it was deposed.
        guard stoppedByDamage.isEmpty, flippedNodes.isEmpty,
            let leader = memberIDs.compactMap({ nodes[$0]!.replica }).filter({ $0.role == .leader }).max(by: { $0.term < $1.term })
        else {
            return false
        }
        // A membership change in the leader's log may yet shrink the voters: none may be pending.
        let changePending = leader.commitIndex < leader.lastIndex
            && (leader.commitIndex + 1...leader.lastIndex).contains { leader.entry(at: $0)?.kind == .configurationChange }
        let voters = leader.configuration.voters
        return !changePending && (!voters.contains(id) || voters.count >= 3)
    }

    /// Nodes that may never come back: stopped by damage, or with a flipped bit their start-up
    /// has not read yet.
    private var mayNeverReturn: Set<NodeID> { stoppedByDamage.union(flippedNodes.keys) }

    /// Asks the leader (if any) for one membership change or a leadership transfer: a learner
    /// added, promoted, any member removed (the leader itself, learners, down to one voter), or a
    /// transfer.
    private mutating func changeMembership() {
        guard let leaderID = memberIDs.first(where: { nodes[$0]!.replica?.role == .leader }) else { return }
        let replica = nodes[leaderID]!.replica!
        let configuration = replica.configuration
        // The rules a leader must keep, checked from outside (§4.1 and the single-server change
        // bug): no change before an entry of its term is committed, one change at a time.
        let termCommitted = replica.term(at: replica.commitIndex) == replica.term
        let changePending = replica.commitIndex < replica.lastIndex
            && (replica.commitIndex + 1...replica.lastIndex).contains { replica.entry(at: $0)?.kind == .configurationChange }
        var proposed: ConfigurationChange?
        var transferTarget: NodeID?
        switch Int.random(in: 0..<4, using: &random) {
        case 0 where configuration.members.count < 7:
            proposed = .addLearner(nextNodeID)
        case 1:
            // A learner stopped for good is never made a voter.
            proposed = configuration.learners.subtracting(mayNeverReturn).sorted().first.map { .promoteLearner($0) }
        case 2 where configuration.members.count > 1:
            let removed = configuration.members.sorted().randomElement(using: &random)!
            // Voters that will never return must stay a minority, or no leader could be elected.
            let voters = configuration.voters.subtracting([removed])
            if voters.subtracting(mayNeverReturn).count >= voters.count / 2 + 1 { proposed = .remove(removed) }
        default:
            transferTarget = configuration.voters.subtracting([leaderID]).sorted().randomElement(using: &random)
        }
        var result: Result<UInt64, ProposalRefusal>?
        var transferred = false
        drive(leaderID) { driver in
            driver.withReplica { replica in
                if let proposed { result = replica.proposeConfigurationChange(proposed) }
                if let transferTarget, case .success = replica.transferLeadership(to: transferTarget) { transferred = true }
            }
        }
        if transferred { statistics.transfers += 1 }
        guard let proposed, case .success(let index) = result else { return }
        note("leader \(leaderID) of term \(replica.term) appends \(proposed) at \(index), commit \(replica.commitIndex)")
        statistics.membershipChanges += 1
        if !termCommitted || changePending {
            checker.record(
                "membership: leader \(leaderID) of term \(replica.term) appended \(proposed) at \(index) with \(changePending ? "another change pending" : "no entry of its term committed")")
        }
        if case .addLearner(let id) = proposed {
            nextNodeID += 1
            nodes[id] = makeNode(id, bootstrap: nodes[leaderID]!.durable.bootstrapConfiguration, seed: random.next())
        }
    }

    /// Why no leader can be elected, when nodes stopped by damage are a majority of the voters
    /// in the configuration of the up node with the most advanced log (the one an election
    /// would have to go through); nil otherwise.
    private func quorumLostToDamage() -> String? {
        let position = { (replica: RaftReplica) in (replica.term(at: replica.lastIndex) ?? 0, replica.lastIndex) }
        guard let newest = memberIDs.compactMap({ nodes[$0]!.replica }).max(by: { position($0) < position($1) }) else { return nil }
        let voters = newest.configuration.voters
        let stopped = voters.intersection(stoppedByDamage)
        guard !stopped.isEmpty && voters.count - stopped.count < voters.count / 2 + 1 else { return nil }
        return "node \(newest.id)'s voters \(voters.sorted()) include \(stopped.sorted()), stopped by damage: no quorum is left"
    }

    private mutating func startHealing() {
        healing = true
        network.cut = []
        for id in memberIDs { nodes[id]!.disk?.isFull = false }
        for id in memberIDs where !nodes[id]!.isUp && !stoppedByDamage.contains(id) { restart(id) }
    }

    // MARK: Clients

    private mutating func stepClient(_ index: Int) {
        var client = clients[index]
        if var pending = client.pending {
            guard now - pending.sentAt >= options.clientTimeoutSteps else { return }
            pending.attempts += 1
            if pending.attempts >= options.clientAttemptsMax {
                // Given up: the outcome stays unknown in the history.
                client.pending = nil
                clients[index] = client
                statistics.abandoned += 1
                return
            }
            pending.node = client.leaderHint.flatMap { nodes[$0] != nil ? $0 : nil } ?? memberIDs.randomElement(using: &random)!
            client.leaderHint = nil
            pending.sentAt = now
            client.pending = pending
            clients[index] = client
            submit(index)
            return
        }
        // A new call comes a tick after the last answer, so that it is ordered after it; the
        // second half of the healing phase is quiet, so that the cluster can converge.
        guard now > client.lastAnswerAt, now < options.steps + options.healingSteps / 2, Double.random(in: 0..<1, using: &random) < 0.05 else { return }
        let key = "k\(Int.random(in: 0..<options.keys, using: &random))"
        let request: Client.Request
        let historyIndex: Int
        if Bool.random(using: &random) {
            let write = ClientWrite(client: UInt64(client.id) + 1, sequence: client.nextSequence, key: key, value: "c\(client.id)-\(client.nextSequence)")
            client.nextSequence += 1
            historyIndex = history.call(client: client.id, input: .write(key: key, value: write.value), at: now)
            request = .write(write)
        } else {
            historyIndex = history.call(client: client.id, input: .read(key: key), at: now)
            request = .read(key: key, historyIndex: historyIndex)
        }
        let target = client.leaderHint.flatMap { nodes[$0] != nil ? $0 : nil } ?? memberIDs.randomElement(using: &random)!
        client.pending = Client.Pending(historyIndex: historyIndex, request: request, node: target, sentAt: now, attempts: 0)
        clients[index] = client
        submit(index)
    }

    /// Hands the client's pending request to its node's driver.
    private mutating func submit(_ index: Int) {
        guard let pending = clients[index].pending, let node = nodes[pending.node], node.isUp else { return }
        let clientID = clients[index].id
        switch pending.request {
        case .write(let write):
            drive(pending.node) { driver in driver.propose(write.encoded, for: .write(client: clientID, write: write)) }
        case .read(let key, let historyIndex):
            drive(pending.node) { driver in driver.read(for: .read(client: clientID, historyIndex: historyIndex, key: key)) }
        }
    }

    /// The driver handed a request back: its client tries again soon, at the leader named.
    private mutating func retrySoon(_ ticket: SimulatedNode.Ticket, at leader: NodeID?) {
        let request: Client.Request
        let clientID: Int
        switch ticket {
        case .write(let client, let write):
            (clientID, request) = (client, .write(write))
        case .read(let client, let historyIndex, let key):
            (clientID, request) = (client, .read(key: key, historyIndex: historyIndex))
        }
        guard let index = clients.firstIndex(where: { $0.id == clientID }), let pending = clients[index].pending else { return }
        switch (pending.request, request) {
        case (.write(let waiting), .write(let handedBack)) where waiting == handedBack: break
        case (.read(let waiting), .read(let handedBack)) where waiting == handedBack: break
        default: return  // An earlier request of this client: it gave that one up.
        }
        clients[index].leaderHint = leader
        clients[index].pending!.sentAt = min(clients[index].pending!.sentAt, now - options.clientTimeoutSteps + 3)
    }

    /// Whether `clientID` still waits for `write` (it has not given it up for a later one).
    private func isWaiting(_ clientID: Int, for write: ClientWrite) -> Bool {
        guard let pending = clients.first(where: { $0.id == clientID })?.pending, case .write(let waiting) = pending.request else { return false }
        return waiting == write
    }

    private mutating func answer(client clientID: Int, output: Model.Output, for request: Client.Request) {
        guard let index = clients.firstIndex(where: { $0.id == clientID }), let pending = clients[index].pending else { return }
        switch (pending.request, request) {
        case (.write(let waiting), .write(let done)) where waiting == done:
            acknowledgedWrites.append(done)
        case (.read(let waiting), .read(let done)) where waiting == done:
            break
        default:
            return  // An answer to an earlier request of this client: it gave that one up.
        }
        history.complete(pending.historyIndex, output: output, at: now)
        clients[index].pending = nil
        clients[index].lastAnswerAt = now
        statistics.answered += 1
        digest.add(UInt64(clientID), now, 0xA5)
    }

    // MARK: The end

    private mutating func checkEnd() {
        let members = memberIDs.filter { id in
            !stoppedByDamage.contains(id) && nodes.values.compactMap(\.replica).contains { $0.role == .leader && $0.configuration.members.contains(id) }
        }
        let leaders = memberIDs.filter { nodes[$0]!.replica?.role == .leader }
        guard leaders.count == 1, let leader = nodes[leaders[0]]!.replica else {
            if leaders.isEmpty, let lost = quorumLostToDamage() {
                // Not a liveness failure: no protocol elects a leader without a quorum. The
                // guards above make this rare (a membership change an earlier leader appended
                // can still commit after a flip). The checks along the run held; of the end's,
                // only the clients' history can still be judged (without a leader nobody can
                // say which acknowledged writes every node must hold).
                statistics.quorumLostToDamage = true
                note("no leader: \(lost)")
                checkHistory()
                return
            }
            let states = memberIDs.map { id in
                nodes[id]!.replica.map { "\($0.summary) voters \($0.configuration.voters.sorted()) learners \($0.configuration.learners.sorted())" } ?? "node \(id) down"
            }
            checker.record("liveness: \(leaders.count) leaders \(leaders) after \(options.healingSteps) healing steps — \(states.joined(separator: "; "))")
            return
        }
        statistics.finalTerm = leader.term
        statistics.finalCommit = leader.commitIndex
        // Every hive equal to the leader's, exported whole (keys, values, types).
        var exports: [NodeID: ExportedKey] = [:]
        do {
            for id in Set(members + [leaders[0]]) { exports[id] = try nodes[id]!.stateMachine.export() }
        } catch {
            checker.record("hive: an export failed: \(error)")
            return
        }
        let leaderExport = exports[leaders[0]]
        for id in members {
            let node = nodes[id]!
            guard exports[id] == leaderExport, node.replica?.appliedIndex == leader.commitIndex else {
                checker.record(
                    "convergence: node \(id) applied \(node.replica?.appliedIndex ?? 0) with \(exports[id]?.valueCount ?? 0) values; the leader committed \(leader.commitIndex) — \(node.replica?.summary ?? "down"); leader \(leader.summary), its view: \(leader.progressSummary(of: id) ?? "none")")
                return
            }
        }
        let finalWrites = Set(nodes[leaders[0]]!.stateMachine.appliedWrites)
        for write in acknowledgedWrites where !finalWrites.contains(write) {
            checker.record("durability: acknowledged write \(write.client)/\(write.sequence) (\(write.key) = \(write.value)) is not in the final state")
            return
        }
        checkHistory()
    }

    /// The clients' history must be linearizable.
    private mutating func checkHistory() {
        let result = LinearizabilityChecker(model: Model()).check(history)
        switch result {
        case .linearizable: break
        case .notLinearizable(let partition, let details): checker.record("linearizability (value \(partition)): \(details.report)")
        case .unknown(let reason): statistics.linearizabilityUndecided = reason
        }
    }
}

