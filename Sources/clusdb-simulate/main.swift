#if canImport(Glibc)
import Glibc
#endif
import ClusDBRaft
import ClusDBSimulation

// clusdb-simulate: runs the deterministic simulator outside the test runner.
//   swift run clusdb-simulate --seed N [--nodes 3] [--milestones]   one run, its report (a failing seed's
//                                                            replay), with its elections, membership changes, crashes
//   swift run clusdb-simulate --seeds 100000 [--first 1] [--nodes 3|5|3,5]   a long sweep with progress
//   --disks DIR: nodes keep their log and hard state in the production files below DIR (tmpfs:
//   /dev/shm), under a power-loss model that tears unsynced writes at each crash; with
//   --skip-sync SITE (log.append, raft.state.file, ...) one of their syncs never happens
// Exit status 1 when any run violates a checked property.

/// Prints a line at once: progress and failures must show as they happen when the output goes
/// to a file or a pipe (fflush(nil) flushes every stream, so stdout needs no global reference).
func say(_ line: String) {
    print(line)
    fflush(nil)
}

func fail(_ message: String) -> Never {
    say("clusdb-simulate: ERROR_INVALID_PARAMETER (87): \(message)")
    exit(2)
}

/// The flags this tool reads: those followed by a value, and those that stand alone.
let valueFlags: Set<String> = ["--seed", "--seeds", "--first", "--nodes", "--broken", "--disks", "--full-disks", "--bit-flips", "--skip-sync", "--compact-every"]
let switchFlags: Set<String> = ["--milestones", "--help"]
let usage = """
    usage: clusdb-simulate --seed N [--nodes 3|5|3,5] [--milestones]     one run and its report
           clusdb-simulate [--seeds 1000] [--first 1] [--nodes 3|3,5]    a sweep with progress and a summary
      --broken NAME         switch on a deliberate protocol bug (to see the checkers catch it)
      --disks DIR           keep logs and hard states in the production files below DIR (tmpfs: /dev/shm)
      --full-disks RATE     with --disks: a disk fills with this chance per step (and frees later)
      --bit-flips RATE      with --disks: a crash flips a bit of the node's files with this chance
      --compact-every N     compact each node's log every N applied entries (else drawn from the seed)
      --skip-sync SITE      with --disks: one storage sync never happens (log.append, raft.state.file, ...)
    """

// Every argument is a known flag, once, or the value after one: a mistyped flag must not run a
// sweep with defaults that looks like the one asked for.
let (values, switches) = {
    var values: [String: String] = [:]
    var switches: Set<String> = []
    var arguments = CommandLine.arguments.dropFirst()
    while let flag = arguments.popFirst() {
        if flag == "--help" {
            say(usage)
            exit(0)
        }
        guard valueFlags.contains(flag) || switchFlags.contains(flag) else { fail("unknown argument \(flag)\n\(usage)") }
        guard values[flag] == nil && !switches.contains(flag) else { fail("\(flag) is given twice") }
        if switchFlags.contains(flag) {
            switches.insert(flag)
        } else {
            guard let value = arguments.popFirst() else { fail("\(flag) needs a value") }
            values[flag] = value
        }
    }
    if values["--seed"] != nil, let sweepFlag = ["--seeds", "--first"].first(where: { values[$0] != nil }) {
        fail("--seed runs one seed; \(sweepFlag) is for a sweep")
    }
    return (values, switches)
}()

/// The value given for `flag`, if any.
func argument(_ flag: String) -> String? { values[flag] }

/// The deliberate bug `--broken NAME` switches on (to see the checkers catch it).
let broken = argument("--broken")
let brokenNames = ["commit-previous-term", "skip-pre-vote", "read-without-read-index", "forget-vote", "apply-retried-twice", "count-leader-early"]
if let broken, !brokenNames.contains(broken) { fail("--broken takes one of \(brokenNames.joined(separator: ", ")), not \(broken)") }

