import ClusDBModel
import ClusDBRaft
import ClusDBStore
import Foundation

/// The two stages of the write path and who runs them (see ``ClusterNode``).
extension ClusterNode {
    enum Admission {
        /// Queued; `wakeCommitThread` when the log stage just passed to the commit thread.
        case queued(wakeCommitThread: Bool)
        /// Not accepted.
        case refused(ClusterError)
    }

    /// Decides under the lock: queue for the commit thread, or refuse.
    ///
    /// A proposer never runs the log stage itself: the threads that propose are a network event
    /// loop or a thread of Swift's cooperative pool (as many as cores), each shared with many
    /// connections, and an fdatasync on one of them would stall every request it serves for as
    /// long as the disk takes. The disk is the commit thread's alone (see "A slow disk stalls
    /// writes, never everything" in docs/ARCHITECTURE.md).
    func admit(_ state: inout Shared, _ proposal: Proposal) -> Admission {
        if state.stopping { return .refused(ClusterError(.clusterShuttingDown, "the node is stopping")) }
        if let failure = state.failure ?? state.persistFailure { return .refused(Self.notWritten(failure)) }
        if state.pending.count >= Limits.pendingProposalsMax {
            return .refused(ClusterError(.busy, "\(Limits.pendingProposalsMax) writes are already waiting; retry"))
        }
        state.pending.append(proposal)
        return .queued(wakeCommitThread: Self.takeLogStage(&state))
    }

    /// Hands the log stage to the commit thread unless someone holds it; true when the caller
    /// must wake the commit thread.
    static func takeLogStage(_ state: inout Shared) -> Bool {
        guard !state.logStageHeld else { return false }
        state.logStageHeld = true
        state.commitThreadHoldsLogStage = true
        return true
    }

    /// What a thread must do, outside the lock, after the driver's actions were taken in.
    struct Followups {
        /// Proposers to answer.
        var answers: [(answer: ProposalAnswer, result: Result<CommitResult, ClusterError>)] = []
        /// The apply stage has work or must stop gathering.
        var wakeApply = false
        /// The log stage passed to the commit thread.
        var wakeCommitThread = false

        func run(on node: ClusterNode) {
            for (answer, result) in answers { answer(result) }
            if wakeApply { node.applyWake.signal() }
            if wakeCommitThread { node.commitWake.signal() }
        }
    }

    /// Takes the driver's actions into the shared state, under the lock: a persistence for the
    /// log stage, committed entries for the apply stage (writes whose outcome is known are
    /// answered now), refusals for their proposers. Threads carry the rest out.
    static func absorb(_ actions: [ReplicaDriver<Proposal>.Action], into state: inout Shared) -> Followups {
        var followups = Followups()
        for action in actions {
            switch action {
            case .send(let messages):
                // The only voter has nobody to write to (issue 11 gives messages a transport).
                precondition(messages.isEmpty, "a cluster of one member sends no messages")
            case .persist(let ready):
                precondition(state.readyToPersist == nil, "the driver keeps one Ready in flight")
                state.readyToPersist = ready
                if takeLogStage(&state) { followups.wakeCommitThread = true }
            case .apply(let batch):
                guard let last = batch.last?.entry.index else { continue }
                var proposals = batch.map(\.waiter)
                for offset in proposals.indices {
                    guard let proposal = proposals[offset], proposal.command.outcomeKnownBeforeApply, let answer = proposal.answer else { continue }
                    followups.answers.append((answer, .success(CommitResult(index: batch[offset].entry.index, outcome: .done))))
                    proposals[offset]?.answer = nil
                }
                let waiting = proposals.reduce(0) { $0 + ($1?.answer == nil ? 0 : 1) }
                state.status.commitIndex = max(state.status.commitIndex, last)
                state.committed.append(CommittedGroup(entries: batch.map(\.entry), proposals: proposals))
                state.committedEntries += batch.count
                state.committedAnswersPending += waiting
                // Someone waits for this group's apply, or enough has gathered: stop gathering.
                if waiting > 0 || state.committedEntries >= Limits.applyGatherEntriesTarget {
                    if hurryApply(&state) { followups.wakeApply = true }
                }
                if !state.applying {
                    state.applying = true
                    followups.wakeApply = true
                }
            case .serveRead:
                preconditionFailure("reads do not go through the driver while the node is its cluster's only voter")
            case .retry(let proposal, _):
                // The only voter refuses a write only at its limits (uncommitted bytes, waiting
                // requests): nothing was written.
                if let answer = proposal.answer {
                    followups.answers.append((answer, .failure(ClusterError(.busy, "the replica holds too many uncommitted writes; retry"))))
                }
            }
        }
        return followups
    }

