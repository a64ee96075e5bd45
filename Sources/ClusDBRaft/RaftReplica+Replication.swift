/// Log replication: appends, heartbeats, snapshots, commitment.
extension RaftReplica {
    // MARK: Leader side

    /// Sends `node` the entries it needs next, unless flow control holds them back. With
    /// `evenIfEmpty`, an append without entries still goes (it carries the commit index).
    /// - Returns: whether a message went.
    @discardableResult
    mutating func sendAppend(to node: NodeID, evenIfEmpty: Bool) -> Bool {
        guard var follower = progress[node], !follower.isPaused(options: options) else { return false }
        let previousIndex = follower.next - 1
        guard let previousTerm = log.term(at: previousIndex), follower.next >= log.firstIndex else {
            sendSnapshot(to: node)
            return true
        }
        let entries = log.entries(from: follower.next, maxBytes: options.maxAppendBytes)
        // In replicate mode an append without entries says nothing new; a probe always goes.
        if entries.isEmpty && !evenIfEmpty && follower.mode == .replicate { return false }
        emit(.append(previousIndex: previousIndex, previousTerm: previousTerm, entries: entries, commit: log.committed), to: node)
        let lastSent = entries.last?.index ?? previousIndex
        follower.sent(lastIndex: lastSent, entryCount: entries.count, bytes: entries.reduce(0) { $0 + $1.sizeForFlowControl })
        follower.commitSent = max(follower.commitSent, min(log.committed, lastSent))
        progress[node] = follower
        return true
    }

    private mutating func sendSnapshot(to node: NodeID) {
        guard var follower = progress[node] else { return }
        let snapshot = snapshotMetadata
        follower.mode = .snapshot(index: snapshot.index)
        follower.inflight.removeAll()
        progress[node] = follower
        emit(.installSnapshot(snapshot), to: node)
    }

    /// Heartbeats to every member. Each carries a commit index the member is known to hold (so
    /// it never commits an entry it may not have), and the read round to confirm.
    mutating func broadcastHeartbeat(context: UInt64) {
        for (node, follower) in progress.sorted(by: { $0.key < $1.key }) {
            let commit = min(follower.match, log.committed)
            progress[node]!.commitSent = max(follower.commitSent, commit)
            emit(.heartbeat(commit: commit, context: context), to: node)
        }
    }

    mutating func handleAppendResponse(from node: NodeID, index: UInt64, rejected: Bool, hintIndex: UInt64, hintTerm: UInt64) {
        guard var follower = progress[node] else { return }
        follower.recentlyActive = true
        if rejected {
            // A refusal of an append this leader no longer waits for is stale: ignore it.
            let stale: Bool
            switch follower.mode {
            case .replicate: stale = index <= follower.match
            case .probe: stale = index != follower.next - 1
            case .snapshot: stale = true
            }
            progress[node] = follower
            guard !stale, index > 0 else { return }
            // Back off by a term: the follower matches at most up to its hint; find where this
            // log could match it (the largest index at or below with a term at most hintTerm).
            let probeFrom = hintTerm > 0 ? log.conflictHint(index: hintIndex, term: hintTerm).index : hintIndex
            follower.becomeProbe(next: min(probeFrom, index - 1) + 1)
            progress[node] = follower
            sendAppend(to: node, evenIfEmpty: true)
            return
        }
        let moved = follower.acknowledge(index)
        if moved {
            switch follower.mode {
            case .probe: follower.becomeReplicate()
            case .snapshot(let snapshotIndex) where follower.match >= snapshotIndex: follower.becomeReplicate()
            default: break
            }
        }
        progress[node] = follower
        if moved && maybeCommit() {
            broadcastPending = true
        }
        if transferee == node && follower.match == log.lastIndex {
            emit(.timeoutNow, to: node)
        }
        // Fill the window; and a follower that holds entries it does not know are committed
        // learns it now rather than at the next heartbeat.
        while sendAppend(to: node, evenIfEmpty: false) {}
        if let follower = progress[node], follower.commitSent < min(log.committed, follower.match) {
            sendAppend(to: node, evenIfEmpty: true)
        }
    }

