/// The replica's own invariants, checked after every step when ``RaftOptions/checksInvariants``
/// is set (tests and the simulator; TigerBeetle's style). The invariants between replicas
/// (election safety, log matching, state-machine safety) are the simulator's checkers.
extension RaftReplica {
    func checkInvariants() {
        guard options.checksInvariants else { return }
        precondition(log.committed <= log.lastIndex, "commit \(log.committed) within the log (last \(log.lastIndex))")
        precondition(log.applied <= log.committed, "applied \(log.applied) <= commit \(log.committed)")
        precondition(log.applied <= log.handedOutForApply && log.handedOutForApply <= min(log.committed, log.persisted) || log.handedOutForApply == log.applied,
            "entries are applied only once committed and durable")
        precondition(log.persisted <= log.handedOut && log.handedOut <= log.lastIndex, "durable <= handed out <= last")
        precondition(log.snapshotIndex <= log.applied, "the snapshot covers only applied entries")
        precondition(log.lastTerm <= term, "no entry of a later term than the replica's")
        precondition(handedOutHardState.term <= term, "the persisted term never passes the current one")
        switch role {
        case .leader:
            precondition(leader == id && vote == id, "a leader voted for itself and knows it leads")
            precondition(log.lastTerm == term, "a leader's log ends in its own term (its no-op at least)")
            precondition(Set(progress.keys) == configuration.members.subtracting([id]), "the leader tracks every other member")
            for (node, follower) in progress {
                precondition(follower.match < follower.next, "match < next for \(node)")
                precondition(follower.match <= log.lastIndex, "a follower matches no more than the leader holds (\(node))")
            }
            precondition(transferee.map { configuration.voters.contains($0) } ?? true, "a transfer targets a voter")
        case .candidate:
            precondition(vote == id && leader == nil, "a candidate voted for itself and knows no leader")
            precondition(progress.isEmpty, "only a leader tracks followers")
        case .preCandidate, .follower:
            precondition(progress.isEmpty && pendingReads.isEmpty, "only a leader tracks followers and reads")
            precondition(leader != id, "a follower is not its own leader")
        }
    }
}

extension RaftReplica {
    /// One line of state, for failure reports: role, term, log bounds, commit, applied.
    public var summary: String {
        "node \(id) \(role) term \(term) leader \(leader.map(String.init) ?? "-") log \(log.firstIndex)...\(log.lastIndex) commit \(log.committed) persisted \(log.persisted) applied \(log.applied)"
    }

    /// What this leader knows of `node`, for failure reports; nil when not leading it.
    public func progressSummary(of node: NodeID) -> String? {
        guard let follower = progress[node] else { return nil }
        return "match \(follower.match) next \(follower.next) \(follower.mode) probeSent \(follower.probeSent) inflight \(follower.inflight.count) active \(follower.recentlyActive)"
    }
}