    /// Releases the log stage, or passes it to the commit thread when work is queued.
    func handOver() {
        let toThread = shared.withLock { state -> Bool in
            precondition(state.logStageHeld, "only the holder of the log stage hands it over")
            if state.pending.isEmpty && state.truncateThrough == nil && state.readyToPersist == nil {
                state.logStageHeld = false
                return false
            }
            state.commitThreadHoldsLogStage = true
            return true
        }
        if toThread { commitWake.signal() }
    }

    /// The commit thread: while it holds the log stage it proposes group after group and makes
    /// each durable; with nothing left it releases the stage and sleeps.
    func runCommitThread() {
        while true {
            commitWake.wait()
            let (holds, exit) = shared.withLock { state -> (Bool, Bool) in
                defer { state.commitThreadHoldsLogStage = false }
                return (state.commitThreadHoldsLogStage, state.threadsExit)
            }
            if holds { runLogStage() }
            if exit && !holds {
                threadFinished.signal()
                return
            }
        }
    }

    /// What the log stage does next.
    private enum LogWork {
        /// Make the driver's Ready durable.
        case persist(Ready)
        /// Drop log segments a checkpoint covers.
        case truncate(UInt64)
        /// A group was proposed (or refused); look again.
        case proposed
        /// Too many committed entries wait for the apply stage: wait a little.
        case waitForApplyRoom
    }

    /// Works while anything is queued for the log stage, then releases it.
    private func runLogStage() {
        while let work = nextLogWork() {
            switch work {
            case .persist(let ready): persist(ready)
            case .truncate(let index): removeLog(through: index)
            case .proposed: break
            case .waitForApplyRoom:
                // Rare (SQLite slower than the log for a long stretch), so a short poll will do;
                // the apply stage does not gather at this depth.
                usleep(useconds_t(Self.applyRoomPollMicroseconds))
            }
        }
    }

    /// The next work of the log stage, or nil (the stage released) when none is left. A Ready
    /// to persist goes first; then a truncation; then the next group is proposed, once fewer than
    /// ``Limits/committedEntriesMax`` entries wait for the apply stage.
    private func nextLogWork() -> LogWork? {
        let (work, followups) = shared.withLock { state -> (LogWork?, Followups) in
            precondition(state.logStageHeld, "the commit thread works only while it holds the log stage")
            if let ready = state.readyToPersist {
                state.readyToPersist = nil
                return (.persist(ready), Followups())
            }
            if let truncate = state.truncateThrough {
                state.truncateThrough = nil
                return (.truncate(truncate), Followups())
            }
            if state.committedEntries >= Limits.committedEntriesMax && state.failure == nil && !state.pending.isEmpty {
                return (.waitForApplyRoom, Followups())
            }
            let group = Self.takeGroup(from: &state.pending)
            if group.isEmpty {
                state.logStageHeld = false
                return (nil, Followups())
            }
            if let failure = state.failure ?? state.persistFailure {
                // Fail-stop: nothing is proposed behind an entry the hive could not apply.
                let answers = group.compactMap { proposal in
                    proposal.answer.map { (answer: $0, result: Result<CommitResult, ClusterError>.failure(Self.notWritten(failure))) }
                }
                return (.proposed, Followups(answers: answers))
            }
            let actions = state.driver.propose(group.map { (payload: $0.payload, waiter: $0) })
            return (.proposed, Self.absorb(actions, into: &state))
        }
        followups.run(on: self)
        return work
    }
    /// Microseconds between looks while the log stage waits for the apply stage to make room.
    static let applyRoomPollMicroseconds = 200

