import ClusAPI
import ClusDBModel
import ClusDBTestSupport
import Foundation
import Synchronization
import Testing

/// Goal: no acknowledged write is ever lost and nothing is invented, whatever moment the service
/// dies. Method: concurrent writers through ClusAPI record every acknowledged write; the server is
/// killed with SIGKILL mid-load at a seeded moment, restarted on the same data directory, and its
/// export is compared with the acknowledged set. Three kill cycles accumulate on one directory.
@Suite("Crash safety of the service", .serialized)
struct CrashTests {
    /// Writers running at once.
    static let writers = 16

    final class Ledger: Sendable {
        /// Per writer: acknowledged sequence numbers and the highest one attempted.
        let state = Mutex([Int: (acknowledged: Set<Int>, attempted: Int)]())
    }

    static func payload(_ writer: Int, _ sequence: Int) -> String { "w\(writer)-s\(sequence)-" + String(repeating: "p", count: 200) }

    @Test("SIGKILL during concurrent writes loses no acknowledged write and invents none", arguments: [UInt64(7), 1_234])
    func killDuringLoad(seed: UInt64) async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let ledger = Ledger()
        var random = seed
        var nextSequence = [Int](repeating: 0, count: Self.writers)
        for cycle in 0..<3 {
            let server = try ServerProcess(dataDirectory: dir.file("data"))
            let cluster = try await openCluster(server.endpoint)
            let starts = nextSequence
            let load = Task {
                await withTaskGroup(of: Int.self) { group in
                    for writer in 0..<Self.writers {
                        group.addTask {
                            var sequence = starts[writer]
                            while !Task.isCancelled {
                                ledger.state.withLock { $0[writer, default: ([], -1)].attempted = sequence }
                                do {
                                    try await cluster.setValue(
                                        key: "Load\\w\(writer)", name: "s\(sequence)",
                                        value: .string(Self.payload(writer, sequence)), createKey: true)
                                } catch {
                                    return sequence
                                }
                                ledger.state.withLock { _ = $0[writer, default: ([], -1)].acknowledged.insert(sequence) }
                                sequence += 1
                            }
                            return sequence
                        }
                    }
                    var ends: [Int] = []
                    for await end in group { ends.append(end) }
                    return ends
                }
            }
            // Kill mid-load: once this cycle has some acknowledged writes, after a seeded delay.
            let before = ledger.state.withLock { $0.values.reduce(0) { $0 + $1.acknowledged.count } }
            for _ in 0..<600 {
                let now = ledger.state.withLock { $0.values.reduce(0) { $0 + $1.acknowledged.count } }
                if now >= before + Self.writers { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            random = random &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let delay = Int(random >> 33) % 700
            try await Task.sleep(for: .milliseconds(delay))
            server.stop(signal: SIGKILL)
            _ = await load.value
            load.cancel()
            cluster.close()
            let acknowledgedNow = ledger.state.withLock { $0.values.reduce(0) { $0 + $1.acknowledged.count } }
            #expect(acknowledgedNow > 0, "cycle \(cycle) acknowledged nothing before the kill")
            // Writers resume after the highest sequence they attempted, so in-flight writes are never reused.
            nextSequence = (0..<Self.writers).map { writer in ledger.state.withLock { ($0[writer]?.attempted ?? -1) + 1 } }
        }
        let server = try ServerProcess(dataDirectory: dir.file("data"))
        defer { server.stop() }
        let cluster = try await openCluster(server.endpoint)
        defer { cluster.close() }
        let tree = try await cluster.export(key: "Load")
        let snapshot = ledger.state.withLock { $0 }
        let total = snapshot.values.reduce(0) { $0 + $1.acknowledged.count }
        print("crash test seed \(seed): \(total) acknowledged writes checked over 3 kills")
        var found = [Int: [Int: RegistryValue]]()
        for (keyName, key) in tree.keys {
            guard let writer = Int(keyName.dropFirst()) else { Issue.record("unexpected key \(keyName)"); continue }
            for (name, value) in key.values {
                guard let sequence = Int(name.dropFirst()) else { Issue.record("unexpected value \(name)"); continue }
                found[writer, default: [:]][sequence] = value
            }
        }
        for (writer, record) in snapshot {
            for sequence in record.acknowledged {
                #expect(found[writer]?[sequence] == .string(Self.payload(writer, sequence)), "acknowledged w\(writer) s\(sequence) is missing")
            }
            for (sequence, value) in found[writer] ?? [:] {
                #expect(sequence <= record.attempted, "w\(writer) s\(sequence) was never written")
                #expect(value == .string(Self.payload(writer, sequence)), "w\(writer) s\(sequence) holds the wrong data")
            }
        }
    }
}