    mutating func handleHeartbeatResponse(from node: NodeID, context: UInt64) {
        guard var follower = progress[node] else { return }
        follower.recentlyActive = true
        follower.probeSent = false
        // A full window whose appends were lost would wait forever: the follower is alive, so
        // free one slot; the next append shows where its log really ends (etcd-io/raft does the
        // same). Found by the simulator (seed 1309, 3 nodes).
        if follower.mode == .replicate && follower.isPaused(options: options) && !follower.inflight.isEmpty {
            follower.inflight.removeFirst()
        }
        progress[node] = follower
        if follower.match < log.lastIndex { sendAppend(to: node, evenIfEmpty: true) }
        if context > 0 { acknowledgeReadRound(context, from: node) }
    }

    /// Advances the commit index to what a quorum of voters holds, counting only an entry of
    /// this term (§5.4.2). The leader counts itself only for what it has made durable.
    /// - Returns: whether the commit index moved.
    mutating func maybeCommit() -> Bool {
        precondition(role == .leader, "only a leader counts")
        let own = options.brokenProtocol.contains(.countLeaderBeforeDurable) ? log.lastIndex : log.persisted
        let matches = configuration.voters.map { $0 == id ? own : (progress[$0]?.match ?? 0) }.sorted(by: >)
        guard !matches.isEmpty else { return false }
        let quorumIndex = matches[configuration.quorum - 1]
        guard quorumIndex > log.committed else { return false }
        let countsByTerm = log.term(at: quorumIndex) == term || options.brokenProtocol.contains(.commitPreviousTermByCounting)
        guard countsByTerm else { return false }
        advanceCommit(to: quorumIndex)
        return true
    }

    // MARK: Follower side

    mutating func handleAppend(from leaderID: NodeID, previousIndex: UInt64, previousTerm: UInt64, entries: [RaftEntry], commit: UInt64) {
        guard Self.isWellFormed(entries, after: previousIndex, previousTerm: previousTerm, leaderTerm: term) else {
            // No correct leader sends this; the transport decoded garbage or a peer is broken.
            // Dropped unanswered: the log must never take it.
            return
        }
        if previousIndex < log.committed {
            // Already committed here: the leader learns where this log is.
            emit(.appendResponse(index: log.committed, rejected: false, hintIndex: 0, hintTerm: 0), to: leaderID)
            return
        }
        guard log.matches(index: previousIndex, term: previousTerm) else {
            let hint = log.conflictHint(index: min(previousIndex, log.lastIndex), term: previousTerm)
            emit(.appendResponse(index: previousIndex, rejected: true, hintIndex: hint.index, hintTerm: hint.term), to: leaderID)
            return
        }
        let lastNew = previousIndex + UInt64(entries.count)
        _ = log.append(matching: entries)
        // Only what this append proved to match the leader's log may be committed here.
        let newCommit = min(commit, lastNew)
        if newCommit > log.committed { advanceCommit(to: newCommit) }
        emit(.appendResponse(index: lastNew, rejected: false, hintIndex: 0, hintTerm: 0), to: leaderID)
    }

    /// Whether entries of an append continue (`previousIndex`, `previousTerm`) one index at a
    /// time, with terms that never go back and never pass the leader's.
    static func isWellFormed(_ entries: [RaftEntry], after previousIndex: UInt64, previousTerm: UInt64, leaderTerm: UInt64) -> Bool {
        var index = previousIndex
        var entryTerm = previousTerm
        for entry in entries {
            guard entry.index == index + 1, entry.term >= entryTerm, entry.term <= leaderTerm else { return false }
            index = entry.index
            entryTerm = entry.term
        }
        return previousTerm <= leaderTerm
    }

    mutating func handleHeartbeat(from leaderID: NodeID, commit: UInt64, context: UInt64) {
        let newCommit = min(commit, log.lastIndex)
        if newCommit > log.committed { advanceCommit(to: newCommit) }
        emit(.heartbeatResponse(context: context), to: leaderID)
    }