/// Options for one run.
func options(seed: UInt64, nodes: Int) -> SimulationOptions {
    var options = SimulationOptions.swarm(seed: seed, nodes: nodes)
    switch broken {
    case "commit-previous-term": options.brokenProtocol = [.commitPreviousTermByCounting]
    case "skip-pre-vote": options.brokenProtocol = [.skipPreVote]
    case "read-without-read-index": options.brokenProtocol = [.readWithoutReadIndex]
    case "forget-vote": options.brokenProtocol = [.forgetVoteOnCrash]
    case "apply-retried-twice": options.applyRetriedWritesTwice = true
    case "count-leader-early":
        options.brokenProtocol = [.countLeaderBeforeDurable]
        options.slowFailingDisks()
    default: break
    }
    options.diskDirectory = argument("--disks")
    if let rate = argument("--full-disks") {
        guard let value = Double(rate), (0..<1).contains(value) else { fail("--full-disks takes a chance per step in [0, 1), not \(rate)") }
        guard options.diskDirectory != nil else { fail("--full-disks needs --disks DIR: only the production files can fill") }
        options.fullDiskRate = value
    }
    if let rate = argument("--bit-flips") {
        guard let value = Double(rate), (0...1).contains(value) else { fail("--bit-flips takes a chance per crash in [0, 1], not \(rate)") }
        guard options.diskDirectory != nil else { fail("--bit-flips needs --disks DIR: only the production files can be damaged") }
        options.bitFlipRate = value
    }
    if let every = argument("--compact-every") {
        guard let value = Int(every), value >= 1 else { fail("--compact-every takes a positive number of entries, not \(every)") }
        options.compactionEveryEntries = value
    }
    if let site = argument("--skip-sync") { options.skippedSyncSites = [site] }
    return options
}

let nodeCounts = (argument("--nodes") ?? "3").split(separator: ",").map { text -> Int in
    guard let count = Int(text), (1...7).contains(count) else { fail("--nodes takes 1 to 7 (or a list like 3,5), not \(text)") }
    return count
}

if let seedText = argument("--seed") {
    guard let seed = UInt64(seedText) else { fail("--seed takes a non-negative integer, not \(seedText)") }
    var failed = false
    for nodes in nodeCounts {
        var simulation = ClusterSimulation(options: options(seed: seed, nodes: nodes))
        let report = simulation.run()
        say("seed \(seed), \(nodes) nodes: \(report.passed ? "passed" : "FAILED"), trace \(String(report.traceDigest, radix: 16))")
        say("  \(report.statistics)")
        if switches.contains("--milestones") { for line in report.milestones { say("  \(line)") } }
        for violation in report.violations { say("  violation: \(violation)") }
        failed = failed || !report.passed
    }
    exit(failed ? 1 : 0)
}

guard let count = UInt64(argument("--seeds") ?? "1000"), count > 0 else { fail("--seeds takes a positive count") }
guard let first = UInt64(argument("--first") ?? "1"), first.addingReportingOverflow(count - 1).overflow == false else {
    fail("--first takes a non-negative integer that leaves room for --seeds seeds")
}
var failures: [String] = []
var answered = 0
var bitFlips = 0, corruptionsRefused = 0, checkpointFallbacks = 0, quorumsLostToDamage = 0
for offset in 0..<count {
    let seed = first + offset
    for nodes in nodeCounts {
        var simulation = ClusterSimulation(options: options(seed: seed, nodes: nodes))
        let report = simulation.run()
        answered += report.statistics.answered
        bitFlips += report.statistics.bitFlips
        corruptionsRefused += report.statistics.corruptionsRefused
        checkpointFallbacks += report.statistics.checkpointFallbacks
        if report.statistics.quorumLostToDamage { quorumsLostToDamage += 1 }
        if !report.passed {
            let line = "seed \(seed), \(nodes) nodes: \(report.violations.first!) — replay: \(report.replayCommand)"
            failures.append(line)
            say("FAILED \(line)")
        }
    }
    if (offset + 1) % 100 == 0 || offset + 1 == count {
        say("\(offset + 1)/\(count) seeds, \(failures.count) failing, \(answered) client operations answered")
    }
}
say("summary: \(count) seeds × nodes \(nodeCounts.map(String.init).joined(separator: ",")): \(failures.count) failing")
if bitFlips > 0 {
    say("bit flips: \(bitFlips), refused at start-up: \(corruptionsRefused), damaged newest checkpoint passed over: \(checkpointFallbacks), "
        + "runs left without a quorum by them: \(quorumsLostToDamage)")
}
exit(failures.isEmpty ? 0 : 1)
