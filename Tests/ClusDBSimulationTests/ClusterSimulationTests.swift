import ClusDBRaft
import ClusDBSimulation
import ClusDBStore
import Testing

/// Seeds that once failed, with what they caught; CI runs every one of them (3 and 5 nodes).
/// Add a seed here whenever a sweep finds one, before fixing what it found.
let regressionSeeds: [(seed: UInt64, nodes: Int, caught: String)] = [
    (2, 3, "the leader-completeness check ran for leaders deposed without knowing it (checker bug)"),
    (4, 3, "convergence was checked while clients still wrote (checker bug)"),
    (9, 3, "a stale leader of an older term was held to entries committed later (checker bug)"),
    (1, 3, "a broken vote switch spun takeReady forever: the hard state never matched what was handed out"),
    (156, 3, "a snapshot lost to a link cut mid-flight was never reported: the leader waited on it forever"),
    (154, 5, "the same lost-snapshot report"),
    (325, 3, "an old term's delayed append was taken for one that overwrites committed entries (checker bug)"),
    (865, 5, "a client's abandoned read was answered late into its next read of the same value (simulator bug)"),
    (678, 3, "the same late read answer"),
    (1309, 3, "a follower whose window of appends was lost waited forever (replica bug: the window is freed at a heartbeat answer)"),
    (1006, 5, "the same full window"),
    (181, 3, "two voters, the leader removed itself and the commit was lost: the last voter waited for the removed node's vote, which its newer log refused (replica bug: commit hints)"),
    (371, 3, "the same, after the removed leader's log grew past its removal"),
    (833, 3, "the same, with the hint sent in a term the pre-candidate dropped, and not sent at a snapshot's index"),
]

/// Seeds that once failed on power-loss disks (they need those options to show what they
/// caught); CI runs each with the options it failed with: the chance of a bit flip per crash and
/// of a full disk per step, and the compaction interval when not the seed's own.
let diskRegressionSeeds: [(seed: UInt64, nodes: Int, bitFlips: Double, fullDisks: Double, compactEvery: Int?, caught: String)] = [
    (1008, 3, 0.5, 0, nil, "a flipped bit in raft.state's version field asked for a newer build: the checksum was checked after the version (storage bug)"),
    (2272, 3, 1, 0, nil, "a membership change left two voters, one of them stopped by a flip it had not yet read: no quorum in the healing phase (simulator guard)"),
    // Seeds that lose their quorum without the guards as they are now (a flip only with no
    // membership change pending, and nodes with an unread flip counted as gone): checked by
    // switching the guards off (docs/ARCHITECTURE.md, "Bit flips").
    (2103, 3, 1, 0, nil, "no quorum without the guards"),
    (2143, 3, 1, 0, nil, "no quorum without the guards"),
    (2280, 3, 1, 0, nil, "no quorum without the guards"),
    (2282, 3, 1, 0, nil, "no quorum without the guards"),
    (5015, 3, 0, 0.002, nil, "a checkpoint a full disk failed was a violation, and the replica had compacted before it (simulator)"),
    (5022, 3, 0, 0.002, nil, "the same"),
    (400_044, 3, 1, 0, 10, "a follower whose only checkpoint came with a snapshot and was damaged was refused by the replica, not by its storage (simulator)"),
    (500_018, 3, 1, 0, 10, "a flip in a log record's padding, which no check reads, went unnoticed (simulator: padding is no data)"),
    (500_077, 3, 1, 0, 10, "the same"),
]

@Suite("Deterministic simulation of the Raft core: safety under faults, liveness after healing")
struct ClusterSimulationTests {
    static func run(seed: UInt64, nodes: Int, configure: (inout SimulationOptions) -> Void = { _ in }) -> SimulationReport {
        var options = SimulationOptions.swarm(seed: seed, nodes: nodes)
        configure(&options)
        var simulation = ClusterSimulation(options: options)
        return simulation.run()
    }