    /// The apply thread: applies committed groups in order, several per transaction, and answers
    /// their proposers. While every waiting group is already answered and nobody waits for the
    /// hive, it lets them gather a little first (``Limits/applyGatherMicroseconds``).
    func runApplyThread() {
        while true {
            applyWake.wait()
            let exit = shared.withLock { $0.threadsExit }
            while true {
                let gather = shared.withLock { state -> Bool in
                    let gather = !state.committed.isEmpty && Self.applyMayGather(state)
                    state.applyGathering = gather
                    return gather
                }
                if gather {
                    // Woken early by hurryApply; a signal left over from it only ends a later
                    // gathering early.
                    _ = applyWake.wait(timeout: .now() + .microseconds(Limits.applyGatherMicroseconds))
                    shared.withLock { $0.applyGathering = false }
                }
                guard let group = shared.withLock({ state -> CommittedGroup? in
                    if state.committed.isEmpty {
                        state.applying = false
                        return nil
                    }
                    return Self.takeApplyBatch(from: &state)
                }) else { break }
                let results = applyGroup(group)
                // Proposals without an answer were answered at commit.
                for (proposal, result) in zip(group.proposals, results) {
                    proposal?.answer?(result)
                }
            }
            if exit {
                threadFinished.signal()
                return
            }
        }
    }

    /// Takes committed groups for one transaction, merged into one group (they are contiguous):
    /// the first always, then more within ``Limits/applyBatchEntriesMax`` and
    /// ``Limits/applyBatchBytesMax``.
    static func takeApplyBatch(from state: inout Shared) -> CommittedGroup {
        var batch = state.committed.removeFirst()
        var bytes = batch.entries.reduce(0) { $0 + $1.payload.count }
        while let next = state.committed.first {
            let nextBytes = next.entries.reduce(0) { $0 + $1.payload.count }
            if batch.entries.count + next.entries.count > Limits.applyBatchEntriesMax || bytes + nextBytes > Limits.applyBatchBytesMax {
                break
            }
            precondition(next.firstIndex == batch.firstIndex + UInt64(batch.entries.count), "committed groups are contiguous")
            batch.entries += next.entries
            batch.proposals += next.proposals
            bytes += nextBytes
            state.committed.removeFirst()
        }
        state.committedEntries -= batch.entries.count
        state.committedAnswersPending -= batch.proposals.reduce(0) { $0 + ($1?.answer == nil ? 0 : 1) }
        precondition(state.committedEntries >= 0 && state.committedAnswersPending >= 0, "committed counts stay in step")
        return batch
    }

    /// Takes the next group off the queue. A group always takes its first entry, however large;
    /// after that it stops at ``Limits/groupCommitEntriesMax`` or ``Limits/groupCommitBytesMax``.
    static func takeGroup(from pending: inout [Proposal]) -> [Proposal] {
        var taken = 0
        var bytes = 0
        while taken < pending.count && taken < Limits.groupCommitEntriesMax {
            let size = pending[taken].payload.count
            if taken > 0 && bytes + size > Limits.groupCommitBytesMax { break }
            bytes += size
            taken += 1
        }
        let group = Array(pending.prefix(taken))
        pending.removeFirst(taken)
        return group
    }

    // MARK: The stages

