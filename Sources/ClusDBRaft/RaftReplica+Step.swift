/// Messages: the term rules every message passes first, then elections.
extension RaftReplica {
    /// Takes one message from another replica.
    public mutating func step(_ message: RaftMessage) {
        defer { checkInvariants() }
        guard message.to == id, message.from != id else { return }
        if case .commitHint(let index, let hintTerm) = message.body {
            // A fact about the log, true in every term: no term rule applies (the sender may be
            // a term behind a pre-candidate, and a hint must not raise anyone's term). A leader
            // learns its commit index by counting; everyone else may take the hint.
            if role != .leader, index > log.committed, log.matches(index: index, term: hintTerm) { advanceCommit(to: index) }
            return
        }
        if message.term > term {
            if message.isVoteRequest {
                var forced = false
                if case .vote(_, _, let transfer) = message.body { forced = transfer }
                // Check-quorum's other half: while this replica hears from a leader, a node that
                // wants an election is ignored, so a returning partitioned node cannot depose a
                // healthy leader (§4.2.3, §9.6).
                let inLease = options.checkQuorum && leader != nil && electionElapsed < options.electionTicks
                if inLease && !forced { return }
            }
            switch message.body {
            case .preVote:
                break  // A pre-vote never changes the receiver's term.
            case .preVoteResponse(granted: true):
                break  // Granted for the term the pre-candidate would campaign in.
            default:
                becomeFollower(term: message.term, leader: message.isFromLeader ? message.from : nil)
            }
        } else if message.term < term {
            switch message.body {
            case .append, .heartbeat:
                // A stale leader (cut off while this side moved on) learns the newer term and
                // steps down; without this, with pre-vote and check-quorum it could stay stuck.
                if options.checkQuorum || options.preVote {
                    emit(.appendResponse(index: 0, rejected: true, hintIndex: 0, hintTerm: 0), to: message.from)
                }
            case .preVote:
                emit(.preVoteResponse(granted: false), to: message.from)
            default:
                break
            }
            return
        }

        switch message.body {
        case .preVote(let lastIndex, let lastTerm):
            handleVoteRequest(message, lastIndex: lastIndex, lastTerm: lastTerm, preVote: true)
        case .vote(let lastIndex, let lastTerm, _):
            handleVoteRequest(message, lastIndex: lastIndex, lastTerm: lastTerm, preVote: false)
        case .preVoteResponse(let granted):
            // Granted answers carry the term asked about, refusals the refuser's own.
            if role == .preCandidate && message.term == (granted ? term + 1 : term) {
                tally(message.from, granted: granted)
            }
        case .voteResponse(let granted):
            if role == .candidate { tally(message.from, granted: granted) }
        case .append(let previousIndex, let previousTerm, let entries, let commit):
            followLeader(message.from)
            handleAppend(from: message.from, previousIndex: previousIndex, previousTerm: previousTerm, entries: entries, commit: commit)
        case .heartbeat(let commit, let context):
            followLeader(message.from)
            handleHeartbeat(from: message.from, commit: commit, context: context)
        case .installSnapshot(let snapshot):
            followLeader(message.from)
            handleSnapshot(from: message.from, snapshot)
        case .appendResponse(let index, let rejected, let hintIndex, let hintTerm):
            if role == .leader {
                handleAppendResponse(from: message.from, index: index, rejected: rejected, hintIndex: hintIndex, hintTerm: hintTerm)
            }
        case .heartbeatResponse(let context):
            if role == .leader { handleHeartbeatResponse(from: message.from, context: context) }
        case .timeoutNow:
            // Only a voter of the configuration in force may start an election.
            if isPromotable { campaign(transfer: true) }
        case .readIndex(let context):
            if role == .leader && pendingReadCount < options.maxPendingReads {
                requestRead(context: context, from: message.from)
            } else {
                emit(.readIndexResponse(context: context, index: 0), to: message.from)
            }
        case .commitHint:
            break  // Taken above, before the term rules.
        case .readIndexResponse(let context, let index):
            receiveReadIndex(context: context, index: index, from: message.from)
        }
    }

    // MARK: Roles

    /// A message only a leader of this term sends arrived: follow it.
    private mutating func followLeader(_ node: NodeID) {
        if role != .follower || leader != node {
            becomeFollower(term: term, leader: node)
        }
        electionElapsed = 0
    }

    mutating func becomeFollower(term newTerm: UInt64, leader newLeader: NodeID?) {
        precondition(newTerm >= term, "terms never go back")
        if newTerm > term {
            term = newTerm
            vote = nil
        }
        role = .follower
        leader = newLeader
        resetTermState()
    }