    @Test("The same seed twice gives the same trace digest and history; another seed another one")
    func determinism() {
        let (a, b, c) = (Self.run(seed: 42, nodes: 3), Self.run(seed: 42, nodes: 3), Self.run(seed: 43, nodes: 3))
        #expect(a.traceDigest == b.traceDigest)
        #expect(a.statistics == b.statistics)
        #expect(a.history.operations.map(\.description) == b.history.operations.map(\.description))
        #expect(a.traceDigest != c.traceDigest)
        // On power-loss disks with bit flips too: the files flipped are chosen from sorted
        // listings, so the same seed flips the same bits.
        let onDisks: (inout SimulationOptions) -> Void = {
            $0.diskDirectory = Self.diskDirectory
            $0.bitFlipRate = 1
            $0.compactionEveryEntries = 10
        }
        let (d, e) = (Self.run(seed: 400_001, nodes: 3, configure: onDisks), Self.run(seed: 400_001, nodes: 3, configure: onDisks))
        #expect(d.traceDigest == e.traceDigest && d.statistics == e.statistics)
        #expect(d.statistics.bitFlips > 0, "\(d.statistics)")
    }

    @Test("Every seed that ever failed passes", arguments: [3, 5])
    func regressions(nodes: Int) {
        for entry in regressionSeeds {
            let report = Self.run(seed: entry.seed, nodes: nodes)
            if !report.passed {
                Issue.record("regression seed \(entry.seed) (\(entry.caught)): \(report.violations.joined(separator: "; ")) — replay: \(report.replayCommand)")
            }
        }
    }

    /// Runs `seeds` with each of `sizes`, records every failing run, and sums what they exercised.
    static func sweep(
        _ seeds: Range<UInt64>, sizes: [Int], configure: (inout SimulationOptions) -> Void = { _ in }
    ) -> SimulationReport.Statistics {
        var totals = SimulationReport.Statistics()
        for seed in seeds {
            for nodes in sizes {
                let report = run(seed: seed, nodes: nodes, configure: configure)
                if !report.passed {
                    Issue.record("seed \(seed), \(nodes) nodes: \(report.violations.joined(separator: "; ")) — replay: \(report.replayCommand)")
                }
                totals.crashes += report.statistics.crashes
                totals.partitions += report.statistics.partitions
                totals.answered += report.statistics.answered
                totals.sessionReplays += report.statistics.sessionReplays
                totals.snapshotsInstalled += report.statistics.snapshotsInstalled
                totals.fullDisks += report.statistics.fullDisks
                totals.persistenceRefused += report.statistics.persistenceRefused
                totals.bitFlips += report.statistics.bitFlips
                totals.corruptionsRefused += report.statistics.corruptionsRefused
                totals.checkpointFallbacks += report.statistics.checkpointFallbacks
                totals.quorumLostToDamage = totals.quorumLostToDamage || report.statistics.quorumLostToDamage
                totals.membershipChanges += report.statistics.membershipChanges + report.statistics.transfers
            }
        }
        return totals
    }

    /// 1,000 seeds, each with 3 and with 5 voters, in 20 slices the test runner spreads over cores.
    static let sweepSlices = 20
    static let seedsPerSlice: UInt64 = 50

    @Test("A sweep of 1,000 seeds with 3 and 5 nodes: no checker fires", arguments: 0..<sweepSlices)
    func sweep(slice: Int) {
        let first = UInt64(slice) * Self.seedsPerSlice + 1
        let totals = Self.sweep(first..<(first + Self.seedsPerSlice), sizes: [3, 5])
        // A slice is only worth something if the faults happened in it.
        #expect(totals.crashes > 20 && totals.partitions > 20, "\(totals)")
        #expect(totals.membershipChanges > 5 && totals.snapshotsInstalled > 5, "\(totals)")
        #expect(totals.answered > 2000, "\(totals)")
        // Retries committed twice reach the hive: the situation exactly-once is about occurs (that
        // the session rule, not luck, kept them from taking effect twice is the exactly-once
        // checker's and the broken switch's part; this count cannot tell the two apart).
        #expect(totals.sessionReplays > 5, "\(totals)")
    }