    /// Log stage: makes a Ready durable (``persistDurably(_:)``), tells the driver, and takes in
    /// what follows (with one voter: the entries are committed). Only the holder of the log
    /// stage calls this.
    ///
    /// A failure to write is fail-stop for writes: the replica holds the entries in memory as
    /// handed out, and only a restart makes its view the disk's again. Every write waiting in
    /// the driver is answered "not written" with the error's code: it is not durable (a failed
    /// append cuts its partial write off, and a failed fdatasync stops the process), so a retry
    /// after the restart is safe.
    private func persist(_ ready: Ready) {
        do throws(ClusterError) {
            try persistDurably(ready)
        } catch {
            let failure = ClusterError(error.code, "the quorum log could not be written (\(error.message)); restart the node")
            logger.critical("making the log durable failed; refusing writes until restarted", metadata: ["error": "\(failure)"])
            let followups = shared.withLock { state -> Followups in
                state.persistFailure = failure
                var followups = Followups()
                for case .retry(let proposal, _) in state.driver.handBackAllRequests() {
                    if let answer = proposal.answer { followups.answers.append((answer, .failure(Self.notWritten(failure)))) }
                }
                return followups
            }
            followups.run(on: self)
            return
        }
        let logBytes = loop.storage.log.totalBytes
        let logFirst = loop.storage.log.firstIndex
        let followups = shared.withLock { state -> Followups in
            state.status.logBytes = logBytes
            state.status.logFirstIndex = logFirst
            if !ready.entries.isEmpty { state.status.groupsAppended += 1 }
            let followups = Self.absorb(state.driver.persisted(), into: &state)
            state.status.term = state.driver.replica.term
            return followups
        }
        followups.run(on: self)
        if !ready.entries.isEmpty { maybeStartCheckpoint(logBytes: logBytes) }
    }

    /// Makes a Ready's state durable, in the order of its contract: the hard state when its term
    /// or vote changed (`raft.state`), then the entries with one write and one fdatasync
    /// (replacing a conflicting suffix first, which one voter never has).
    func persistDurably(_ ready: Ready) throws(ClusterError) {
        // A one-voter cluster receives no snapshot, and start-up reloads a hive behind the
        // newest checkpoint from it, so the replica never hands one out here (issue 11 installs
        // received ones).
        precondition(ready.snapshot == nil, "a single node installs no snapshot")
        if let hardState = ready.hardState { try loop.storage.save(hardState) }
        guard let last = ready.entries.last else { return }
        do {
            try loop.storage.log.save(ready.entries)
        } catch {
            logger.error("quorum log append failed", metadata: ["error": "\(error)"])
            throw error
        }
        loop.storage.lastIndex = last.index
    }

    /// Elects this node at start-up — its cluster's only voter — and applies what the log held
    /// beyond the durable commit index, before the threads start: a node is ready with every
    /// acknowledged write applied. Each start is a new term whose no-op commits the log before
    /// it (Raft's Figure 8 rule, even alone).
    func elect() throws(ClusterError) {
        var actions = shared.withLock { $0.driver.withReplica { $0.campaignNow() } }
        while !actions.isEmpty {
            var next: [ReplicaDriver<Proposal>.Action] = []
            for action in actions {
                switch action {
                case .persist(let ready):
                    try persistDurably(ready)
                    next += shared.withLock { $0.driver.persisted() }
                case .apply(let batch):
                    guard let last = batch.last?.entry.index else { continue }
                    var chunk: [Hive.Committed] = []
                    for (entry, _) in batch {
                        chunk.append(try Hive.Committed(entry: LogEntry(entry)))
                        if chunk.count >= NodeStorage.replayChunkEntries {
                            _ = try hive.apply(chunk)
                            chunk.removeAll(keepingCapacity: true)
                        }
                    }
                    if !chunk.isEmpty { _ = try hive.apply(chunk) }
                    next += shared.withLock { state in
                        state.status.appliedIndex = last
                        state.status.commitIndex = max(state.status.commitIndex, last)
                        return state.driver.applied(through: last)
                    }
                case .send(let messages):
                    precondition(messages.isEmpty, "a cluster of one member sends no messages")
                case .serveRead, .retry:
                    preconditionFailure("no request reaches the driver before the node is ready")
                }
            }
            actions = next
        }
        let (role, term) = shared.withLock { state in
            state.status.term = state.driver.replica.term
            return (state.driver.replica.role, state.driver.replica.term)
        }
        guard role == .leader else {
            throw ClusterError(.clusterLogCorrupt, "the node's membership does not make it its cluster's only voter (role \(role) in term \(term))")
        }
    }

