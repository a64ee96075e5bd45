@testable import ClusDBRaft
import ClusDBModel
import Testing

/// Cases a review of the core found wrong or unguarded: what a crash leaves on disk, answers
/// that arrive late or twice, members that leave, and input no correct peer sends. Each test
/// fails without the rule it names.
@Suite("Raft edges: crash-time states, late answers, shrinking membership, malformed input")
struct CrashAndMembershipEdgeTests {
    @Test("A leader elected on its own vote sends nothing before its term and vote are durable (one voter, one learner)")
    func soleVoterWaitsForItsVote() {
        var network = RaftTestNetwork(voters: [1], learners: [2])
        network.replicas[1]!.campaign(transfer: false)
        #expect(network.replicas[1]!.role == .leader)
        let ready = network.replicas[1]!.takeReady()
        #expect(ready.hardState == HardState(term: 1, vote: 1, commit: 0))
        // Sent before the vote is durable, the no-op could reach the learner; a crash then lets
        // the node lead term 1 again with another entry at the same index.
        #expect(ready.messages.isEmpty)
        #expect(ready.messagesAfterPersist.contains { $0.to == 2 && $0.term == 1 })
        // Within a term whose vote is durable, a leader's appends go at once (§10.2.1).
        network.durable[1]!.hardState = ready.hardState!
        network.durable[1]!.entries = ready.entries
        network.send(ready.messagesAfterPersist)
        network.replicas[1]!.persisted(index: ready.entries.last!.index, term: 1)
        network.settle()  // The learner answers; the leader streams to it.
        _ = network.replicas[1]!.propose(Array("x".utf8))
        let next = network.replicas[1]!.takeReady()
        #expect(next.hardState == nil || next.hardState!.term == 1 && next.hardState!.vote == 1)
        #expect(next.messages.contains { $0.to == 2 })
    }

    @Test("A follower takes a read index only for a context it forwarded and still awaits, and only from its leader")
    func followerReadAnswersAreMatched() {
        var network = RequestTests.leaderOfThree()
        let term = network.replicas[2]!.term
        // An answer to a context never asked for (a stale one from before a restart, say).
        network.replicas[2]!.step(RaftMessage(from: 1, to: 2, term: term, body: .readIndexResponse(context: 99, index: 1)))
        #expect(network.replicas[2]!.takeReady().readStates.isEmpty)
        #expect(network.replicas[2]!.requestRead(context: 5).isSuccess)
        network.settle()
        #expect(network.readStates[2]!.map(\.context) == [5])
        let index = network.readStates[2]![0].index
        // The same answer again, and one from a node that does not lead: both dropped.
        network.replicas[2]!.step(RaftMessage(from: 1, to: 2, term: term, body: .readIndexResponse(context: 5, index: index)))
        network.replicas[2]!.step(RaftMessage(from: 3, to: 2, term: term, body: .readIndexResponse(context: 5, index: index)))
        #expect(network.replicas[2]!.takeReady().readStates.isEmpty)
    }

    @Test("A restarted follower drops the answer to a read of its previous run")
    func restartedFollowerDropsOldReadAnswers() {
        var network = RequestTests.leaderOfThree()
        network.drop = { if case .readIndexResponse = $0.body { return true } else { return false } }
        #expect(network.replicas[2]!.requestRead(context: 5).isSuccess)
        network.settle()
        let late = network.delivered.last { if case .readIndex = $0.body { return true } else { return false } }
        #expect(late != nil)
        network.restart(2)
        network.drop = { _ in false }
        network.tick()  // The restarted follower hears from its leader again.
        network.replicas[2]!.step(RaftMessage(from: 1, to: 2, term: network.replicas[1]!.term, body: .readIndexResponse(context: 5, index: 1)))
        #expect(network.replicas[2]!.takeReady().readStates.isEmpty)
    }

