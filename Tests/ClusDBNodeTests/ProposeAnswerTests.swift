@testable import ClusDBNode
import ClusDBModel
import ClusDBRaft
import ClusDBStore
import ClusDBTestSupport
import Foundation
import Synchronization
import Testing

/// Goal: the callback form of propose (used on network event loops) answers every proposal
/// exactly once with what the async form would return, and the apply stage's gathering of
/// committed groups never loses, reorders or over-fills a transaction. Method: many proposals
/// fired without waiting, mixing writes answered at commit, writes answered once applied and
/// invalid ones; the batch-taking rule on hand-made queues.
@Suite("Cluster node: callback proposals and gathered applies")
struct ProposeAnswerTests {
    @Test("propose(_:answer:) answers each proposal once, with the outcome the async form gives")
    func answersOnce() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let node = try ClusterNode(configuration: ClusterNodeTests.configuration(dir), logger: ClusterNodeTests.logger)
        defer { node.stop() }
        // The index of the start's no-op: writes follow it.
        let base = node.status.commitIndex
        let total = 400
        let (stream, sink) = AsyncStream.makeStream(of: (Int, Result<CommitResult, ClusterError>).self)
        // An invalid write is refused before this call returns, without a log entry.
        let refused = Mutex<Result<CommitResult, ClusterError>?>(nil)
        node.propose(.setValue(key: .root, name: "bad\u{0}", value: .dword(1), createKey: false)) { result in
            refused.withLock { $0 = result }
        }
        let refusal = refused.withLock { $0 }
        var refusalCode: Win32Error?
        if case .failure(let error)? = refusal { refusalCode = error.code }
        #expect(refusalCode == .invalidParameter)
        // Every call of every answer, counted apart from the stream (which stops at `total`).
        let calls = Atomic<Int>(0)
        for number in 0..<total {
            let command: HiveCommand =
                number % 10 == 9
                ? .deleteValue(key: try KeyPath("Gone"), name: "v\(number)")  // answered once applied: a failed outcome
                : .setValue(key: try KeyPath(#"Answer\\#(number % 7)"#), name: "v\(number)", value: .dword(UInt32(number)), createKey: true)
            node.propose(command) { result in
                calls.add(1, ordering: .relaxed)
                sink.yield((number, result))
            }
        }
        var answered: [Int: Result<CommitResult, ClusterError>] = [:]
        for await (number, result) in stream {
            #expect(answered.updateValue(result, forKey: number) == nil, "proposal \(number) answered twice")
            if answered.count == total { break }
        }
        sink.finish()
        var indexes: [UInt64] = []
        for (number, result) in answered {
            let committed = try result.get()
            indexes.append(committed.index)
            if number % 10 == 9 {
                var code: Win32Error?
                if case .failed(let error) = committed.outcome { code = error.code }
                #expect(code == .fileNotFound, "proposal \(number): \(committed.outcome)")
            } else {
                #expect(committed.outcome == .done, "proposal \(number)")
            }
        }
        #expect(Set(indexes) == Set(base + 1...base + UInt64(total)), "one index each, none for the refused write")
        try await node.waitUntilApplied(base + UInt64(total))
        let counts = try await node.hive.counts()
        #expect(counts.values == total - total / 10)
        let status = node.status
        #expect(status.appliedIndex == base + UInt64(total) && status.commitIndex == base + UInt64(total))
        #expect(status.applyTransactions >= 1 && status.applyTransactions <= status.groupsAppended)
        node.stop()
        #expect(calls.load(ordering: .relaxed) == total, "no proposal answered twice, even after the stream stopped reading")
    }

    /// A committed group of `count` entries starting at `first`, each with a `bytes`-byte payload.
    static func group(first: UInt64, count: Int, bytes: Int = 8) throws -> ClusterNode.CommittedGroup {
        let command = HiveCommand.setValue(key: try KeyPath("K"), name: "v", value: .dword(1), createKey: true)
        let proposal = ClusterNode.Proposal(command: command, payload: [UInt8](repeating: 0, count: bytes), answer: nil)
        let entries = (0..<count).map { RaftEntry(index: first + UInt64($0), term: 1, kind: .command, payload: proposal.payload) }
        return ClusterNode.CommittedGroup(entries: entries, proposals: Array(repeating: proposal, count: count))
    }

    static func state(_ groups: [ClusterNode.CommittedGroup]) -> ClusterNode.Shared {
        let identity = NodeIdentityView(clusterName: "c", clusterID: "i", nodeName: "n", nodeID: "d", restoreGeneration: 0)
        let replica: RaftReplica
        do {
            replica = try RaftReplica(id: 1, durable: DurableState(bootstrapConfiguration: RaftConfiguration(voters: [1])), random: RandomSource(seed: 1))
        } catch {
            preconditionFailure("an empty state starts: \(error)")
        }
        var state = ClusterNode.Shared(
            driver: ReplicaDriver(replica: replica, readNonce: 1),
            status: NodeStatus(
                identity: identity, term: 1, commitIndex: 0, appliedIndex: 0, checkpointIndex: 0, logFirstIndex: nil,
                logBytes: 0))
        state.committed = groups
        state.committedEntries = groups.reduce(0) { $0 + $1.entries.count }
        return state
    }

    @Test("Gathered groups merge in order within the entry and byte limits; a large group goes alone")
    func takeApplyBatch() throws {
        let sizes = [3, 5, Limits.applyBatchEntriesMax - 4, 2, Limits.applyBatchEntriesMax + 10, 1]
        var groups: [ClusterNode.CommittedGroup] = []
        var next: UInt64 = 1
        for size in sizes {
            groups.append(try Self.group(first: next, count: size))
            next += UInt64(size)
        }
        var state = Self.state(groups)
        var batches: [(UInt64, Int)] = []
        while !state.committed.isEmpty {
            let batch = ClusterNode.takeApplyBatch(from: &state)
            batches.append((batch.firstIndex, batch.entries.count))
        }
        #expect(batches.map(\.1) == [8, Limits.applyBatchEntriesMax - 2, Limits.applyBatchEntriesMax + 10, 1])
        #expect(batches.map(\.0) == [1, 9, 9 + UInt64(Limits.applyBatchEntriesMax - 2), 9 + UInt64(2 * Limits.applyBatchEntriesMax + 8)])
        #expect(state.committedEntries == 0 && state.committedAnswersPending == 0)

        let large = Limits.applyBatchBytesMax / 2 + 1
        var byBytes = Self.state([try Self.group(first: 1, count: 1, bytes: large), try Self.group(first: 2, count: 1, bytes: large)])
        #expect(ClusterNode.takeApplyBatch(from: &byBytes).entries.count == 1, "two halves over the byte limit go apart")
        #expect(ClusterNode.takeApplyBatch(from: &byBytes).firstIndex == 2)
    }

    @Test("The only member keeps no applied entry in memory: the replica's log is compacted after each apply")
    func appliedEntriesLeaveMemory() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let node = try ClusterNode(configuration: ClusterNodeTests.configuration(dir), logger: ClusterNodeTests.logger)
        defer { node.stop() }
        for number in 0..<50 { _ = try await ClusterNodeTests.set(node, "K", "v\(number)", .dword(UInt32(number))) }
        try await node.waitUntilApplied(node.status.commitIndex)
        let (first, applied) = node.shared.withLock { ($0.driver.replica.firstIndex, $0.driver.replica.appliedIndex) }
        #expect(first == applied + 1, "entries after \(first - 1) are held, \(applied) applied")
    }