    /// The answer to a write refused because the node stopped after an apply failure: it was
    /// not written, and a retry after the restart is safe.
    static func notWritten(_ failure: ClusterError) -> ClusterError {
        ClusterError(failure.code, "not written: the node refuses writes until it is restarted (\(failure.message))")
    }

    /// The answer to a committed write that was not applied because of an apply failure: it is
    /// durable and a restart applies it, so it is not "failed" (`ERROR_IO_PENDING`).
    static func committedNotApplied(index: UInt64, _ failure: ClusterError) -> ClusterError {
        ClusterError(
            .ioPending,
            "the write is committed at index \(index) but not applied; restarting the node applies it (\(failure.message))")
    }

    /// Apply stage: applies a committed group in one transaction. Groups arrive in index order.
    ///
    /// Fail-stop: a failure to apply stops all further writes. The entries are committed
    /// (durable), so their proposers learn that and not "failed" (``committedNotApplied(index:_:)``),
    /// nothing more is proposed behind them (``notWritten(_:)``), and a restart replays them.
    func applyGroup(_ group: CommittedGroup) -> [Result<CommitResult, ClusterError>] {
        let first = group.firstIndex
        let last = first + UInt64(group.entries.count - 1)
        if let failure = shared.withLock({ $0.failure }) {
            return group.entries.map { .failure(Self.committedNotApplied(index: $0.index, failure)) }
        }
        let outcomes: [CommandOutcome]
        do throws(ClusterError) {
            if let fault = configuration.applyFault?(first, last) { throw fault }
            var committed: [Hive.Committed] = []
            committed.reserveCapacity(group.entries.count)
            for (entry, proposal) in zip(group.entries, group.proposals) {
                if let proposal {
                    // The proposer's command, not a decoding of its bytes.
                    committed.append(Hive.Committed(index: entry.index, term: entry.term, command: proposal.command))
                } else {
                    committed.append(try Hive.Committed(entry: LogEntry(entry)))
                }
            }
            outcomes = try hive.apply(committed)
        } catch {
            let failure = ClusterError(
                error.code, "entries \(first)...\(last) are committed but the hive could not apply them (\(error.message)); restart the node")
            logger.critical("hive apply failed; refusing further writes until restarted", metadata: ["error": "\(failure)"])
            let waiters = shared.withLock { state in
                state.failure = failure
                defer { state.applyWaiters.removeAll() }
                return state.applyWaiters
            }
            for waiter in waiters { waiter.continuation.resume(returning: failure) }
            return group.entries.map { .failure(Self.committedNotApplied(index: $0.index, failure)) }
        }
        precondition(outcomes.count == group.entries.count, "one outcome per committed entry")
        let (ready, followups) = shared.withLock { state in
            state.status.appliedIndex = last
            state.status.applyTransactions += 1
            let ready = state.applyWaiters.filter { $0.index <= last }
            state.applyWaiters.removeAll { $0.index <= last }
            let followups = Self.absorb(state.driver.applied(through: last), into: &state)
            // The only member needs no entry it applied: nobody will ask it for them (a follower
            // behind would, from issue 11 on). Keeping them until the next checkpoint would grow
            // the process with the log, and checkpoints wait while a backup runs.
            let configuration = state.driver.replica.configuration
            if configuration.voters == [state.driver.replica.id] && configuration.learners.isEmpty {
                state.driver.compact(through: last)
            }
            return (ready, followups)
        }
        for waiter in ready { waiter.continuation.resume(returning: nil) }
        followups.run(on: self)
        return outcomes.enumerated().map { offset, outcome in
            .success(CommitResult(index: first + UInt64(offset), outcome: outcome))
        }
    }
}