    @Test("A cluster of two removes its leader: the other voter learns the commit before the leader leaves, and leads alone")
    func removingTheLeaderOfTwo() {
        var network = RaftTestNetwork(voters: [1, 2])
        network.campaign(1)
        #expect(network.leaders() == [1])
        let removal = network.replicas[1]!.proposeConfigurationChange(.remove(1))
        guard case .success(let index) = removal else {
            Issue.record("the removal was refused: \(removal)")
            return
        }
        while network.replicas[1]!.role == .leader {
            guard network.deliverNext() else { break }
        }
        #expect(network.replicas[1]!.role == .follower)
        // The removed node sends what it has to say, then is shut down, as an operator would.
        network.handleReady(1)
        network.replicas[1] = nil
        network.settle()
        network.tick([2], times: 3 * RaftOptions().electionTicks)
        #expect(network.replicas[2]!.commitIndex >= index)
        #expect(network.replicas[2]!.configuration.voters == [2])
        #expect(network.replicas[2]!.role == .leader)
    }

    @Test("A removed leader holding a newer log than the last voter tells it, with its refused vote, that its removal committed")
    func removedLeaderHintsCommit() {
        var options = RaftTestNetwork.testOptions
        options.maxAppendBytes = 1  // One entry per append, so that node 2 can miss the last one.
        var network = RaftTestNetwork(voters: [1, 2], options: options)
        network.campaign(1)
        guard case .success(let removal) = network.replicas[1]!.proposeConfigurationChange(.remove(1)) else {
            Issue.record("the removal was refused")
            return
        }
        #expect(network.replicas[1]!.propose(Array("after".utf8)).isSuccess)
        network.drop = { message in
            if case .append(_, _, let entries, _) = message.body { return entries.contains { $0.index > removal } }
            return false
        }
        while network.replicas[1]!.role == .leader {
            guard network.deliverNext() else { break }
        }
        #expect(network.replicas[1]!.role == .follower)
        // Everything the removed node says from now on is lost but for the hint.
        network.drop = { message in
            if case .commitHint = message.body { return false }
            return message.from == 1
        }
        network.settle()
        #expect(network.replicas[2]!.configuration.voters == [1, 2], "node 2 has not heard that the removal committed")
        #expect(network.replicas[1]!.lastIndex > network.replicas[2]!.lastIndex, "the removed node's log is the newer")
        network.tick(times: 3 * RaftOptions().electionTicks)
        #expect(network.replicas[2]!.configuration.voters == [2])
        #expect(network.replicas[2]!.role == .leader)
    }

    @Test("Reads waiting for a heartbeat round are answered when the voters shrink to the leader alone")
    func readsAnsweredWhenVotersShrinkToTheLeader() {
        var network = RaftTestNetwork(voters: [1, 2])
        network.campaign(1)
        network.drop = { if case .heartbeatResponse = $0.body { return true } else { return false } }
        #expect(network.replicas[1]!.requestRead(context: 7).isSuccess)
        network.settle()
        #expect(network.readStates[1, default: []].isEmpty, "no quorum answered the round yet")
        #expect(network.replicas[1]!.proposeConfigurationChange(.remove(2)).isSuccess)
        network.settle()
        #expect(network.replicas[1]!.configuration.voters == [1])
        #expect(network.readStates[1, default: []].map(\.context) == [7])
    }

    @Test("Asking again to transfer to the same target neither restarts nor prolongs the transfer")
    func repeatedTransferKeepsItsTimer() {
        var network = RequestTests.leaderOfThree()
        network.drop = { $0.body == .timeoutNow }
        #expect(network.replicas[1]!.transferLeadership(to: 2).isSuccess)
        network.settle()
        #expect(network.replicas[1]!.leadershipTransferTarget == 2)
        network.tick([1], times: RaftOptions().electionTicks - 1)
        #expect(network.replicas[1]!.transferLeadership(to: 2).isSuccess)
        network.tick([1])
        #expect(network.replicas[1]!.leadershipTransferTarget == nil, "abandoned one election timeout after it began")
    }