    /// The regime the sixth broken switch needs (``SimulationOptions/slowFailingDisks()``) must
    /// not make the correct protocol fail: a catch there is the switch's, not the regime's.
    @Test("A sweep of 100 seeds with 3 nodes on slow disks that fail often: no checker fires", arguments: 0..<2)
    func slowFailingDisksSweep(slice: Int) {
        let first = 200_000 + UInt64(slice) * 50
        let totals = Self.sweep(first..<(first + 50), sizes: [3]) { $0.slowFailingDisks() }
        #expect(totals.crashes > 100, "\(totals)")
    }

    /// 100 seeds with 1, 2 and 7 voters at the start: the smallest clusters (they grow and shrink
    /// through membership changes; two voters cannot lose one) and the largest.
    static let edgeSizeSlices = 5
    static let edgeSizeSeedsPerSlice: UInt64 = 20

    @Test("A sweep of 100 seeds with 1, 2 and 7 nodes: no checker fires", arguments: 0..<edgeSizeSlices)
    func edgeSizeSweep(slice: Int) {
        let first = 100_000 + UInt64(slice) * Self.edgeSizeSeedsPerSlice
        let totals = Self.sweep(first..<(first + Self.edgeSizeSeedsPerSlice), sizes: [1, 2, 7])
        #expect(totals.answered > 1000 && totals.membershipChanges > 3, "\(totals)")
    }

    /// Where simulated disks live: tmpfs when there is one (syncs are only modelled there).
    static var diskDirectory: String { FileSystem.isDirectory("/dev/shm") ? "/dev/shm" : "/tmp" }

    /// 100 seeds with 3 and 5 nodes whose log and hard state are the production files under a
    /// power-loss model: every crash tears what was not synced, every restart runs recovery.
    static let diskSlices = 5
    static let diskSeedsPerSlice: UInt64 = 20

    @Test("A sweep of 100 seeds with 3 and 5 nodes on power-loss disks (production quorum log and raft.state)", arguments: 0..<diskSlices)
    func diskSweep(slice: Int) {
        let first = 200_000 + UInt64(slice) * Self.diskSeedsPerSlice
        let totals = Self.sweep(first..<(first + Self.diskSeedsPerSlice), sizes: [3, 5]) { $0.diskDirectory = Self.diskDirectory }
        #expect(totals.crashes > 20 && totals.answered > 1000, "\(totals)")
    }

    @Test("Every seed that ever failed on power-loss disks passes")
    func diskRegressions() {
        for entry in diskRegressionSeeds {
            let report = Self.run(seed: entry.seed, nodes: entry.nodes) {
                $0.diskDirectory = Self.diskDirectory
                $0.bitFlipRate = entry.bitFlips
                $0.fullDiskRate = entry.fullDisks
                if let every = entry.compactEvery { $0.compactionEveryEntries = every }
            }
            // The guards keep a quorum: some of these seeds once lost it, which a run would now
            // only note.
            #expect(!report.statistics.quorumLostToDamage, "seed \(entry.seed): \(report.milestones.suffix(3))")
            if !report.passed {
                Issue.record("disk regression seed \(entry.seed) (\(entry.caught)): \(report.violations.joined(separator: "; ")) — replay: \(report.replayCommand)")
            }
        }
    }

    /// Bit flips in crashed nodes' files (issue 10, point 4: "a bit flip the checksums must
    /// catch"): every flip start-up reads is caught — a damaged newest checkpoint is passed over
    /// for the older one and the log, any other damage stops the node, which stays down — and no
    /// checker fires: nothing acknowledged is lost, the rest of the cluster converges, and every
    /// checkpoint read back holds what was written. Checkpoints every 10 entries, so that nodes
    /// have two when the flip comes.
    @Test("A sweep of 50 seeds with 3 and 5 nodes whose crashed disks get a flipped bit: every flip read is caught", arguments: 0..<2)
    func bitFlipSweep(slice: Int) {
        let first = 400_000 + UInt64(slice) * 25
        let totals = Self.sweep(first..<(first + 25), sizes: [3, 5]) {
            $0.diskDirectory = Self.diskDirectory
            $0.bitFlipRate = 1
            $0.compactionEveryEntries = 10
        }
        #expect(totals.bitFlips > 20 && totals.corruptionsRefused > 5 && totals.checkpointFallbacks > 0, "\(totals)")
        #expect(!totals.quorumLostToDamage, "the guards keep a quorum of voters that can start: \(totals)")
    }

