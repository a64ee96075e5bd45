import ClusDBModel
import ClusDBNode
import ClusDBStore
import ClusDBTestSupport
import Foundation
import Logging
import Testing

@Suite("Cluster node: write path, restart, checkpoints")
struct ClusterNodeTests {
    static func configuration(_ dir: TemporaryDirectory, cluster: String? = nil) -> NodeConfiguration {
        NodeConfiguration(
            dataDirectory: dir.file("data"), nodeName: "n1", clusterName: cluster, clientAddress: "127.0.0.1:0",
            peerAddress: "127.0.0.1:0")
    }

    static let logger: Logger = {
        var logger = Logger(label: "test")
        logger.logLevel = .error
        return logger
    }()

    static func set(_ node: ClusterNode, _ key: String, _ name: String, _ value: RegistryValue) async throws -> CommitResult {
        try await node.propose(.setValue(key: try KeyPath(key), name: name, value: value, createKey: true))
    }

    /// Starts a node once to set `Quorum\MaxQuorumLogSize` to its smallest value, which a node
    /// reads at start: segments then rotate every few writes and checkpoints come every few dozen.
    static func setSmallestLogLimit(_ configuration: NodeConfiguration) async throws {
        let node = try ClusterNode(configuration: configuration, logger: logger)
        defer { node.stop() }
        _ = try await set(node, "Quorum", "MaxQuorumLogSize", .dword(UInt32(Limits.maxQuorumLogSizeMin)))
    }

    /// The hive once every committed write is applied (writes with a known outcome are answered
    /// at commit, before the apply stage reaches them).
    static func applied(_ node: ClusterNode) async throws -> Hive {
        try await node.waitUntilApplied(node.status.commitIndex)
        return node.hive
    }

    static func startError(_ configuration: NodeConfiguration) -> ClusterError? {
        do {
            let node = try ClusterNode(configuration: configuration, logger: logger)
            node.stop()
            return nil
        } catch {
            return error
        }
    }

    @Test("A read after a write's answer sees it, and writes survive a restart")
    func restart() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let exported: [UInt8]
        let firstTerm: UInt64
        do {
            let node = try ClusterNode(configuration: Self.configuration(dir), logger: Self.logger)
            firstTerm = node.status.term
            let result = try await Self.set(node, #"A\B"#, "v", .string("one"))
            // Each start is a new term whose no-op comes first: the first write is at 2.
            #expect(result.index == 2 && result.outcome == .done)
            #expect(try await Self.applied(node).queryValue(key: try KeyPath(#"A\B"#), name: "v") == .string("one"))
            let failed = try await node.propose(.deleteKey(try KeyPath("A"), recursive: false))
            #expect(failed.outcome == .failed(ClusterError(.accessDenied, "key \"A\" has subkeys; delete them first or delete recursively")))
            exported = try await Self.applied(node).export(.root).jsonBytes()
            node.stop()
        }
        let node = try ClusterNode(configuration: Self.configuration(dir), logger: Self.logger)
        defer { node.stop() }
        #expect(try await Self.applied(node).export(.root).jsonBytes() == exported)
        #expect(node.status.commitIndex == 4, "the restart's no-op follows the two writes")
        #expect(node.status.term == firstTerm + 1, "each start campaigns in a new term")
        #expect(try await Self.set(node, "C", "w", .dword(1)).index == 5)
    }