    @Test("The hard state's commit index never covers entries not yet durable: a crash between the two writes cannot commit replaced entries")
    func reportedCommitWaitsForEntries() throws {
        // A follower holds 1...10 durably; 6...10 of term 2 were never committed.
        let entries = (1...10).map { RaftEntry(index: $0, term: $0 <= 5 ? 1 : 2, kind: .noOp) }
        let state = DurableState(
            hardState: HardState(term: 2, vote: nil, commit: 5), entries: entries, appliedIndex: 5,
            bootstrapConfiguration: RaftConfiguration(voters: [1, 2, 3]))
        var replica = try RaftReplica(id: 2, durable: state, options: RaftTestNetwork.testOptions, random: RandomSource(seed: 1))
        // The leader of term 3 replaces 6...8 and says 8 is committed, in one message.
        let theirs = (6...8).map { RaftEntry(index: $0, term: 3, kind: .noOp) }
        replica.step(RaftMessage(from: 1, to: 2, term: 3, body: .append(previousIndex: 5, previousTerm: 1, entries: theirs, commit: 8)))
        let ready = replica.takeReady()
        #expect(ready.entries == theirs)
        // Written before the entries (the vote rule), a commit of 8 would cover the old 6...8.
        #expect((ready.hardState?.commit ?? 5) <= 5)
        replica.persisted(index: 8, term: 3)
        #expect(replica.takeReady().hardState?.commit == 8, "once the entries are durable, the commit index follows")
    }

    @Test("Start-up lowers a commit index past the durable log (hard state written before the entries)")
    func startLowersCommitPastTheLog() throws {
        let entries = (1...3).map { RaftEntry(index: $0, term: 1, kind: .noOp) }
        let state = DurableState(
            hardState: HardState(term: 1, vote: 1, commit: 5), entries: entries, bootstrapConfiguration: RaftConfiguration(voters: [1, 2, 3]))
        let replica = try RaftReplica(id: 1, durable: state, options: RaftTestNetwork.testOptions, random: RandomSource(seed: 1))
        #expect(replica.commitIndex == 3)
    }

    @Test("Start-up takes the change before the log's last membership change as committed: a restarted replica is never two changes behind")
    func startCommitsTheChangeBeforeTheLast() throws {
        // Voters 1, 2, 3 remove 3, add 4 as a learner and promote it; the commit index reached
        // the disk before any of it. If the promotion committed, the cluster is {1, 2, 4}, and a
        // replica back in {1, 2, 3} could be elected by {1, 3} while {2, 4} elect another.
        let entries = [
            RaftEntry(index: 1, term: 1, kind: .noOp),
            RaftEntry(index: 2, term: 1, kind: .configurationChange, payload: ConfigurationChange.remove(3).encoded),
            RaftEntry(index: 3, term: 2, kind: .noOp),
            RaftEntry(index: 4, term: 2, kind: .configurationChange, payload: ConfigurationChange.addLearner(4).encoded),
            RaftEntry(index: 5, term: 2, kind: .configurationChange, payload: ConfigurationChange.promoteLearner(4).encoded),
            RaftEntry(index: 6, term: 2, kind: .command, payload: [1]),
        ]
        let state = DurableState(
            hardState: HardState(term: 2, vote: 1, commit: 1), entries: entries, bootstrapConfiguration: RaftConfiguration(voters: [1, 2, 3]))
        let replica = try RaftReplica(id: 1, durable: state, options: RaftTestNetwork.testOptions, random: RandomSource(seed: 1))
        #expect(replica.commitIndex == 4, "the addition at 4 committed before the promotion at 5 was appended")
        #expect(replica.configuration == RaftConfiguration(voters: [1, 2], learners: [4]))
        // Only the change before the last is proven; a single change proves nothing.
        for (count, commit) in [(4, UInt64(2)), (3, UInt64(1))] {
            let shorter = DurableState(
                hardState: HardState(term: 2, vote: 1, commit: 1), entries: Array(entries[0..<count]),
                bootstrapConfiguration: RaftConfiguration(voters: [1, 2, 3]))
            let other = try RaftReplica(id: 1, durable: shorter, options: RaftTestNetwork.testOptions, random: RandomSource(seed: 1))
            #expect(other.commitIndex == commit)
        }
    }