    mutating func handleSnapshot(from leaderID: NodeID, _ snapshot: SnapshotMetadata) {
        guard snapshot.index > 0, snapshot.term <= term, snapshot.configuration.isValid, !snapshot.configuration.voters.isEmpty else {
            return  // No correct leader sends this (see handleAppend).
        }
        if snapshot.index <= log.committed {
            emit(.appendResponse(index: log.committed, rejected: false, hintIndex: 0, hintTerm: 0), to: leaderID)
            return
        }
        if log.matches(index: snapshot.index, term: snapshot.term) {
            // The log already holds the snapshot's last entry: it only learns the commit index.
            advanceCommit(to: snapshot.index)
            emit(.appendResponse(index: snapshot.index, rejected: false, hintIndex: 0, hintTerm: 0), to: leaderID)
            return
        }
        log.restore(snapshot)
        snapshotConfiguration = snapshot.configuration
        configuration = snapshot.configuration
        outSnapshot = snapshot
        emit(.appendResponse(index: snapshot.index, rejected: false, hintIndex: 0, hintTerm: 0), to: leaderID)
    }

    // MARK: Commitment

    /// Raises the commit index; membership changes in the newly committed entries take effect.
    mutating func advanceCommit(to index: UInt64) {
        let previous = log.committed
        log.commit(to: index)
        guard index > previous else { return }
        if role == .leader {
            for position in (previous + 1)...index {
                uncommittedBytes = max(0, uncommittedBytes - log.entry(at: position).sizeForFlowControl)
            }
        }
        for position in (previous + 1)...index { takeEffect(of: log.entry(at: position)) }
        // A change that took effect may let a smaller quorum commit more; counted only now, after
        // every change up to `index` took effect in order.
        if role == .leader && maybeCommit() { broadcastPending = true }
        if role == .leader {
            // The first commit of this term makes the commit index current: reads may proceed.
            if log.term(at: log.committed) == term && !readsAwaitingTermCommit.isEmpty {
                let waiting = readsAwaitingTermCommit
                readsAwaitingTermCommit = []
                for read in waiting { requestRead(context: read.context, from: read.requester) }
            }
        }
    }

    /// A committed membership change takes effect (every replica does this at the same index).
    mutating func takeEffect(of entry: RaftEntry) {
        guard entry.kind == .configurationChange else { return }
        let next = applyingChange(of: entry, to: configuration)
        guard next != configuration else { return }
        configuration = next
        guard role == .leader else { return }
        for node in next.members where node != id {
            if progress[node] == nil {
                progress[node] = FollowerProgress(next: log.lastIndex + 1)
                broadcastPending = true
            }
        }
        for node in progress.keys where !next.members.contains(node) {
            progress[node] = nil
            ackedRound[node] = nil
        }
        if transferee.map({ !next.voters.contains($0) }) ?? false { transferee = nil }
        if !next.voters.contains(id) {
            // This leader was removed: it steps down once the change is committed (it led the
            // commit of its own removal). First the others learn that the change committed (a
            // heartbeat carries the commit index to those holding it): until they do, they still
            // count this node, and a cluster of two that removes its leader would wait for it
            // forever. Then the most up-to-date voter is told to start an election at once.
            broadcastHeartbeat(context: 0)
            if let successor = next.voters.sorted().max(by: { (progress[$0]?.match ?? 0) < (progress[$1]?.match ?? 0) }) {
                emit(.timeoutNow, to: successor)
            }
            becomeFollower(term: term, leader: nil)
            return
        }
        // Fewer voters may confirm reads already waiting (down to this leader alone).
        let rounds = next.voters.map { $0 == id ? readRound : (ackedRound[$0] ?? 0) }.sorted(by: >)
        answerConfirmedReads(through: rounds[next.quorum - 1])
    }

    /// `configuration` after the change in `entry` (unchanged for other entries, and for a change
    /// that does not apply, which a leader never appends).
    func applyingChange(of entry: RaftEntry, to configuration: RaftConfiguration) -> RaftConfiguration {
        guard entry.kind == .configurationChange, let change = ConfigurationChange(encoded: entry.payload) else { return configuration }
        return configuration.applying(change) ?? configuration
    }
}
