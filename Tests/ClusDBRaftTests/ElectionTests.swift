@testable import ClusDBRaft
import Testing

@Suite("Raft elections: randomized timeouts, pre-vote, check-quorum, vote rules")
struct ElectionTests {
    @Test("A single voter elects itself after its timeout and commits its no-op on its own persistence")
    func singleVoter() {
        var network = RaftTestNetwork(voters: [1])
        network.tick(times: 2 * RaftOptions().electionTicks)
        let replica = network.replicas[1]!
        #expect(replica.role == .leader)
        #expect(replica.term == 1)
        #expect(network.applied[1]!.map(\.kind) == [.noOp], "the term's no-op is applied")
        #expect(network.durable[1]!.hardState == HardState(term: 1, vote: 1, commit: 1))
    }

    @Test("Three voters elect exactly one leader; every node agrees on it and its term")
    func threeVoters() {
        for seed in UInt64(1)...20 {
            var network = RaftTestNetwork(voters: [1, 2, 3], seed: seed)
            network.tick(times: 3 * RaftOptions().electionTicks)
            let leaders = network.leaders()
            #expect(leaders.count == 1, "seed \(seed)")
            let term = network.replicas[leaders[0]]!.term
            for replica in network.replicas.values {
                #expect(replica.term == term && replica.leader == leaders[0], "seed \(seed)")
            }
        }
    }

    @Test("A candidate asks for votes only after its own vote is durable: the vote request waits for persistence")
    func voteAfterPersist() {
        var network = RaftTestNetwork(voters: [1, 2, 3])
        var options = RaftTestNetwork.testOptions
        options.preVote = false
        network.start(1, from: network.durable[1]!, options: options)
        network.replicas[1]!.campaign(transfer: false)
        let ready = network.replicas[1]!.takeReady()
        #expect(ready.hardState == HardState(term: 1, vote: 1, commit: 0))
        #expect(ready.messages.isEmpty)
        #expect(ready.messagesAfterPersist.map(\.to).sorted() == [2, 3])
        // The voter's answer promises its vote: it too waits for persistence.
        network.replicas[2]!.step(ready.messagesAfterPersist.first { $0.to == 2 }!)
        let answer = network.replicas[2]!.takeReady()
        #expect(answer.hardState == HardState(term: 1, vote: 1, commit: 0))
        #expect(answer.messages.isEmpty && answer.messagesAfterPersist.map(\.body) == [.voteResponse(granted: true)])
    }

    @Test("A voter grants one vote per term, repeats it to the same candidate, and refuses a stale log")
    func voteRules() {
        var network = RaftTestNetwork(voters: [1, 2, 3])
        let vote = { (from: NodeID, term: UInt64, lastIndex: UInt64, lastTerm: UInt64) in
            RaftMessage(from: from, to: 2, term: term, body: .vote(lastIndex: lastIndex, lastTerm: lastTerm, transfer: false))
        }
        var voter = network.replicas[2]!
        voter.step(vote(1, 1, 0, 0))
        #expect(voter.takeReady().messagesAfterPersist.map(\.body) == [.voteResponse(granted: true)])
        voter.step(vote(3, 1, 0, 0))
        #expect(voter.takeReady().messagesAfterPersist.map(\.body) == [.voteResponse(granted: false)], "one vote per term")
        voter.step(vote(1, 1, 0, 0))
        #expect(voter.takeReady().messagesAfterPersist.map(\.body) == [.voteResponse(granted: true)], "the same vote again")
        // A log that ends in an earlier term, or is shorter in the same term, is not up to date.
        voter.step(RaftMessage(from: 1, to: 2, term: 1, body: .append(previousIndex: 0, previousTerm: 0, entries: [RaftEntry(index: 1, term: 1, kind: .noOp), RaftEntry(index: 2, term: 1, kind: .command)], commit: 0)))
        _ = voter.takeReady()
        // From here the voter hears from leader 1: only a transfer's election is considered.
        let transferVote = { (term: UInt64, lastIndex: UInt64, lastTerm: UInt64) in
            RaftMessage(from: 3, to: 2, term: term, body: .vote(lastIndex: lastIndex, lastTerm: lastTerm, transfer: true))
        }
        voter.step(transferVote(5, 1, 1))
        #expect(voter.takeReady().messagesAfterPersist.map(\.body) == [.voteResponse(granted: false)], "shorter log")
        voter.step(transferVote(6, 9, 0))
        #expect(voter.takeReady().messagesAfterPersist.map(\.body) == [.voteResponse(granted: false)], "older last term")
        voter.step(transferVote(7, 2, 1))
        #expect(voter.takeReady().messagesAfterPersist.map(\.body) == [.voteResponse(granted: true)], "as up to date")
        network.replicas[2] = voter
    }