    @Test("Start-up with the state machine behind the durable snapshot hands the snapshot out again first")
    func startReinstallsSnapshot() throws {
        let configuration = RaftConfiguration(voters: [1, 2, 3])
        let snapshot = SnapshotMetadata(index: 4, term: 1, configuration: configuration)
        let state = DurableState(
            hardState: HardState(term: 1, vote: nil, commit: 4), snapshot: snapshot, entries: [RaftEntry(index: 5, term: 1, kind: .noOp)],
            appliedIndex: 2, bootstrapConfiguration: configuration)
        var replica = try RaftReplica(id: 1, durable: state, options: RaftTestNetwork.testOptions, random: RandomSource(seed: 1))
        #expect(replica.appliedIndex == 4)
        #expect(replica.takeReady().snapshot == snapshot)
    }

    @Test("A Ready that reinstalls the snapshot hands out no committed entries, even when start-up raised the commit index past it")
    func snapshotReadyCarriesNoCommittedEntries() throws {
        // The log continues the snapshot with two membership changes: start-up takes the first
        // as committed (review finding: the image must be installed before anything is applied
        // on top of it, or the entries would be wiped by it).
        let configuration = RaftConfiguration(voters: [1, 2, 3])
        let snapshot = SnapshotMetadata(index: 4, term: 1, configuration: configuration)
        let entries = [
            RaftEntry(index: 5, term: 1, kind: .noOp),
            RaftEntry(index: 6, term: 1, kind: .configurationChange, payload: ConfigurationChange.addLearner(4).encoded),
            RaftEntry(index: 7, term: 1, kind: .configurationChange, payload: ConfigurationChange.promoteLearner(4).encoded),
        ]
        let state = DurableState(
            hardState: HardState(term: 1, vote: nil, commit: 4), snapshot: snapshot, entries: entries, appliedIndex: 2,
            bootstrapConfiguration: configuration)
        var replica = try RaftReplica(id: 1, durable: state, options: RaftTestNetwork.testOptions, random: RandomSource(seed: 1))
        #expect(replica.commitIndex == 6)
        let first = replica.takeReady()
        #expect(first.snapshot == snapshot && first.committedEntries.isEmpty)
        #expect(replica.takeReady().committedEntries.map(\.index) == [5, 6], "they follow once the image is in")
    }

    @Test("Start-up keeps the log after a snapshot only where it holds the snapshot's last entry (Figure 13)")
    func logContinuingSnapshot() {
        let snapshot = SnapshotMetadata(index: 5, term: 2, configuration: RaftConfiguration(voters: [1]))
        func log(_ range: ClosedRange<UInt64>, term: (UInt64) -> UInt64) -> [RaftEntry] { range.map { RaftEntry(index: $0, term: term($0), kind: .noOp) } }
        let matching = log(3...8) { $0 <= 5 ? 2 : 3 }
        #expect(DurableState.entries(continuing: snapshot, from: matching).map(\.index) == [6, 7, 8])
        // Another history at the snapshot's index: a crash between the snapshot and discarding.
        #expect(DurableState.entries(continuing: snapshot, from: log(3...8) { _ in 1 }).isEmpty)
        // A log that ends before the snapshot, or starts after a gap.
        #expect(DurableState.entries(continuing: snapshot, from: log(1...4) { _ in 1 }).isEmpty)
        #expect(DurableState.entries(continuing: snapshot, from: log(7...8) { _ in 2 }).isEmpty)
        // A log that starts right after it (discarded, then appended), in a term not before it.
        #expect(DurableState.entries(continuing: snapshot, from: log(6...7) { _ in 2 }).map(\.index) == [6, 7])
        #expect(DurableState.entries(continuing: snapshot, from: log(6...7) { _ in 1 }).isEmpty)
        #expect(DurableState.entries(continuing: nil, from: matching) == matching)
    }