    @Test("Writes answered at commit are seen by every read that starts after the answer")
    func readYourWrites() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let node = try ClusterNode(configuration: Self.configuration(dir), logger: Self.logger)
        defer { node.stop() }
        for round in 0..<300 {
            let write = HiveCommand.setValue(key: try KeyPath(components: ["R", String(round % 5)]), name: "v", value: .dword(UInt32(round)), createKey: true)
            #expect(write.outcomeKnownBeforeApply)
            let result = try await node.propose(write)
            #expect(result.outcome == .done)
            let key = try KeyPath(components: ["R", String(round % 5)])
            let seen = try await node.read { (hive) throws(ClusterError) in try await hive.queryValue(key: key, name: "v") }
            #expect(seen == .dword(UInt32(round)), "round \(round)")
            #expect(node.status.appliedIndex >= result.index)
        }
        // Writes whose outcome depends on the hive are still answered after they are applied.
        #expect(!HiveCommand.deleteValue(key: try KeyPath("R"), name: "v").outcomeKnownBeforeApply)
        let missing = try await node.propose(.deleteValue(key: try KeyPath("R"), name: "v"))
        #expect(missing.outcome == .failed(ClusterError(.fileNotFound, "value \"v\" does not exist in key \"R\"")))
    }

    @Test("Invalid input is refused before anything is logged")
    func invalidInput() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let node = try ClusterNode(configuration: Self.configuration(dir), logger: Self.logger)
        defer { node.stop() }
        await #expect(throws: ClusterError.self) {
            try await node.propose(.setValue(key: .root, name: "bad\u{0}", value: .dword(1), createKey: false))
        }
        #expect(node.status.commitIndex == 1, "only the start's no-op")
    }

    @Test("Writes that queue behind a held fsync share one group commit")
    func groupCommitSharesOneSync() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let node = try ClusterNode(configuration: Self.configuration(dir), logger: Self.logger)
        defer { node.stop() }
        _ = try await Self.set(node, "W", "first", .dword(0))
        let gate = try SyncGate(root: dir.file("data"), site: .logAppend)
        FileLayer.install(gate)
        defer { FileLayer.remove(gate) }
        // The first write holds the log stage in its fsync; 199 more queue behind it.
        let held = Task { try await Self.set(node, "W", "held", .dword(1)).index }
        try await waitUntil("the first write is in its fsync") { gate.waiting }
        let queued = Task {
            try await withThrowingTaskGroup(of: UInt64.self) { group in
                for writer in 0..<199 {
                    group.addTask { try await Self.set(node, #"W\#(writer % 10)"#, "v\(writer)", .dword(UInt32(writer))).index }
                }
                return try await group.reduce(into: [UInt64]()) { $0.append($1) }
            }
        }
        try await waitUntil("199 writes are queued") { node.status.pendingProposals == 199 }
        let groupsBefore = node.status.groupsAppended
        gate.release()
        #expect(try await held.value == 3)
        #expect(Set(try await queued.value) == Set(4...202))
        // One group for the held write, exactly one more for everything queued behind it.
        #expect(node.status.groupsAppended == groupsBefore + 2)
    }

    /// How many groups the writes form depends on scheduling (on a loaded machine the tasks may
    /// run one after another), so this test checks indexes and counts; the test above pins the
    /// sharing itself.
    @Test("Concurrent writers each get their own index, and all are applied")
    func concurrentWriters() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let node = try ClusterNode(configuration: Self.configuration(dir), logger: Self.logger)
        defer { node.stop() }
        let indexes = try await withThrowingTaskGroup(of: UInt64.self) { group in
            for writer in 0..<200 {
                group.addTask { try await Self.set(node, #"W\\#(writer % 10)"#, "v\(writer)", .dword(UInt32(writer))).index }
            }
            return try await group.reduce(into: [UInt64]()) { $0.append($1) }
        }
        #expect(Set(indexes) == Set(2...201), "after the start's no-op")
        let counts = try await Self.applied(node).counts()
        #expect(counts.values == 200)

    }

    @Test("A second node on the same data directory fails with ERROR_SHARING_VIOLATION")
    func lock() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let node = try ClusterNode(configuration: Self.configuration(dir), logger: Self.logger)
        defer { node.stop() }
        #expect(Self.startError(Self.configuration(dir))?.code == .sharingViolation)
    }

    @Test("A data directory of another cluster name is refused")
    func clusterName() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try ClusterNode(configuration: Self.configuration(dir, cluster: "alpha"), logger: Self.logger).stop()
        #expect(Self.startError(Self.configuration(dir, cluster: "beta"))?.code == .invalidParameter)
        #expect(Self.startError(Self.configuration(dir, cluster: "alpha")) == nil)
        #expect(Self.startError(Self.configuration(dir, cluster: nil)) == nil)
    }

    @Test("Past MaxQuorumLogSize a checkpoint is written and the log truncated; restart and lost hives recover")
    func checkpointAndTruncation() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let data = DataLayout(root: dir.file("data"))
        let exported: [UInt8]
        do {
            let node = try ClusterNode(configuration: Self.configuration(dir), logger: Self.logger)
            _ = try await Self.set(node, "Quorum", "MaxQuorumLogSize", .dword(UInt32(Limits.maxQuorumLogSizeMin)))
            let payload = String(repeating: "x", count: 1_000)
            // The log is truncated behind the older of the two kept checkpoints, so it takes a
            // second checkpoint (and a write after it, which lets the commit loop drop segments).
            var round = 0
            while (node.status.logFirstIndex ?? 0) <= 1 {
                _ = try await Self.set(node, #"Data\\#(round % 7)"#, "v\(round)", .string(payload))
                round += 1
                try #require(round < 5_000, "the log was never truncated")
            }
            let kept = try ClusterCheckpoints.list(in: data.quorum)
            #expect(kept.count == 2)
            let older = try ClusterCheckpoints.state(path: kept[0].path).appliedIndex
            #expect(node.status.logFirstIndex! <= older + 1, "the log still covers the older kept checkpoint")
            exported = try await Self.applied(node).export(.root).jsonBytes()
            node.stop()
        }
        #expect(try !ClusterCheckpoints.list(in: data.quorum).isEmpty)
        // Restart from the live hive.
        do {
            let node = try ClusterNode(configuration: Self.configuration(dir), logger: Self.logger)
            #expect(try await Self.applied(node).export(.root).jsonBytes() == exported)
            node.stop()
        }
        // Lose the hive entirely: checkpoint + log rebuild it.
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: data.hive + suffix) }
        do {
            let node = try ClusterNode(configuration: Self.configuration(dir), logger: Self.logger)
            #expect(try await Self.applied(node).export(.root).jsonBytes() == exported)
            node.stop()
        }
        // Damage the hive file: rebuilt the same way.
        try Data(repeating: 0x42, count: 8192).write(to: URL(fileURLWithPath: data.hive))
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: data.hive + suffix) }
        let node = try ClusterNode(configuration: Self.configuration(dir), logger: Self.logger)
        defer { node.stop() }
        #expect(try await Self.applied(node).export(.root).jsonBytes() == exported)
    }

    @Test("A damaged log before its tail stops the node with ERROR_CLUSTERLOG_CORRUPT and changes nothing")
    func corruptLog() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        do {
            let node = try ClusterNode(configuration: Self.configuration(dir), logger: Self.logger)
            for round in 0..<5 { _ = try await Self.set(node, "K", "v\(round)", .dword(UInt32(round))) }
            node.stop()
        }
        let data = DataLayout(root: dir.file("data"))
        let segment = try data.segments()[0]
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: segment)))
        bytes[QuorumLog.segmentHeaderSize + 20] ^= 0x10
        try Data(bytes).write(to: URL(fileURLWithPath: segment))
        let hiveBefore = try Data(contentsOf: URL(fileURLWithPath: data.hive))
        #expect(Self.startError(Self.configuration(dir))?.code == .clusterLogCorrupt)
        #expect(try Data(contentsOf: URL(fileURLWithPath: segment)) == Data(bytes))
        #expect(try Data(contentsOf: URL(fileURLWithPath: data.hive)) == hiveBefore)
    }

    @Test("A log that lost entries the hive applied is refused, not silently accepted")
    func logBehindHive() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        do {
            let node = try ClusterNode(configuration: Self.configuration(dir), logger: Self.logger)
            for round in 0..<3 { _ = try await Self.set(node, "K", "v\(round)", .dword(UInt32(round))) }
            node.stop()
        }
        let data = DataLayout(root: dir.file("data"))
        let segment = try data.segments()[0]
        // Cut into the last record (the file continues with preallocated zeros).
        let end = try QuorumLog.open(directory: data.log).0.segments[0].size
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: segment)))
        try Data(bytes.prefix(end - 3)).write(to: URL(fileURLWithPath: segment))
        #expect(Self.startError(Self.configuration(dir))?.code == .clusterLogCorrupt)
    }

    @Test("A torn tail that was never applied is cut and the node starts")
    func tornTailNeverApplied() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        do {
            let node = try ClusterNode(configuration: Self.configuration(dir), logger: Self.logger)
            _ = try await Self.set(node, "K", "v", .dword(1))
            node.stop()
        }
        let data = DataLayout(root: dir.file("data"))
        let segment = try data.segments()[0]
        // Half a record after the last one: what a crash during a group write leaves.
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: segment)))
        var record: [UInt8] = []
        LogRecord.append(LogEntry(index: 2, term: 1, kind: .noop, payload: Array(repeating: 1, count: 50)), group: .init(position: 0, size: 1), to: &record)
        bytes += record.prefix(30)
        try Data(bytes).write(to: URL(fileURLWithPath: segment))
        let node = try ClusterNode(configuration: Self.configuration(dir), logger: Self.logger)
        defer { node.stop() }
        #expect(node.status.commitIndex == 3, "the first run's no-op and write, and this run's no-op")
        #expect(try await Self.set(node, "K", "w", .dword(2)).index == 4)
    }
}