    /// Full disks: the production quorum log and hard-state file get `ENOSPC`, the node stops
    /// as it does in service, and restarts once its disk has room; nothing acknowledged may be
    /// lost, and the cluster must converge once the disks are freed.
    @Test("A sweep of 100 seeds with 3 and 5 nodes whose disks fill and free: no checker fires", arguments: 0..<2)
    func fullDiskSweep(slice: Int) {
        let first = 300_000 + UInt64(slice) * 50
        let totals = Self.sweep(first..<(first + 50), sizes: [3, 5]) {
            $0.diskDirectory = Self.diskDirectory
            $0.fullDiskRate = 0.005
        }
        #expect(totals.fullDisks > 50 && totals.persistenceRefused > 10, "\(totals)")
    }

    @Test("Each storage sync matters in the simulation: skipping it on every disk is caught", arguments: ["log.append", "raft.state.file", "raft.state.directory"])
    func skippedSyncIsCaught(site: String) {
        for seed in UInt64(1)...20 {
            let report = Self.run(seed: seed, nodes: 3) {
                $0.diskDirectory = Self.diskDirectory
                $0.skippedSyncSites = [site]
            }
            if !report.passed { return }
        }
        Issue.record("skipping \(site) went unnoticed for 20 seeds")
    }

    /// Each deliberate bug of issue 10, point 5, with the checker that must catch it.
    static let brokenSwitches: [(name: String, configure: @Sendable (inout SimulationOptions) -> Void, caughtBy: [String])] = [
        ("commit an earlier term's entry by counting", { $0.brokenProtocol = [.commitPreviousTermByCounting] }, ["commitment", "state-machine safety", "committed entry overwritten"]),
        ("skip the pre-vote", { $0.brokenProtocol = [.skipPreVote] }, ["pre-vote"]),
        ("answer reads without ReadIndex", { $0.brokenProtocol = [.readWithoutReadIndex] }, ["linearizability"]),
        ("forget to persist the vote", { $0.brokenProtocol = [.forgetVoteOnCrash] }, ["one vote per term", "election safety"]),
        ("apply a retried write twice", { $0.applyRetriedWritesTwice = true }, ["exactly once", "linearizability"]),
        // Beyond the issue's five: caught since persistence takes time in the simulator and the
        // leader-completeness check covers every committed entry; on slow disks that fail often,
        // where about one seed in 25 shows it (one in 400 at the swarm's rates).
        ("count the leader's own copy before it is durable", {
            $0.brokenProtocol = [.countLeaderBeforeDurable]
            $0.slowFailingDisks()
        }, ["leader completeness", "commitment", "durability", "state-machine safety"]),
    ]

    /// Seeds a broken protocol gets, with 3 and 5 nodes each, to be caught.
    static let seedsToCatch: UInt64 = 100

    @Test("Each deliberately broken protocol is caught within 100 seeds", arguments: 0..<6)
    func brokenProtocolIsCaught(switchIndex: Int) {
        let broken = Self.brokenSwitches[switchIndex]
        for seed in 1...Self.seedsToCatch {
            for nodes in [3, 5] {
                let report = Self.run(seed: seed, nodes: nodes, configure: broken.configure)
                if let violation = report.violations.first {
                    #expect(broken.caughtBy.contains { violation.hasPrefix($0) }, "\(broken.name): caught, but by \(violation)")
                    return
                }
            }
        }
        Issue.record("\(broken.name): no checker fired in \(Self.seedsToCatch) seeds")
    }
}
