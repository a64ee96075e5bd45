@testable import ClusDBRaft
import ClusDBModel
import Testing

/// The driver's transitions, without threads: one Ready in flight, the contract's order, and
/// every client request either answered or handed back.
@Suite("Replica driver: the node's decisions as a state machine")
struct ReplicaDriverTests {
    typealias Driver = ReplicaDriver<String>

    /// A single voter's driver, elected, its term's no-op applied.
    static func leaderDriver(timeout: UInt64 = 60) -> Driver {
        let durable = DurableState(bootstrapConfiguration: RaftConfiguration(voters: [1]))
        let replica: RaftReplica
        do {
            replica = try RaftReplica(id: 1, durable: durable, options: RaftTestNetwork.testOptions, random: RandomSource(seed: 1))
        } catch {
            preconditionFailure("an empty state starts: \(error)")
        }
        var driver = Driver(replica: replica, readNonce: 9, requestTimeoutTicks: timeout)
        var actions = driver.withReplica { $0.campaign(transfer: false) }
        // Persist and apply until nothing is left.
        while !actions.isEmpty {
            var next: [Driver.Action] = []
            for action in actions {
                switch action {
                case .persist: next += driver.persisted()
                case .apply(let batch): next += driver.applied(through: batch.last!.entry.index)
                default: break
                }
            }
            actions = next
        }
        return driver
    }

    static func kinds(_ actions: [Driver.Action]) -> [String] {
        actions.map { action in
            switch action {
            case .send: "send"
            case .persist: "persist"
            case .apply(let batch): "apply \(batch.map { "\($0.entry.index)\($0.waiter.map { ":" + $0 } ?? "")" }.joined(separator: ","))"
            case .serveRead(let waiter): "serve \(waiter)"
            case .retry(let waiter, _): "retry \(waiter)"
            }
        }
    }

    @Test("A write is persisted, then applied with its waiter; writes proposed meanwhile wait for the one persistence in flight")
    func writeFlow() {
        var driver = Self.leaderDriver()
        #expect(Self.kinds(driver.propose([1], for: "a")) == ["persist"])
        #expect(driver.isPersisting)
        // While the disk works, more writes gather (group commit): no second persist.
        #expect(Self.kinds(driver.propose([2], for: "b")).isEmpty)
        #expect(Self.kinds(driver.propose([3], for: "c")).isEmpty)
        #expect(Self.kinds(driver.persisted()) == ["apply 2:a", "persist"])
        #expect(Self.kinds(driver.applied(through: 2)).isEmpty)
        #expect(Self.kinds(driver.persisted()) == ["apply 3:b,4:c"])
        #expect(Self.kinds(driver.applied(through: 4)).isEmpty)
        #expect(driver.waitingRequests == 0)
    }

    @Test("A read the leader refuses, or one whose leader changes, is handed back at once, not at its timeout")
    func droppedReadsComeBackAtOnce() {
        let durable = DurableState(bootstrapConfiguration: RaftConfiguration(voters: [1, 2, 3]))
        let follower: RaftReplica
        do { follower = try RaftReplica(id: 2, durable: durable, random: RandomSource(seed: 2)) } catch { preconditionFailure("\(error)") }
        var driver = Driver(replica: follower, readNonce: 1)
        // The new term must reach the disk before anything else goes.
        #expect(Self.kinds(driver.receive(RaftMessage(from: 1, to: 2, term: 1, body: .heartbeat(commit: 0, context: 0)))) == ["persist"])
        _ = driver.persisted()
        let forwarded = driver.read(for: "a")
        guard case .send(let messages)? = forwarded.first, case .readIndex(let context) = messages.first?.body else {
            Issue.record("the read goes to the leader: \(Self.kinds(forwarded))")
            return
        }
        // The leader cannot serve it (it is stepping down, or too many reads wait).
        #expect(Self.kinds(driver.receive(RaftMessage(from: 1, to: 2, term: 1, body: .readIndexResponse(context: context, index: 0)))) == ["retry a"])
        _ = driver.read(for: "b")
        // A new term's leader: the read forwarded to the old one will never be answered.
        #expect(Self.kinds(driver.receive(RaftMessage(from: 3, to: 2, term: 2, body: .heartbeat(commit: 0, context: 0)))) == ["retry b", "persist"])
        #expect(driver.waitingRequests == 0)
    }

    @Test("A read is served once the state machine applied its index; a follower without a leader hands it back")
    func readFlow() {
        var driver = Self.leaderDriver()
        #expect(Self.kinds(driver.read(for: "r0")) == ["serve r0"], "nothing in flight: the no-op is applied, the read is served")
        _ = driver.propose([1], for: "w")
        // Its index is the commit index (the no-op), but the answer comes with the next Ready,
        // taken once the write's persistence is done.
        #expect(Self.kinds(driver.read(for: "r")).isEmpty)
        #expect(Self.kinds(driver.persisted()).contains("serve r"))
        let durable = DurableState(bootstrapConfiguration: RaftConfiguration(voters: [1, 2, 3]))
        let follower: RaftReplica
        do { follower = try RaftReplica(id: 2, durable: durable, random: RandomSource(seed: 2)) } catch { preconditionFailure("\(error)") }
        var lonely = Driver(replica: follower, readNonce: 1)
        #expect(Self.kinds(lonely.read(for: "x")) == ["retry x"])
        #expect(Self.kinds(lonely.propose([1], for: "y")) == ["retry y"])
    }

