@testable import ClusDBRaft
import Testing

@Suite("Raft requests: ReadIndex reads, leadership transfer, single-server membership changes")
struct RequestTests {
    static func leaderOfThree() -> RaftTestNetwork {
        var network = RaftTestNetwork(voters: [1, 2, 3])
        network.campaign(1)
        network.propose(1, "a")
        return network
    }

    @Test("A leader's read is ready only after a quorum answered its heartbeat round, at the commit index")
    func leaderRead() {
        var network = Self.leaderOfThree()
        _ = network.replicas[1]!.requestRead(context: 7)
        #expect(network.replicas[1]!.takeReady().readStates.isEmpty, "not before a quorum confirmed the leadership")
        network.replicas[1]!.broadcastHeartbeat(context: network.replicas[1]!.readRound)
        network.settle()
        #expect(network.readStates[1] == [ReadState(context: 7, index: network.replicas[1]!.commitIndex)])
    }

    @Test("A leader cut off from the quorum answers no read; the broken switch answers at once (a stale read)")
    func isolatedLeaderRead() {
        var network = Self.leaderOfThree()
        network.isolate(1)
        _ = network.replicas[1]!.requestRead(context: 1)
        network.settle()
        #expect(network.readStates[1, default: []].isEmpty)

        var options = RaftTestNetwork.testOptions
        options.brokenProtocol = [.readWithoutReadIndex]
        var broken = RaftTestNetwork(voters: [1, 2, 3], options: options)
        broken.campaign(1)
        broken.isolate(1)
        _ = broken.replicas[1]!.requestRead(context: 1)
        broken.settle()
        #expect(broken.readStates[1]?.count == 1)
    }

    @Test("A follower's read gets its index from the leader")
    func followerRead() {
        var network = Self.leaderOfThree()
        #expect((try? network.replicas[2]!.requestRead(context: 9).get()) != nil)
        network.settle()
        #expect(network.readStates[2] == [ReadState(context: 9, index: network.replicas[1]!.commitIndex)])
    }

    @Test("A new leader answers reads only once an entry of its term is committed")
    func readWaitsForTermCommit() {
        var network = RaftTestNetwork(voters: [1, 2, 3])
        // Elected, but its no-op reaches nobody yet.
        network.drop = { message in
            if case .append = message.body { return true }
            return false
        }
        network.campaign(1)
        #expect(network.leaders() == [1])
        _ = network.replicas[1]!.requestRead(context: 5)
        network.tick([1], times: 2)
        #expect(network.readStates[1, default: []].isEmpty)
        network.drop = { _ in false }
        network.tick([1], times: 2)
        #expect(network.readStates[1]?.map(\.context) == [5])
        #expect(network.readStates[1]![0].index >= 1)
    }

    @Test("Leadership transfer: the target is caught up, told to campaign, and leads the next term; proposals wait")
    func transfer() {
        var network = Self.leaderOfThree()
        let term = network.replicas[1]!.term
        network.isolate(2)
        network.propose(1, "b")  // 2 falls behind
        network.isolate(2, heal: true)
        #expect((try? network.replicas[1]!.transferLeadership(to: 2).get()) != nil)
        #expect(network.replicas[1]!.propose([1]) == .failure(.transferringLeadership))
        network.tick([1])
        #expect(network.leaders() == [2])
        #expect(network.replicas[2]!.term == term + 1)
        #expect(network.appliedCommands(2) == ["a", "b"])
        #expect(network.replicas[1]!.transferLeadership(to: 3).refusal == .notLeader(leader: 2))
        #expect(network.replicas[2]!.transferLeadership(to: 2).refusal == .invalidTransferTarget)
    }

    @Test("A learner receives the log without voting, is promoted once caught up, and then counts")
    func learnerLifecycle() {
        var network = Self.leaderOfThree()
        let bootstrap = network.durable[2]!.bootstrapConfiguration
        #expect(network.replicas[1]!.proposeConfigurationChange(.addLearner(4)).isSuccess)
        network.start(4, from: DurableState(bootstrapConfiguration: bootstrap))
        network.settle()
        network.tick([1])
        #expect(network.replicas[1]!.configuration.learners == [4])
        #expect(network.appliedCommands(4) == ["a"])
        #expect(!network.replicas[4]!.isPromotable)
        network.tick([4], times: 5 * RaftOptions().electionTicks)
        #expect(network.replicas[4]!.role == .follower, "a learner never campaigns")
        network.isolate(4)
        network.propose(1, "b")
        #expect(network.replicas[1]!.proposeConfigurationChange(.promoteLearner(4)) == .failure(.learnerNotCaughtUp))
        network.isolate(4, heal: true)
        network.tick([1])
        #expect(network.replicas[1]!.proposeConfigurationChange(.promoteLearner(4)).isSuccess)
        network.tick([1])
        #expect(network.replicas[1]!.configuration.voters == [1, 2, 3, 4])
        #expect(network.replicas[4]!.configuration.voters == [1, 2, 3, 4])
        // Now 3 of 4 are needed: with two voters cut off nothing commits.
        network.isolate(3)
        network.isolate(4)
        let before = network.replicas[1]!.commitIndex
        network.propose(1, "c")
        #expect(network.replicas[1]!.commitIndex == before)
    }

    @Test("One change at a time, and none before the leader committed an entry of its term (Ongaro 2015)")
    func changeGates() {
        var network = RaftTestNetwork(voters: [1, 2, 3])
        network.drop = { message in
            if case .append = message.body { return true }
            return false
        }
        network.campaign(1)
        #expect(network.replicas[1]!.proposeConfigurationChange(.addLearner(4)) == .failure(.configurationChangeInProgress))
        network.drop = { _ in false }
        network.tick([1])
        #expect(network.replicas[1]!.proposeConfigurationChange(.addLearner(4)).isSuccess)
        #expect(network.replicas[1]!.proposeConfigurationChange(.addLearner(5)) == .failure(.configurationChangeInProgress))
        #expect(network.replicas[1]!.proposeConfigurationChange(.remove(9)) == .failure(.configurationChangeInProgress))
        network.settle()
        #expect(network.replicas[1]!.proposeConfigurationChange(.remove(9)) == .failure(.invalidConfigurationChange))
        #expect(network.replicas[1]!.proposeConfigurationChange(.promoteLearner(2)) == .failure(.invalidConfigurationChange))
    }

    @Test("Removing the leader: it commits its own removal, steps down, never campaigns again; the others elect a leader")
    func removeLeader() {
        var network = Self.leaderOfThree()
        #expect(network.replicas[1]!.proposeConfigurationChange(.remove(1)).isSuccess)
        network.settle()
        network.tick([1])
        #expect(network.replicas[1]!.role == .follower)
        #expect(!network.replicas[1]!.isPromotable)
        network.tick(times: 3 * RaftOptions().electionTicks)
        let leaders = network.leaders()
        #expect(leaders.count == 1 && leaders[0] != 1)
        network.propose(leaders[0], "after")
        #expect(network.appliedCommands(leaders[0]) == ["a", "after"])
        #expect(network.replicas[leaders[0]]!.configuration.voters == [2, 3])
    }
}

extension Result {
    var isSuccess: Bool {
        if case .success = self { return true }
        return false
    }

    var refusal: Failure? {
        if case .failure(let failure) = self { return failure }
        return nil
    }
}