/// Paths inside a data directory, as `DataDirectory` lays them out.
struct DataLayout {
    let root: String
    var hive: String { root + "/hive.sqlite" }
    var quorum: String { root + "/quorum" }
    var log: String { root + "/quorum/log" }
    func segments() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: log).filter { $0.hasSuffix(".seg") }.sorted().map { log + "/" + $0 }
    }
}

@Suite("Cluster node: the pipelined write path under load")
struct ClusterNodePipelineTests {
    @Test("Concurrent writers across checkpoints and a stop: every acknowledged write survives a restart")
    func concurrentWithCheckpointsAndStop() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let configuration = ClusterNodeTests.configuration(dir)
        let node = try ClusterNode(configuration: configuration, logger: ClusterNodeTests.logger)
        _ = try await ClusterNodeTests.set(node, "Quorum", "MaxQuorumLogSize", .dword(UInt32(Limits.maxQuorumLogSizeMin)))
        let payload = String(repeating: "z", count: 500)
        let acknowledged = try await withThrowingTaskGroup(of: [(String, String)].self) { group in
            for writer in 0..<8 {
                group.addTask {
                    var done: [(String, String)] = []
                    for round in 0..<2_000 {
                        let key = #"P\w\#(writer)"#
                        let name = "r\(round)"
                        do {
                            let result = try await ClusterNodeTests.set(node, key, name, .string(payload + name))
                            #expect(result.outcome == .done)
                            done.append((key, name))
                        } catch {
                            #expect((error as? ClusterError)?.code == .clusterShuttingDown)
                            break
                        }
                    }
                    return done
                }
            }
            // Stop while the writers are still going: once a quarter of the load is answered.
            try await waitUntil("2,000 writes are committed") { node.status.commitIndex >= 2_001 }
            node.stop()
            return try await group.reduce(into: [(String, String)]()) { $0 += $1 }
        }
        #expect(!acknowledged.isEmpty)
        #expect(acknowledged.count < 8 * 2_000, "the stop came after the load; it should interrupt it")
        let restarted = try ClusterNode(configuration: configuration, logger: ClusterNodeTests.logger)
        defer { restarted.stop() }
        for (key, name) in acknowledged {
            #expect(try await ClusterNodeTests.applied(restarted).queryValue(key: try KeyPath(key), name: name) == .string(payload + name))
        }
        let counts = try await ClusterNodeTests.applied(restarted).counts()
        #expect(counts.values == acknowledged.count + 1)
        #expect(restarted.status.commitIndex == restarted.status.appliedIndex)
    }
}