    @Test("Start-up refuses a durable state no crash leaves, with ERROR_CLUSTER_LOG_CORRUPT rather than a trap")
    func startRefusesContradictions() {
        let configuration = RaftConfiguration(voters: [1])
        let states: [DurableState] = [
            // A gap in the indexes.
            DurableState(hardState: HardState(term: 1), entries: [RaftEntry(index: 1, term: 1, kind: .noOp), RaftEntry(index: 3, term: 1, kind: .noOp)], bootstrapConfiguration: configuration),
            // Terms going back.
            DurableState(hardState: HardState(term: 2), entries: [RaftEntry(index: 1, term: 2, kind: .noOp), RaftEntry(index: 2, term: 1, kind: .noOp)], bootstrapConfiguration: configuration),
            // An entry from a term after the hard state's.
            DurableState(hardState: HardState(term: 1), entries: [RaftEntry(index: 1, term: 2, kind: .noOp)], bootstrapConfiguration: configuration),
            // A state machine past the log's end.
            DurableState(hardState: HardState(term: 1), entries: [RaftEntry(index: 1, term: 1, kind: .noOp)], appliedIndex: 2, bootstrapConfiguration: configuration),
        ]
        for state in states {
            #expect(throws: ClusterError.self) {
                _ = try RaftReplica(id: 1, durable: state, options: RaftTestNetwork.testOptions, random: RandomSource(seed: 1))
            }
            do {
                _ = try RaftReplica(id: 1, durable: state, options: RaftTestNetwork.testOptions, random: RandomSource(seed: 1))
            } catch {
                #expect(error.code == .clusterLogCorrupt)
            }
        }
    }

    @Test("An append whose entries do not continue its previous index, or outrun the leader's term, is dropped unanswered")
    func malformedAppendsAreDropped() {
        var network = RequestTests.leaderOfThree()
        let term = network.replicas[2]!.term
        let last = network.replicas[2]!.lastIndex
        let malformed: [[RaftEntry]] = [
            [RaftEntry(index: last + 2, term: term, kind: .noOp)],
            [RaftEntry(index: last + 1, term: term, kind: .noOp), RaftEntry(index: last + 3, term: term, kind: .noOp)],
            [RaftEntry(index: last + 1, term: term + 1, kind: .noOp)],
        ]
        for entries in malformed {
            network.replicas[2]!.step(
                RaftMessage(from: 1, to: 2, term: term, body: .append(previousIndex: last, previousTerm: term, entries: entries, commit: 0)))
            let ready = network.replicas[2]!.takeReady()
            #expect(ready.entries.isEmpty && ready.messagesAfterPersist.isEmpty && ready.messages.isEmpty)
            #expect(network.replicas[2]!.lastIndex == last)
        }
    }

    @Test("An append sent only for its commit index takes no place in the flow-control window")
    func commitOnlyAppendsTakeNoWindow() {
        var options = RaftTestNetwork.testOptions
        options.maxInflightAppends = 2
        var network = RaftTestNetwork(voters: [1, 2, 3], options: options)
        network.campaign(1)
        network.drop = { if case .appendResponse = $0.body { return $0.from == 2 } else { return false } }
        network.propose(1, "a")
        network.propose(1, "b")
        // Node 3's answers committed "a", and node 2 was sent the commit in an append without
        // entries; had that taken a slot, "b" would wait for node 2's answers.
        #expect(network.replicas[2]!.lastIndex == network.replicas[1]!.lastIndex)
        #expect(network.replicas[1]!.progressSummary(of: 2)?.contains("inflight 2") == true)
    }
}