    @Test("Pre-vote: a partitioned node does not raise its term, and on return does not depose the leader")
    func preVoteKeepsLeader() {
        var network = RaftTestNetwork(voters: [1, 2, 3])
        network.campaign(1)
        #expect(network.leaders() == [1])
        let term = network.replicas[1]!.term
        network.isolate(3)
        network.tick([3], times: 10 * RaftOptions().electionTicks)
        #expect(network.replicas[3]!.term == term, "pre-votes that fail leave the term alone")
        network.isolate(3, heal: true)
        network.tick(times: 3 * RaftOptions().electionTicks)
        #expect(network.leaders() == [1])
        #expect(network.replicas[1]!.term == term, "the leader was not disturbed")
    }

    @Test("Without pre-vote the same partitioned node raises its term and deposes the leader on return (what pre-vote prevents)")
    func withoutPreVoteDisrupts() {
        var options = RaftTestNetwork.testOptions
        options.preVote = false
        options.checkQuorum = false
        var network = RaftTestNetwork(voters: [1, 2, 3], options: options)
        network.campaign(1)
        let term = network.replicas[1]!.term
        network.isolate(3)
        network.tick([3], times: 10 * RaftOptions().electionTicks)
        #expect(network.replicas[3]!.term > term + 5)
        network.isolate(3, heal: true)
        network.tick(times: 3 * RaftOptions().electionTicks)
        #expect(network.leaders().count == 1)
        #expect(network.replicas[1]!.term > term + 5, "the cluster moved to the returning node's term: the leader was deposed")
    }

    @Test("Check-quorum: a leader that hears from no quorum steps down within an election timeout")
    func checkQuorum() {
        var network = RaftTestNetwork(voters: [1, 2, 3])
        network.campaign(1)
        network.isolate(1)
        network.tick([1], times: 2 * RaftOptions().electionTicks)
        #expect(network.replicas[1]!.role != .leader)
        // The majority side elects a leader of its own meanwhile.
        network.tick([2, 3], times: 3 * RaftOptions().electionTicks)
        #expect(network.leaders().count == 1 && network.leaders()[0] != 1)
    }

    @Test("A vote request is ignored while the voter hears from a leader (check-quorum's lease), unless it is a transfer")
    func leaseIgnoresVotes() {
        var network = RaftTestNetwork(voters: [1, 2, 3])
        network.campaign(1)
        var voter = network.replicas[2]!
        let term = voter.term
        voter.step(RaftMessage(from: 3, to: 2, term: term + 1, body: .vote(lastIndex: 99, lastTerm: term, transfer: false)))
        #expect(voter.term == term && voter.takeReady().messagesAfterPersist.isEmpty, "ignored")
        voter.step(RaftMessage(from: 3, to: 2, term: term + 1, body: .vote(lastIndex: 99, lastTerm: term, transfer: true)))
        #expect(voter.term == term + 1 && voter.vote == 3, "a transfer's election is honoured")
    }

    @Test("A restarted replica keeps its term and vote, so it cannot vote twice in a term")
    func restartKeepsVote() {
        var network = RaftTestNetwork(voters: [1, 2, 3])
        network.campaign(1)
        let term = network.replicas[2]!.term
        network.restart(2)
        #expect(network.replicas[2]!.term == term && network.replicas[2]!.vote == 1)
        var voter = network.replicas[2]!
        voter.step(RaftMessage(from: 3, to: 2, term: term, body: .vote(lastIndex: 99, lastTerm: term, transfer: true)))
        #expect(voter.takeReady().messagesAfterPersist.map(\.body) == [.voteResponse(granted: false)])
    }
}
