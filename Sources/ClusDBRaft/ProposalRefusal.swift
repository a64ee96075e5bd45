/// Why a replica did not take a proposal, a read request, a membership change or a transfer.
public enum ProposalRefusal: Error, Sendable, Equatable {
    /// This replica does not lead; `leader` is the one it knows of, if any.
    case notLeader(leader: NodeID?)
    /// A leadership transfer is under way: proposals wait until it ends (§3.10).
    case transferringLeadership
    /// The uncommitted tail of the log holds ``RaftOptions/maxUncommittedBytes``: retry later.
    case uncommittedLimit
    /// ``RaftOptions/maxPendingReads`` reads already wait: retry later.
    case pendingReadLimit
    /// A membership change is already in progress, or the leader has not yet committed an entry
    /// of its own term (the single-server change bug, Ongaro, raft-dev 2015).
    case configurationChangeInProgress
    /// The change does not apply to the configuration (adding an existing member, promoting a
    /// non-learner, removing a stranger or the last voter).
    case invalidConfigurationChange
    /// The learner to promote has not caught up with the leader's log.
    case learnerNotCaughtUp
    /// The transfer target is not a voter of the configuration, or is this replica.
    case invalidTransferTarget
}
