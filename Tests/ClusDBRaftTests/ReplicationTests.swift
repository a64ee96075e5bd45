@testable import ClusDBRaft
import Testing

@Suite("Raft replication: log matching, Figures 7 and 8, durability before acknowledgement")
struct ReplicationTests {
    /// A durable state holding entries with `terms` (index 1 on), in `term`, committed up to `commit`.
    static func state(terms: [UInt64], term: UInt64, commit: UInt64 = 0, voters: Set<NodeID>) -> DurableState {
        let entries = terms.enumerated().map { RaftEntry(index: UInt64($0.offset + 1), term: $0.element, kind: .command, payload: [UInt8($0.offset)]) }
        return DurableState(
            hardState: HardState(term: term, vote: nil, commit: commit), entries: entries, appliedIndex: 0,
            bootstrapConfiguration: RaftConfiguration(voters: voters))
    }

    @Test("Figure 7: a new leader brings six divergent followers to its log; term hints take few round trips")
    func figure7() {
        let voters: Set<NodeID> = [1, 2, 3, 4, 5, 6, 7]
        var network = RaftTestNetwork(voters: voters.sorted())
        let leaderLog: [UInt64] = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6]
        let followers: [NodeID: [UInt64]] = [
            2: [1, 1, 1, 4, 4, 5, 5, 6, 6],  // (a)
            3: [1, 1, 1, 4],  // (b)
            4: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],  // (c)
            5: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],  // (d)
            6: [1, 1, 1, 4, 4, 4, 4],  // (e)
            7: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],  // (f)
        ]
        network.start(1, from: Self.state(terms: leaderLog, term: 7, voters: voters))
        for (node, terms) in followers { network.start(node, from: Self.state(terms: terms, term: 7, voters: voters)) }
        network.campaign(1)
        #expect(network.leaders() == [1])
        #expect(network.replicas[1]!.term == 8)
        let expected = leaderLog + [8]
        for node in voters.sorted() {
            #expect(network.durable[node]!.entries.map(\.term) == expected, "node \(node)")
            #expect(network.replicas[node]!.commitIndex == 11, "node \(node): \(network.replicas[node]!.role) log \(network.replicas[node]!.lastIndex)")
        }
        // (f) diverges from index 4 on in terms 2 and 3: backing off by term takes at most a
        // round trip per term, not one per entry.
        let rejectionsToF = network.delivered.filter {
            if $0.from == 7, case .appendResponse(_, true, _, _) = $0.body { return true }
            return false
        }.count
        #expect(rejectionsToF <= 3)
    }

    @Test("Figure 8: an entry of an earlier term is not committed by counting replicas; the broken switch does it")
    func figure8() {
        for broken in [false, true] {
            var options = RaftTestNetwork.testOptions
            options.maxAppendBytes = 1  // one entry per append, so index 2 can travel without index 3
            if broken { options.brokenProtocol = [.commitPreviousTermByCounting] }
            let voters: Set<NodeID> = [1, 2, 3, 4, 5]
            var network = RaftTestNetwork(voters: voters.sorted(), options: options)
            // S1 led term 2 and wrote index 2; S5 led term 3 and wrote its own index 2 (and has
            // heard of term 4 since).
            network.start(1, from: Self.state(terms: [1, 2], term: 3, commit: 1, voters: voters), options: options)
            network.start(2, from: Self.state(terms: [1], term: 3, commit: 1, voters: voters), options: options)
            network.start(3, from: Self.state(terms: [1], term: 3, commit: 1, voters: voters), options: options)
            network.start(4, from: Self.state(terms: [1], term: 3, commit: 1, voters: voters), options: options)
            network.start(5, from: Self.state(terms: [1, 3], term: 4, commit: 1, voters: voters), options: options)
            // S1 is elected in term 4 (S5, whose log is newer, is away) and replicates index 2
            // to S2 and S3; its no-op (index 3) reaches nobody: S2 and S3 refuse it once (they
            // lack index 2, which makes S1 back off to it), later copies are lost; S4 hears
            // nothing after voting.
            network.isolate(5)
            final class Count: @unchecked Sendable { var seen: [NodeID: Int] = [:] }
            let count = Count()
            network.drop = { message in
                guard case .append(_, _, let entries, _) = message.body else { return false }
                guard message.to == 2 || message.to == 3 else { return true }
                guard entries.contains(where: { $0.index >= 3 }) else { return false }
                count.seen[message.to, default: 0] += 1
                return count.seen[message.to]! > 1
            }
            network.campaign(1)
            network.tick([1], times: 3)
            #expect(network.leaders() == [1])
            #expect(network.durable[2]!.entries.map(\.term) == [1, 2])
            #expect(network.durable[3]!.entries.map(\.term) == [1, 2], "index 2 of term 2 is on a majority (S1, S2, S3)")
            if broken {
                #expect(network.replicas[1]!.commitIndex == 2, "the broken switch commits it by counting")
            } else {
                #expect(network.replicas[1]!.commitIndex == 1, "a majority holds it, yet it is not committed")
                // S1 fails; S5 can still be elected (its last term, 3, is newer) and overwrite
                // index 2 everywhere: which is why it must not have been committed.
                network.drop = { _ in false }
                network.isolate(1)
                network.isolate(5, heal: true)
                network.isolate(5, from: [1])
                network.campaign(5, transfer: true)
                #expect(network.leaders().contains(5))
                for node: NodeID in [2, 3, 4, 5] {
                    #expect(network.durable[node]!.entries.map(\.term).prefix(2) == [1, 3], "node \(node)")
                }
            }
        }
    }

    @Test("A follower acknowledges an append only after persisting it, and applies only what it has persisted")
    func durabilityBeforeAcknowledgement() {
        var network = RaftTestNetwork(voters: [1, 2, 3])
        network.campaign(1)
        _ = network.replicas[1]!.propose(Array("x".utf8))
        let appends = network.replicas[1]!.takeReady().messages.filter { $0.to == 2 }
        #expect(appends.count == 1)
        var follower = network.replicas[2]!
        follower.step(appends[0])
        let ready = follower.takeReady()
        #expect(ready.entries.map(\.kind) == [.command])
        #expect(ready.messages.isEmpty, "nothing acknowledges before the entries are durable")
        guard case .appendResponse(let index, false, _, _)? = ready.messagesAfterPersist.first?.body else {
            Issue.record("an acknowledgement waits for persistence")
            return
        }
        #expect(index == ready.entries.last!.index)
        // The leader's next heartbeat commits it; it is applied only once reported durable.
        follower.step(RaftMessage(from: 1, to: 2, term: follower.term, body: .heartbeat(commit: index, context: 0)))
        #expect(follower.takeReady().committedEntries.isEmpty, "committed but not yet durable here")
        follower.persisted(index: index, term: ready.entries.last!.term)
        #expect(follower.takeReady().committedEntries.map(\.index) == [index])
    }

    @Test("The leader counts itself only once its own append is durable")
    func leaderCountsItselfWhenDurable() {
        var network = RaftTestNetwork(voters: [1])
        network.tick(times: 2 * RaftOptions().electionTicks)
        var leader = network.replicas[1]!
        let index = try? leader.propose(Array("y".utf8)).get()
        let ready = leader.takeReady()
        #expect(ready.entries.map(\.index) == [index!])
        #expect(leader.commitIndex < index!, "not committed before it is durable, even with one voter")
        leader.persisted(index: index!, term: leader.term)
        #expect(leader.commitIndex == index!)
    }

    @Test("Every proposal between two Readys goes to each follower in one append (group commit)")
    func groupCommit() {
        var network = RaftTestNetwork(voters: [1, 2, 3])
        network.campaign(1)
        for value in ["a", "b", "c", "d"] { _ = network.replicas[1]!.propose(Array(value.utf8)) }
        let ready = network.replicas[1]!.takeReady()
        #expect(ready.entries.count == 4)
        #expect(ready.messages.filter { $0.to == 2 }.count == 1)
        network.send(ready.messages)
        let last = ready.entries.last!
        network.replicas[1]!.persisted(index: last.index, term: last.term)
        network.settle()
        for node: NodeID in [1, 2, 3] { #expect(network.appliedCommands(node) == ["a", "b", "c", "d"]) }
    }

    @Test("Flow control: at most maxInflightAppends appends are unanswered per follower")
    func inflightWindow() {
        var options = RaftTestNetwork.testOptions
        options.maxInflightAppends = 2
        options.maxAppendBytes = 1
        var network = RaftTestNetwork(voters: [1, 2], options: options)
        network.campaign(1)
        for value in ["a", "b", "c", "d", "e"] { _ = network.replicas[1]!.propose(Array(value.utf8)) }
        let ready = network.replicas[1]!.takeReady()
        #expect(ready.messages.filter { $0.to == 2 }.count == 2, "the window holds the rest back")
        network.send(ready.messages)
        let last = ready.entries.last!
        network.replicas[1]!.persisted(index: last.index, term: last.term)
        network.settle()
        #expect(network.appliedCommands(2) == ["a", "b", "c", "d", "e"], "answers open the window again")
    }

    @Test("A full window of lost appends frees itself at the follower's next heartbeat answer")
    func lostWindowRecovers() {
        var options = RaftTestNetwork.testOptions
        options.maxInflightAppends = 2
        options.maxAppendBytes = 1
        var network = RaftTestNetwork(voters: [1, 2], options: options)
        network.campaign(1)
        network.drop = { message in
            if case .append = message.body { return true }
            return false
        }
        for value in ["a", "b", "c"] { network.propose(1, value) }
        network.tick([1], times: 3)  // heartbeats and their answers still flow
        network.drop = { _ in false }
        network.tick([1], times: 3)
        #expect(network.appliedCommands(2) == ["a", "b", "c"])
    }

    @Test("A lagging follower behind the compacted log receives the snapshot, then the rest")
    func snapshotToLaggingFollower() {
        var network = RaftTestNetwork(voters: [1, 2, 3])
        network.campaign(1)
        network.isolate(3)
        for value in ["a", "b", "c"] { network.propose(1, value) }
        let applied = network.replicas[1]!.appliedIndex
        network.replicas[1]!.compact(through: applied)
        #expect(network.replicas[1]!.firstIndex == applied + 1)
        network.isolate(3, heal: true)
        network.tick([1])
        #expect(network.installed[3]?.map(\.index) == [applied])
        network.replicas[1]!.snapshotSent(to: 3, index: applied, succeeded: true)
        network.propose(1, "d")
        #expect(network.replicas[3]!.commitIndex == network.replicas[1]!.commitIndex)
        #expect(network.appliedCommands(3) == ["d"], "entries after the snapshot are applied on top of its image")
    }
}