    private mutating func resetTermState() {
        electionElapsed = 0
        heartbeatElapsed = 0
        resetElectionTimeout()
        votes = [:]
        progress = [:]
        transferee = nil
        transferElapsed = 0
        uncommittedBytes = 0
        broadcastPending = false
        // Reads of this replica's own clients that can no longer be answered go back to the
        // driver at once (their clients retry), rather than at their timeout.
        outDroppedReads += pendingReads.filter { $0.requester == id }.map(\.context)
        outDroppedReads += readsAwaitingTermCommit.filter { $0.requester == id }.map(\.context)
        outDroppedReads += forwardedReads.sorted()
        pendingReads = []
        readsAwaitingTermCommit = []
        forwardedReads = []
        ackedRound = [:]
    }

    /// Campaigns now instead of at the election timeout (etcd's `Campaign`): a node that starts
    /// as the only voter of its cluster need not wait ticks to lead it. A pre-vote comes first,
    /// as at a timeout; a replica that is not a voter does nothing.
    public mutating func campaignNow() {
        defer { checkInvariants() }
        guard isPromotable, role != .leader else { return }
        campaign(transfer: false)
    }

    /// Starts a pre-vote (unless `transfer` or pre-vote is off), or an election.
    mutating func campaign(transfer: Bool) {
        if options.preVote && !transfer && !options.brokenProtocol.contains(.skipPreVote) {
            role = .preCandidate
            leader = nil
            // The term and vote stay: a pre-vote that fails leaves no trace (§9.6).
            votes = [id: true]
            electionElapsed = 0
            resetElectionTimeout()
            if hasQuorum() {
                startElection(transfer: false)
                return
            }
            for node in configuration.voters.sorted() where node != id {
                emit(.preVote(lastIndex: log.lastIndex, lastTerm: log.lastTerm), to: node, term: term + 1)
            }
            return
        }
        startElection(transfer: transfer)
    }

    /// Raises the term, votes for itself and asks the other voters.
    private mutating func startElection(transfer: Bool) {
        becomeFollower(term: term + 1, leader: nil)
        role = .candidate
        vote = id
        votes = [id: true]
        if hasQuorum() {
            becomeLeader()
            return
        }
        for node in configuration.voters.sorted() where node != id {
            emit(.vote(lastIndex: log.lastIndex, lastTerm: log.lastTerm, transfer: transfer), to: node)
        }
    }

    private func hasQuorum() -> Bool {
        configuration.voters.filter { votes[$0] == true }.count >= configuration.quorum
    }

    private mutating func tally(_ node: NodeID, granted: Bool) {
        guard configuration.voters.contains(node), votes[node] == nil else { return }
        votes[node] = granted
        if hasQuorum() {
            if role == .preCandidate {
                startElection(transfer: false)
            } else {
                becomeLeader()
            }
            return
        }
        let refused = configuration.voters.filter { votes[$0] == false }.count
        if refused >= configuration.quorum { becomeFollower(term: term, leader: nil) }
    }

    mutating func becomeLeader() {
        precondition(role == .candidate && vote == id, "only a candidate that voted for itself leads")
        role = .leader
        leader = id
        resetTermState()
        for node in configuration.members where node != id {
            progress[node] = FollowerProgress(next: log.lastIndex + 1)
        }
        // The no-op of the term: entries of earlier terms commit with it (Figure 8), and no
        // membership change may start before it is committed (pendingConfigurationIndex).
        let noOp = RaftEntry(index: log.lastIndex + 1, term: term, kind: .noOp)
        log.appendOwn(noOp)
        pendingConfigurationIndex = noOp.index
        broadcastPending = true
    }

    // MARK: Votes

    private mutating func handleVoteRequest(_ message: RaftMessage, lastIndex: UInt64, lastTerm: UInt64, preVote: Bool) {
        // A vote this replica already gave in this term may be repeated (the answer was lost);
        // otherwise it votes only while it has not voted and knows no leader. A pre-vote for a
        // later term may be granted whatever this term's vote was.
        let mayVote = vote == message.from || (vote == nil && leader == nil) || (preVote && message.term > term)
        let upToDate = log.isUpToDate(lastIndex: lastIndex, lastTerm: lastTerm)
        let granted = mayVote && upToDate
        if !upToDate && log.committed > 0, let committedTerm = log.term(at: log.committed) {
            emit(.commitHint(index: log.committed, term: committedTerm), to: message.from, term: term)
        }
        if preVote {
            // A granted pre-vote answers in the term asked about; a refusal in this replica's own,
            // so a pre-candidate behind in terms learns it.
            emit(.preVoteResponse(granted: granted), to: message.from, term: granted ? message.term : term)
            return
        }
        if granted {
            electionElapsed = 0
            vote = message.from
        }
        emit(.voteResponse(granted: granted), to: message.from)
    }
}