    @Test("A proposer never runs the log stage: the first queued write wakes the commit thread, later ones only queue")
    func proposersOnlyQueue() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let node = try ClusterNode(configuration: ClusterNodeTests.configuration(dir), logger: ClusterNodeTests.logger)
        defer { node.stop() }
        var state = Self.state([])
        guard let known = try Self.group(first: 1, count: 1).proposals[0] else { return }
        guard case .queued(wakeCommitThread: true) = node.admit(&state, known) else {
            Issue.record("the first write on an idle node must go to the commit thread")
            return
        }
        #expect(state.logStageHeld && state.commitThreadHoldsLogStage && state.pending.count == 1)
        guard case .queued(wakeCommitThread: false) = node.admit(&state, known) else {
            Issue.record("a write behind a leading commit thread only queues")
            return
        }
        #expect(state.pending.count == 2)
    }

    @Test("The apply stage gathers only while nobody waits for it, and the first to hurry it wakes it")
    func gatherRule() throws {
        var state = Self.state([try Self.group(first: 1, count: 3)])
        #expect(ClusterNode.applyMayGather(state), "answered writes alone may gather")
        state.committedAnswersPending = 1
        #expect(!ClusterNode.applyMayGather(state), "a proposer waits for its apply")
        state.committedAnswersPending = 0
        state.checkpointAwaitsApply = true
        #expect(!ClusterNode.applyMayGather(state), "a checkpoint waits")
        state.checkpointAwaitsApply = false
        state.stopping = true
        #expect(!ClusterNode.applyMayGather(state), "the node stops")
        state.stopping = false
        state.committedEntries = Limits.applyGatherEntriesTarget
        #expect(!ClusterNode.applyMayGather(state), "enough has gathered")
        state.committedEntries = 3
        state.applyGathering = true
        #expect(ClusterNode.hurryApply(&state), "the first to hurry a gathering apply stage wakes it")
        #expect(!ClusterNode.hurryApply(&state), "later ones do not signal again")
    }
}
