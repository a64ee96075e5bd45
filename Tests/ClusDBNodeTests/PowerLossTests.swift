import ClusDBBackup
import ClusDBModel
import ClusDBNode
import ClusDBStore
import ClusDBTestSupport
import Foundation
import Synchronization
import Testing

/// SIGKILL keeps the page cache, so crash tests with real processes cannot see a missing fsync.
/// These tests run the node on a ``PowerLossDisk``: at every sync (just before it) and after
/// every answered write they take the image a power loss would leave at that instant, start a
/// node on each image, and check that every write answered before the image is there. Then they
/// switch off one sync of the write path at a time and show that the same matrix fails.
@Suite("Power loss: every answered write survives, and each sync on the write path matters")
struct PowerLossTests {
    /// One image a power loss would leave, with the writes answered before it was taken.
    struct Taken: Sendable {
        var image: PowerLossDisk.Image
        var answered: Set<Int>
        var at: String
    }

    /// Images taken during a workload.
    final class Images: @unchecked Sendable {
        let lock = Mutex<[Taken]>([])
        /// Writes answered so far, recorded by the node's answering thread itself: a write
        /// answered before its sync would show up here before that sync's image is taken.
        let answered = Mutex<Set<Int>>([])
        /// Also take torn images (unsynced writes kept as a prefix, or as random whole pages)
        /// before each log append.
        let tears: Bool
        let seed = Atomic<UInt64>(1)

        init(tears: Bool) { self.tears = tears }

        func take(_ disk: PowerLossDisk, at label: String, site: SyncSite? = nil) {
            // The answers first: everything they hold was durable before the image is taken.
            let answered = answered.withLock { $0 }
            var taken = [Taken(image: disk.image(), answered: answered, at: label)]
            if tears && site == .logAppend {
                let seed = seed.add(1, ordering: .relaxed).newValue
                taken.append(Taken(image: disk.image(tear: .prefix(seed: seed)), answered: answered, at: label + " torn as a prefix"))
                taken.append(Taken(image: disk.image(tear: .pages(seed: seed)), answered: answered, at: label + " torn by pages"))
            }
            lock.withLock { $0 += taken }
        }
    }

    /// Writes of the workload: 3 KiB each, so that with the smallest `MaxQuorumLogSize` the log
    /// rotates segments and the node writes several checkpoints and truncates behind them.
    static let minimumWrites = 72
    /// Most writes of the workload.
    static let writes = 400
    static func value(_ number: Int) -> RegistryValue {
        .string(String(repeating: Character(UnicodeScalar(UInt8(65 + number % 26))), count: 3_000) + "\(number)")
    }

    /// The live hive syncs itself (SQLite); images leave it out, so a node started on an image
    /// rebuilds it from the checkpoints and the log whose syncs are under test.
    static let trusted: @Sendable (String) -> Bool = { $0.hasPrefix("hive.sqlite") || $0 == "LOCK" }

