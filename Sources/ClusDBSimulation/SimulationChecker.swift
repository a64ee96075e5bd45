import ClusDBRaft

/// The safety properties checked while a simulation runs, each at the moment it could first be
/// broken (Raft Figure 3), plus the rules of this implementation that a broken protocol would
/// violate first. A violation is recorded, not trapped, so a sweep reports the seed.
struct SimulationChecker: Sendable {
    /// What went wrong, in the order found.
    private(set) var violations: [String] = []
    /// Election safety: the leader of each term.
    private var leaderOfTerm: [UInt64: NodeID] = [:]
    /// State-machine safety: the entry applied at each index by the first node to apply it.
    private var appliedAt: [UInt64: RaftEntry] = [:]
    /// Each leader's commit index when it was elected.
    private var commitAtElection: [UInt64: UInt64] = [:]
    /// One vote per term: the candidate each node granted its vote to, per term.
    private var voteGiven: [[UInt64]: NodeID] = [:]
    /// Pre-vote grants each node received, per term it asked about.
    private var preVoteGrants: [[UInt64]: Set<NodeID>] = [:]

    /// Log matching: each (index, term) ever made durable anywhere, with its content and the
    /// term of the entry before it in that log. Two logs holding the same (index, term) must
    /// hold the same entry after the same term, and so (by induction) equal prefixes.
    private var durableEntries: [[UInt64]: (entry: RaftEntry, previousTerm: UInt64)] = [:]

    /// The term of every entry known committed (some replica's commit index passed it while it
    /// held the entry), and per node how far its commit index was checked.
    private var committedTerm: [UInt64: UInt64] = [:]
    private var commitChecked: [NodeID: UInt64] = [:]

    mutating func record(_ violation: String) {
        if violations.count < 20 { violations.append(violation) }
    }

    /// A replica leads `term`: one leader per term, and it holds every entry applied anywhere.
    /// Called after every step of a leader; it checks when the replica has just been elected (a
    /// leader deposed without knowing it yet rightly lacks what later terms committed).
    /// - Returns: whether the replica was just elected (the first time it is seen leading its term).
    @discardableResult
    mutating func leads(_ replica: RaftReplica) -> Bool {
        if let other = leaderOfTerm[replica.term] {
            if other != replica.id { record("election safety: nodes \(other) and \(replica.id) both led term \(replica.term)") }
            // §5.4.2: a leader moves its commit index only by counting replicas of an entry of its
            // own term (earlier entries commit with it), so once moved it names one of those.
            if replica.commitIndex > commitAtElection[replica.term]!, let term = replica.term(at: replica.commitIndex), term != replica.term {
                record("commitment (Figure 8): node \(replica.id), leader of term \(replica.term), committed index \(replica.commitIndex) of term \(term) by counting")
            }
            return false
        }
        leaderOfTerm[replica.term] = replica.id
        commitAtElection[replica.term] = replica.commitIndex
        // Leader completeness (§5.4): every entry committed anywhere, not only those applied.
        for (index, term) in committedTerm where index >= replica.firstIndex {
            if replica.term(at: index) != term {
                record("leader completeness: node \(replica.id), leader of term \(replica.term), lacks entry \(index) (term \(term)) committed elsewhere")
                return true
            }
        }
        for (index, entry) in appliedAt where index >= replica.firstIndex {
            if replica.term(at: index) != entry.term {
                record("leader completeness: node \(replica.id), leader of term \(replica.term), lacks entry \(index) (term \(entry.term)) applied elsewhere")
                break
            }
        }
        return true
    }

    /// A replica's commit index after an input: the entries it newly covers are committed, and
    /// every replica must hold the same term at a committed index.
    mutating func commits(_ replica: RaftReplica) {
        let from = max(commitChecked[replica.id] ?? 0, replica.firstIndex - 1) + 1
        guard from <= replica.commitIndex else {
            commitChecked[replica.id] = min(commitChecked[replica.id] ?? 0, replica.commitIndex)
            return
        }
        for index in from...replica.commitIndex {
            guard let term = replica.term(at: index) else { continue }
            if let known = committedTerm[index] {
                if known != term {
                    record("commitment: node \(replica.id) has entry \(index) of term \(term) committed; elsewhere term \(known) was")
                    return
                }
            } else {
                committedTerm[index] = term
            }
        }
        commitChecked[replica.id] = replica.commitIndex
    }

    /// A node applies `entry`: every node applies the same entry at the same index.
    mutating func applies(_ entry: RaftEntry, on node: NodeID) {
        if let first = appliedAt[entry.index] {
            if first != entry {
                record("state-machine safety: node \(node) applied \(entry.kind) of term \(entry.term) at index \(entry.index), another node \(first.kind) of term \(first.term)")
            }
        } else {
            appliedAt[entry.index] = entry
        }
    }

    /// A node made `entries` durable; `previousTerm` gives its durable log's term at an index.
    mutating func persists(_ entries: [RaftEntry], on node: NodeID, previousTerm: (UInt64) -> UInt64?) {
        for entry in entries {
            let before = previousTerm(entry.index - 1) ?? UInt64.max
            let key = [entry.index, entry.term]
            if let seen = durableEntries[key] {
                if seen.entry != entry || seen.previousTerm != before {
                    record(
                        "log matching: node \(node) holds entry \(entry.index) of term \(entry.term) (\(entry.kind), after term \(before)); another log holds \(seen.entry.kind) after term \(seen.previousTerm)")
                    return
                }
            } else {
                durableEntries[key] = (entry, before)
            }
        }
    }

    /// Whether `entry` was applied somewhere (it is committed).
    func isApplied(_ entry: RaftEntry) -> Bool { appliedAt[entry.index] != nil }

    /// The term of the entry applied at `index`, if any node applied one.
    func appliedTerm(at index: UInt64) -> UInt64? { appliedAt[index]?.term }

    /// A message leaves `from`, created under one of `configurations`.
    mutating func sends(_ message: RaftMessage, configurations: [RaftConfiguration], preVoteConfigured: Bool) {
        switch message.body {
        case .voteResponse(granted: true):
            let key = [message.from, message.term]
            if let earlier = voteGiven[key], earlier != message.to {
                record("one vote per term: node \(message.from) voted for \(earlier) and \(message.to) in term \(message.term)")
            }
            voteGiven[key] = message.to
        case .vote(_, _, transfer: false) where preVoteConfigured:
            // With pre-vote, a node raises its term for an election only after a quorum granted
            // the pre-vote: a partitioned node never disrupts the cluster (§9.6).
            let granted = (preVoteGrants[[message.from, message.term]] ?? []).union([message.from])
            if !configurations.contains(where: { granted.intersection($0.voters).count >= $0.quorum }) {
                record("pre-vote: node \(message.from) started an election for term \(message.term) with pre-votes of only \(granted.sorted())")
            }
        default:
            break
        }
    }

    /// A message arrives at its receiver.
    mutating func delivers(_ message: RaftMessage) {
        if case .preVoteResponse(granted: true) = message.body {
            preVoteGrants[[message.to, message.term], default: []].insert(message.from)
        }
    }
}
