import ClusDBModel
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
        if let failure = state.failure { return .refused(Self.notWritten(failure)) }
        if state.pending.count >= Limits.pendingProposalsMax {
            return .refused(ClusterError(.busy, "\(Limits.pendingProposalsMax) writes are already waiting; retry"))
        }
        state.pending.append(proposal)
        if !state.leading {
            state.leading = true
            state.commitThreadLeads = true
            return .queued(wakeCommitThread: true)
        }
        return .queued(wakeCommitThread: false)
    }

    /// Answers the proposals whose outcome is known as soon as they are committed, and clears
    /// their answers so the apply stage does not answer them again.
    func answerKnownOutcomes(_ group: inout [Proposal], firstIndex: UInt64) {
        for offset in group.indices where group[offset].command.outcomeKnownBeforeApply {
            guard let answer = group[offset].answer else { continue }
            answer(.success(CommitResult(index: firstIndex + UInt64(offset), outcome: .done)))
            group[offset].answer = nil
        }
    }

    /// Hands a committed group to the apply thread. A group with a proposer still waiting, or one
    /// that brings the queue to ``Limits/applyGatherEntriesTarget``, ends a gathering.
    func enqueueForApply(_ group: CommittedGroup) {
        let waiting = group.proposals.reduce(0) { $0 + ($1.answer == nil ? 0 : 1) }
        let wakeApply = shared.withLock { state -> Bool in
            state.committed.append(group)
            state.committedEntries += group.proposals.count
            state.committedAnswersPending += waiting
            // Someone waits for this group's apply, or enough has gathered: stop gathering.
            let hurry = waiting > 0 || state.committedEntries >= Limits.applyGatherEntriesTarget ? Self.hurryApply(&state) : false
            if state.applying { return hurry }
            state.applying = true
            return true
        }
        if wakeApply { applyWake.signal() }
    }

    /// Releases the log stage, or passes it to the commit thread when work is queued.
    func handOver() {
        let toThread = shared.withLock { state -> Bool in
            precondition(state.leading, "only the leader hands over")
            if state.pending.isEmpty && state.truncateThrough == nil {
                state.leading = false
                return false
            }
            state.commitThreadLeads = true
            return true
        }
        if toThread { commitWake.signal() }
    }

    /// The commit thread: while it holds the log stage it appends group after group and passes
    /// each to the apply thread; with nothing left it releases the stage and sleeps.
    func runCommitThread() {
        while true {
            commitWake.wait()
            let (leads, exit) = shared.withLock { state -> (Bool, Bool) in
                defer { state.commitThreadLeads = false }
                return (state.commitThreadLeads, state.threadsExit)
            }
            if leads { runLogStage() }
            if exit && !leads {
                threadFinished.signal()
                return
            }
        }
    }

    /// Appends group after group while any are queued, then releases the log stage.
    private func runLogStage() {
        while let (group, truncate) = nextGroup() {
            if let truncate { removeLog(through: truncate) }
            if group.isEmpty { continue }
            if let failure = shared.withLock({ $0.failure }) {
                // Fail-stop: nothing is appended behind an entry the hive could not apply.
                for proposal in group { proposal.answer?(.failure(Self.notWritten(failure))) }
                continue
            }
            switch appendGroup(group) {
            case .failure(let error):
                for proposal in group { proposal.answer?(.failure(error)) }
            case .success(let first):
                var answered = group
                answerKnownOutcomes(&answered, firstIndex: first)
                enqueueForApply(CommittedGroup(proposals: answered, firstIndex: first))
            }
        }
    }

    /// The next group for the commit thread, or nil (the log stage released) when none is left.
    /// First waits while ``Limits/committedEntriesMax`` entries wait for the apply stage.
    private func nextGroup() -> ([Proposal], UInt64?)? {
        while shared.withLock({ $0.committedEntries >= Limits.committedEntriesMax && $0.failure == nil }) {
            // Rare (SQLite slower than the log for a long stretch), so a short poll will do; the
            // apply stage does not gather at this depth.
            usleep(useconds_t(Self.applyRoomPollMicroseconds))
        }
        return shared.withLock { state in
            precondition(state.leading, "the commit thread appends only while it leads")
            let truncate = state.truncateThrough
            state.truncateThrough = nil
            let group = Self.takeGroup(from: &state.pending)
            if group.isEmpty && truncate == nil {
                state.leading = false
                return nil
            }
            return (group, truncate)
        }
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
                    proposal.answer?(result)
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
        var bytes = batch.proposals.reduce(0) { $0 + $1.payload.count }
        while let next = state.committed.first {
            let nextBytes = next.proposals.reduce(0) { $0 + $1.payload.count }
            if batch.proposals.count + next.proposals.count > Limits.applyBatchEntriesMax
                || bytes + nextBytes > Limits.applyBatchBytesMax
            {
                break
            }
            precondition(
                next.firstIndex == batch.firstIndex + UInt64(batch.proposals.count), "committed groups are contiguous")
            batch.proposals += next.proposals
            bytes += nextBytes
            state.committed.removeFirst()
        }
        state.committedEntries -= batch.proposals.count
        state.committedAnswersPending -= batch.proposals.reduce(0) { $0 + ($1.answer == nil ? 0 : 1) }
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

    /// Log stage: appends the group with one write and one fdatasync. With one member, durable
    /// is committed. Only the holder of the log stage calls this.
    /// - Returns: the index of the group's first entry.
    func appendGroup(_ group: [Proposal]) -> Result<UInt64, ClusterError> {
        precondition(!group.isEmpty, "groups are never empty")
        let first = loop.storage.lastIndex + 1
        let entries = group.enumerated().map { offset, proposal in
            LogEntry(index: first + UInt64(offset), term: loop.term, kind: .command, payload: proposal.payload)
        }
        do {
            try loop.storage.log.append(entries)
        } catch {
            logger.error("quorum log append failed", metadata: ["error": "\(error)"])
            return .failure(error)
        }
        let last = first + UInt64(group.count - 1)
        loop.storage.lastIndex = last
        loop.storage.lastTerm = loop.term
        let logBytes = loop.storage.log.totalBytes
        let logFirst = loop.storage.log.firstIndex
        shared.withLock {
            $0.status.commitIndex = last
            $0.status.logBytes = logBytes
            $0.status.logFirstIndex = logFirst
            $0.status.groupsAppended += 1
        }
        maybeStartCheckpoint(logBytes: logBytes)
        return .success(first)
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
    /// nothing more is appended behind them (``notWritten(_:)``), and a restart replays them.
    func applyGroup(_ group: CommittedGroup) -> [Result<CommitResult, ClusterError>] {
        let first = group.firstIndex
        let last = first + UInt64(group.proposals.count - 1)
        if let failure = shared.withLock({ $0.failure }) {
            return group.proposals.indices.map { .failure(Self.committedNotApplied(index: first + UInt64($0), failure)) }
        }
        let committed = group.proposals.enumerated().map { offset, proposal in
            Hive.Committed(index: first + UInt64(offset), term: loop.term, command: proposal.command)
        }
        let outcomes: [CommandOutcome]
        do throws(ClusterError) {
            if let fault = configuration.applyFault?(first, last) { throw fault }
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
            return group.proposals.indices.map { .failure(Self.committedNotApplied(index: first + UInt64($0), failure)) }
        }
        precondition(outcomes.count == group.proposals.count, "one outcome per committed command")
        let ready = shared.withLock { state in
            state.status.appliedIndex = last
            state.status.applyTransactions += 1
            let ready = state.applyWaiters.filter { $0.index <= last }
            state.applyWaiters.removeAll { $0.index <= last }
            return ready
        }
        for waiter in ready { waiter.continuation.resume(returning: nil) }
        return outcomes.enumerated().map { offset, outcome in
            .success(CommitResult(index: first + UInt64(offset), outcome: outcome))
        }
    }
}