    /// Proposes write `number` and records its answer on the answering thread.
    static func write(_ node: ClusterNode, _ number: Int, _ images: Images) async throws {
        let command = HiveCommand.setValue(key: try KeyPath("W"), name: "v\(number)", value: value(number), createKey: true)
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<CommitResult, ClusterError>, Never>) in
            node.propose(command) { result in
                if case .success = result { images.answered.withLock { _ = $0.insert(number) } }
                continuation.resume(returning: result)
            }
        }
        _ = try result.get()
    }

    /// Runs the workload on a fresh data directory with `writers` concurrent writers (several
    /// make groups of several entries), `skipping` one sync site.
    static func workload(
        _ dir: TemporaryDirectory, skipping: SyncSite?, writers: Int = 1, tears: Bool = false
    ) async throws -> (Images, [SyncSite: Int]) {
        let images = Images(tears: tears)
        let data = dir.file("data")
        // The smallest MaxQuorumLogSize, read at start: segments rotate every few writes and
        // checkpoints come every ~21 writes from the first one on.
        try await ClusterNodeTests.setSmallestLogLimit(ClusterNodeTests.configuration(dir))
        let box = Mutex<PowerLossDisk?>(nil)
        let disk = try PowerLossDisk(root: data, isTrusted: trusted) { site in
            guard let disk = box.withLock({ $0 }) else { return }
            images.take(disk, at: "before \(site)", site: site)
        }
        box.withLock { $0 = disk }
        if let skipping { disk.skippedSites = [skipping] }
        FileLayer.install(disk)
        defer { FileLayer.remove(disk) }
        let node = try ClusterNode(configuration: ClusterNodeTests.configuration(dir), logger: ClusterNodeTests.logger)
        do {
            // At least `minimumWrites`, and on until the fourth checkpoint is written and the log
            // truncated behind the third (checkpoints run on their own thread, so their timing
            // varies from run to run).
            let next = NumberDispenser()
            let quorum = FileSystem.join(data, "quorum")
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<writers {
                    group.addTask {
                        while true {
                            let number = next.take()
                            if number >= minimumWrites, (try ClusterCheckpoints.list(in: quorum).last?.sequence ?? 0) >= 4 { return }
                            try #require(number < writes, "the workload never wrote four checkpoints")
                            try await Self.write(node, number, images)
                            images.take(disk, at: "after write \(number)")
                        }
                    }
                }
                try await group.waitForAll()
            }
            // Let the last checkpoint finish (it may still be running) before stopping.
            try await node.waitUntilApplied(node.status.commitIndex)
        } catch {
            node.stop()
            throw error
        }
        node.stop()
        return (images, disk.skippedCounts)
    }

    /// Starts a node on `image` and checks it: it starts, holds every write answered before the
    /// image, and every other value it holds is one that was proposed, unchanged.
    /// - Returns: nil when all holds, else what failed.
    static func check(_ image: PowerLossDisk.Image, answered: Set<Int>, in dir: TemporaryDirectory, name: String) async -> String? {
        let root = dir.file(name)
        do {
            try PowerLossDisk.materialize(image, at: FileSystem.join(root, "data"))
            let configuration = NodeConfiguration(
                dataDirectory: FileSystem.join(root, "data"), nodeName: "n1", clusterName: nil, clientAddress: "127.0.0.1:0",
                peerAddress: "127.0.0.1:0")
            let node = try ClusterNode(configuration: configuration, logger: ClusterNodeTests.logger)
            defer { node.stop() }
            let hive = try await ClusterNodeTests.applied(node)
            let key = try KeyPath("W")
            var present = 0
            for number in 0..<writes {
                guard let value = try? await hive.queryValue(key: key, name: "v\(number)") else {
                    if answered.contains(number) { return "write \(number) was answered but is missing" }
                    continue
                }
                guard value == Self.value(number) else { return "write \(number) holds another value" }
                present += 1
            }
            let counts = try await hive.counts()
            let expected = present + 1
            if counts.values != expected { return "the hive holds \(counts.values) values, expected \(expected)" }
            return nil
        } catch {
            return "start-up failed: \(error)"
        }
    }

    /// The distinct images of a workload, in order, each with the most writes answered before
    /// any of its copies (consecutive images are often equal: nothing was synced between them).
    static func distinct(_ images: Images) -> [Taken] {
        var result: [Taken] = []
        for taken in images.lock.withLock({ $0 }) {
            if let last = result.last, last.image.files == taken.image.files, last.image.directories == taken.image.directories {
                result[result.count - 1].answered.formUnion(taken.answered)
            } else {
                result.append(taken)
            }
        }
        return result
    }

    /// Checks images two at a time (two cores); stops at the first failure when `firstOnly`.
    static func failures(of images: [Taken], in dir: TemporaryDirectory, firstOnly: Bool) async -> [String] {
        var failures: [String] = []
        for start in stride(from: 0, to: images.count, by: 2) {
            let pair = Array(images.enumerated())[start..<min(start + 2, images.count)]
            let found = await withTaskGroup(of: String?.self) { group in
                for (number, taken) in pair {
                    group.addTask {
                        defer { try? FileManager.default.removeItem(atPath: dir.file("image\(number)")) }
                        return await Self.check(taken.image, answered: taken.answered, in: dir, name: "image\(number)").map { "\(taken.at): \($0)" }
                    }
                }
                return await group.reduce(into: [String]()) { if let failure = $1 { $0.append(failure) } }
            }
            failures += found
            if firstOnly && !failures.isEmpty { break }
        }
        return failures
    }

    @Test("A power loss at any sync or after any answer keeps every answered write")
    func matrixPasses() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let (images, _) = try await Self.workload(dir, skipping: nil)
        let all = Self.distinct(images)
        #expect(all.count > Self.minimumWrites, "images at every sync and after every answer")
        let failures = await Self.failures(of: all, in: dir, firstOnly: false)
        #expect(failures.isEmpty, "\(failures.count) of \(all.count) images failed; first: \(failures.first ?? "")")
    }

    @Test("Torn unsynced writes (any prefix, any set of whole pages) and groups of several writes lose no answered write")
    func tornMatrixPasses() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let (images, _) = try await Self.workload(dir, skipping: nil, writers: 4, tears: true)
        let all = Self.distinct(images)
        #expect(all.contains { $0.at.hasSuffix("torn by pages") } && all.contains { $0.at.hasSuffix("torn as a prefix") })
        let failures = await Self.failures(of: all, in: dir, firstOnly: false)
        #expect(failures.isEmpty, "\(failures.count) of \(all.count) images failed; first: \(failures.first ?? "")")
    }

    /// Each of these syncs is load-bearing: without it some power loss loses an answered write
    /// or leaves a data directory that does not start. The others on the write path are not,
    /// and docs/ARCHITECTURE.md ("Which syncs matter") says why: `checkpoint.directory` is
    /// covered by the next checkpoint's directory sync before the log is truncated behind it
    /// (and `checkpoint.sum.directory` by the image's rename sync right after it),
    /// `log.truncation` only keeps removed segments from coming back (harmless), and
    /// `log.torn-tail` is made durable by the next append's sync at the latest.
    static let writePathSites: [SyncSite] = [
        .logAppend, SyncSite.logSegment.file, SyncSite.logSegment.directory, SyncSite.checkpoint.file,
        SyncSite("checkpoint.sum").file, RaftHardStateFile.site.file, RaftHardStateFile.site.directory,
    ]

    @Test("Without any one sync of the write path, some power loss loses an answered write", arguments: writePathSites)
    func matrixFailsWithoutSync(_ site: SyncSite) async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let (images, skipped) = try await Self.workload(dir, skipping: site)
        #expect((skipped[site] ?? 0) > 0, "the workload never reached \(site)")
        let failures = await Self.failures(of: Self.distinct(images), in: dir, firstOnly: true)
        #expect(!failures.isEmpty, "no power loss noticed the missing \(site) sync")
    }
}

extension SyncSite: CustomTestStringConvertible {
    public var testDescription: String { name }
}

/// Hands out 0, 1, 2, ... to concurrent writers.
final class NumberDispenser: Sendable {
    private let next = Mutex(0)

    func take() -> Int {
        next.withLock { value in
            defer { value += 1 }
            return value
        }
    }
}