    @Test("A request that cannot complete is handed back after the timeout, never kept forever")
    func requestsTimeOut() {
        var driver = Self.leaderDriver(timeout: 3)
        #expect(Self.kinds(driver.propose([1], for: "w")) == ["persist"])
        // The disk never answers (a stalled fsync): the client is told to retry in time.
        #expect(Self.kinds(driver.tick()).isEmpty)
        #expect(Self.kinds(driver.tick()).isEmpty)
        #expect(Self.kinds(driver.tick()) == ["retry w"])
        #expect(driver.waitingRequests == 0)
        // When the disk finally answers, the entry is applied without anyone waiting for it.
        #expect(Self.kinds(driver.persisted()) == ["apply 2"])
    }

    @Test("A write displaced by a new proposal at its index (its entry cut by a received snapshot) is handed back")
    func displacedWriteIsHandedBack() throws {
        var state = DurableState(bootstrapConfiguration: RaftConfiguration(voters: [1, 2, 3]))
        state.hardState = HardState(term: 1, vote: 1, commit: 0)
        state.entries = (1...5).map { RaftEntry(index: $0, term: 1, kind: .noOp) }
        var driver = Driver(replica: try RaftReplica(id: 1, durable: state, options: RaftTestNetwork.testOptions, random: RandomSource(seed: 4)), readNonce: 1)
        // Node 1 leads term 2 and proposes W1 at index 7 (after its no-op at 6).
        _ = driver.withReplica { $0.campaign(transfer: true) }
        while driver.isPersisting { _ = driver.persisted() }
        _ = driver.receive(RaftMessage(from: 2, to: 1, term: 2, body: .voteResponse(granted: true)))
        while driver.isPersisting { _ = driver.persisted() }
        #expect(driver.replica.role == .leader)
        _ = driver.propose([1], for: "W1")
        while driver.isPersisting { _ = driver.persisted() }
        #expect(driver.replica.lastIndex == 7)
        // The leader of term 3 installs a snapshot whose entry 5 is of another history (term
        // 2): node 1's whole log, 6 and 7 with it, is replaced.
        let snapshot = SnapshotMetadata(index: 5, term: 2, configuration: RaftConfiguration(voters: [1, 2, 3]))
        var seen = Self.kinds(driver.receive(RaftMessage(from: 3, to: 1, term: 3, body: .installSnapshot(snapshot))))
        while driver.isPersisting { seen += Self.kinds(driver.persisted()) }
        #expect(driver.replica.lastIndex == 5)
        // Node 1 leads term 4: no-op at 6, W2 at 7 — W1's index.
        _ = driver.withReplica { $0.campaign(transfer: true) }
        while driver.isPersisting { seen += Self.kinds(driver.persisted()) }
        seen += Self.kinds(driver.receive(RaftMessage(from: 2, to: 1, term: 4, body: .voteResponse(granted: true))))
        while driver.isPersisting { seen += Self.kinds(driver.persisted()) }
        seen += Self.kinds(driver.propose([2], for: "W2"))
        #expect(driver.replica.lastIndex == 7)
        #expect(seen.contains("retry W1"), "\(seen)")
    }

    @Test("A write whose index another leader's entry took is handed back, not answered")
    func overwrittenWriteIsHandedBack() {
        var network = RaftTestNetwork(voters: [1, 2, 3])
        network.campaign(1)
        let replica: RaftReplica
        do {
            var state = network.durable[1]!
            state.appliedIndex = network.replicas[1]!.appliedIndex
            replica = try RaftReplica(id: 1, durable: state, options: RaftTestNetwork.testOptions, random: RandomSource(seed: 3))
        } catch {
            preconditionFailure("\(error)")
        }
        // Node 1 restarted as a follower of term 1; make it leader of term 2 with votes, then
        // let a leader of term 3 overwrite its uncommitted entry.
        var driver = Driver(replica: replica, readNonce: 5)
        _ = driver.withReplica { $0.campaign(transfer: true) }
        _ = driver.persisted()
        _ = driver.receive(RaftMessage(from: 2, to: 1, term: 2, body: .voteResponse(granted: true)))
        #expect(driver.replica.role == .leader)
        var actions = driver.propose([7], for: "mine")
        while actions.contains(where: { if case .persist = $0 { return true } else { return false } }) { actions = driver.persisted() }
        let myIndex = driver.replica.lastIndex
        let theirs = [RaftEntry(index: myIndex - 1, term: 3, kind: .noOp), RaftEntry(index: myIndex, term: 3, kind: .noOp)]
        let previous = myIndex - 2
        actions = driver.receive(
            RaftMessage(from: 3, to: 1, term: 3, body: .append(previousIndex: previous, previousTerm: driver.replica.term(at: previous)!, entries: theirs, commit: myIndex)))
        var seen: [String] = Self.kinds(actions)
        while driver.isPersisting { seen += Self.kinds(driver.persisted()) }
        #expect(seen.contains("retry mine"))
        #expect(!seen.contains { $0.contains(":mine") })
    }
}
