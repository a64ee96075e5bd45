/// Local requests: linearizable reads, membership changes, leadership transfer.
extension RaftReplica {
    // MARK: ReadIndex (§6.4)

    /// Asks for a linearizable read with a `context` the driver chooses. The answer is a
    /// ``ReadState`` in a later ``Ready``; a read that can no longer be served (the leader
    /// refused it, leadership or the leader changed) comes back in ``Ready/droppedReads``, and
    /// one whose answer is lost gets nothing: the driver's timeout retries it.
    ///
    /// Contexts must be unique among this replica's reads *across restarts* too: an answer the
    /// leader sent to a context before this node restarted may still arrive, and it carries an
    /// older read index (a driver starts its contexts from a random per-start nonce).
    /// - Returns: a refusal when no leader is known or too many reads wait.
    public mutating func requestRead(context: UInt64) -> Result<Void, ProposalRefusal> {
        defer { checkInvariants() }
        switch role {
        case .leader:
            guard pendingReadCount < options.maxPendingReads else { return .failure(.pendingReadLimit) }
            requestRead(context: context, from: id)
            return .success(())
        case .follower where leader != nil:
            // A follower asks the leader for the index; it then waits to apply it itself.
            guard forwardedReads.count < options.maxPendingReads else { return .failure(.pendingReadLimit) }
            forwardedReads.insert(context)
            emit(.readIndex(context: context), to: leader!)
            return .success(())
        default:
            return .failure(.notLeader(leader: leader))
        }
    }

    /// Reads a leader holds until it can answer them.
    var pendingReadCount: Int { pendingReads.count + readsAwaitingTermCommit.count }

    /// A follower's read came back from its leader (index 0: the leader could not serve it).
    mutating func receiveReadIndex(context: UInt64, index: UInt64, from node: NodeID) {
        guard node == leader, forwardedReads.remove(context) != nil else { return }
        if index > 0 {
            outReadStates.append(ReadState(context: context, index: index))
        } else {
            outDroppedReads.append(context)
        }
    }

    /// The leader's half: record the commit index and confirm leadership with a heartbeat round
    /// answered by a quorum before the read may be served.
    mutating func requestRead(context: UInt64, from requester: NodeID) {
        precondition(role == .leader, "only the leader assigns read indexes")
        if options.brokenProtocol.contains(.readWithoutReadIndex) {
            answerRead(ReadState(context: context, index: log.committed), requester: requester)
            return
        }
        guard log.term(at: log.committed) == term else {
            // Until an entry of this term commits, the commit index may be behind what an earlier
            // leader acknowledged.
            readsAwaitingTermCommit.append((context, requester))
            return
        }
        if configuration.voters == [id] {
            answerRead(ReadState(context: context, index: log.committed), requester: requester)
            return
        }
        readRound += 1
        pendingReads.append(PendingRead(context: context, index: log.committed, requester: requester, round: readRound))
        broadcastHeartbeat(context: readRound)
    }

    /// A member answered the heartbeat of read round `round` (and so every earlier one).
    mutating func acknowledgeReadRound(_ round: UInt64, from node: NodeID) {
        guard configuration.voters.contains(node), round > (ackedRound[node] ?? 0) else { return }
        ackedRound[node] = round
        // The newest round a quorum confirmed: the leader's own answer counts without asking.
        let rounds = configuration.voters.map { $0 == id ? readRound : (ackedRound[$0] ?? 0) }.sorted(by: >)
        let confirmed = rounds[configuration.quorum - 1]
        answerConfirmedReads(through: confirmed)
    }

    /// Answers the pending reads of rounds up to `confirmed` (leadership confirmed by a quorum).
    mutating func answerConfirmedReads(through confirmed: UInt64) {
        var answered = 0
        while answered < pendingReads.count, pendingReads[answered].round <= confirmed { answered += 1 }
        let reads = pendingReads.prefix(answered)
        pendingReads.removeFirst(answered)
        for read in reads { answerRead(ReadState(context: read.context, index: read.index), requester: read.requester) }
    }

    private mutating func answerRead(_ read: ReadState, requester: NodeID) {
        if requester == id {
            outReadStates.append(read)
        } else {
            emit(.readIndexResponse(context: read.context, index: read.index), to: requester)
        }
    }

    // MARK: Membership (single-server changes, §4.1)

    /// Proposes one membership change. Refused while another is in progress or before this
    /// leader has committed an entry of its own term; a promotion only once the learner has
    /// caught up (it holds everything committed).
    /// - Returns: the index of the configuration entry.
    public mutating func proposeConfigurationChange(_ change: ConfigurationChange) -> Result<UInt64, ProposalRefusal> {
        defer { checkInvariants() }
        guard role == .leader else { return .failure(.notLeader(leader: leader)) }
        guard pendingConfigurationIndex <= log.committed else { return .failure(.configurationChangeInProgress) }
        guard configuration.applying(change) != nil else { return .failure(.invalidConfigurationChange) }
        if case .promoteLearner(let node) = change, (progress[node]?.match ?? 0) < log.committed {
            return .failure(.learnerNotCaughtUp)
        }
        let result = appendProposal(kind: .configurationChange, payload: change.encoded)
        if case .success(let index) = result { pendingConfigurationIndex = index }
        return result
    }

    // MARK: Leadership transfer (§3.10)

    /// Hands leadership to `target`: once its log matches, it is told to start an election at
    /// once (TimeoutNow). Proposals are refused meanwhile; the transfer is abandoned after an
    /// election timeout.
    public mutating func transferLeadership(to target: NodeID) -> Result<Void, ProposalRefusal> {
        defer { checkInvariants() }
        guard role == .leader else { return .failure(.notLeader(leader: leader)) }
        guard target != id, configuration.voters.contains(target), let follower = progress[target] else {
            return .failure(.invalidTransferTarget)
        }
        // Asked again for the same target: the transfer under way goes on, its timer untouched
        // (restarting it on every request would postpone check-quorum without end).
        if transferee == target { return .success(()) }
        transferee = target
        transferElapsed = 0
        // The election timer restarts so that check-quorum does not end the transfer early.
        electionElapsed = 0
        if follower.match == log.lastIndex {
            emit(.timeoutNow, to: target)
        } else {
            sendAppend(to: target, evenIfEmpty: true)
        }
        return .success(())
    }
}
