import ClusDBModel
import ClusDBRaft
@testable import ClusDBStore
import ClusDBTestSupport
import GRDB
import Testing

/// Goal: the hive records the Raft configuration at its applied index, so that a checkpoint
/// (and an in-memory image) holds the membership a snapshot at its index needs, decided by the
/// log alone and equal on every replica. Method: membership changes applied as the replica
/// applies them, compared with `RaftConfiguration.applying(_:)`, through images and files.
@Suite("The hive records the membership: every checkpoint holds the configuration at its index")
struct HiveMembershipTests {
    static let bootstrap = RaftConfiguration(voters: [1, 2, 3])

    static func change(_ index: UInt64, _ change: ConfigurationChange) throws(ClusterError) -> Hive.Committed {
        try Hive.Committed(entry: LogEntry(index: index, term: 2, kind: .configurationChange, payload: change.encoded))
    }

    @Test("Encoding round-trips, sorted (equal configurations, equal bytes), and refuses what is not a configuration")
    func encoding() {
        let configurations = [
            RaftConfiguration(voters: [1]), RaftConfiguration(voters: [3, 1, 2], learners: [9, 7]),
            RaftConfiguration(voters: [.max, 0]),
        ]
        for configuration in configurations {
            #expect(RaftConfiguration(encoded: configuration.encoded) == configuration)
        }
        #expect(RaftConfiguration(voters: [2, 1]).encoded == RaftConfiguration(voters: [1, 2]).encoded)
        let valid = RaftConfiguration(voters: [1, 2], learners: [3]).encoded
        #expect(valid.count == 8 + 3 * 8)
        // Cut, lengthened, no voter, a member in both sets, out of order, an absurd count.
        #expect(RaftConfiguration(encoded: Array(valid.dropLast())) == nil)
        #expect(RaftConfiguration(encoded: valid + [0]) == nil)
        #expect(RaftConfiguration(encoded: [0, 0, 0, 0, 0, 0, 0, 0]) == nil)
        var both = RaftConfiguration(voters: [1, 2], learners: [3]).encoded
        both[24] = 2  // the learner becomes node 2, also a voter
        #expect(RaftConfiguration(encoded: both) == nil)
        var unsorted = valid
        unsorted[8] = 2
        unsorted[16] = 1
        #expect(RaftConfiguration(encoded: unsorted) == nil)
        #expect(RaftConfiguration(encoded: [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]) == nil)
    }

    @Test("Applied changes move the recorded configuration as the replica's rules do; a change that does not apply leaves it")
    func appliedChanges() throws {
        let hive = try Hive.inMemory()
        #expect(try hive.configuration() == nil)
        try hive.setConfiguration(Self.bootstrap)
        let changes: [ConfigurationChange] = [.addLearner(4), .promoteLearner(4), .remove(1), .promoteLearner(9), .remove(7), .addLearner(5)]
        var expected = Self.bootstrap
        var index: UInt64 = 0
        for change in changes {
            index += 1
            _ = try hive.apply([try Self.change(index, change)])
            expected = expected.applying(change) ?? expected
            #expect(try hive.configuration() == expected, "after \(change)")
        }
        #expect(try hive.configuration() == RaftConfiguration(voters: [2, 3, 4], learners: [5]))
        #expect(try hive.state().appliedIndex == index)
        // Commands in the same batch leave it alone.
        _ = try hive.apply([
            Hive.Committed(index: index + 1, term: 2, command: .createKey(try KeyPath("A"))), try Self.change(index + 2, .remove(5)),
        ])
        #expect(try hive.configuration() == RaftConfiguration(voters: [2, 3, 4]))
    }

    @Test("Images and checkpoint files carry the configuration of their index")
    func imagesAndCheckpoints() throws {
        let hive = try Hive.inMemory()
        try hive.setConfiguration(Self.bootstrap)
        _ = try hive.apply([try Self.change(1, .addLearner(4))])
        let image = try hive.inMemoryImage()
        _ = try hive.apply([try Self.change(2, .promoteLearner(4))])
        #expect(try image.configuration() == RaftConfiguration(voters: [1, 2, 3], learners: [4]))
        let other = try Hive.inMemory()
        try other.install(image: image)
        #expect(try other.configuration() == RaftConfiguration(voters: [1, 2, 3], learners: [4]))

        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let checkpoint = try ClusterCheckpoints.write(from: hive, to: directory.path)
        let file = try Hive.openReadOnly(path: checkpoint.path)
        defer { file.close() }
        #expect(try file.configuration() == RaftConfiguration(voters: [1, 2, 3, 4]))
        #expect(checkpoint.state.appliedIndex == 2)
    }

    @Test("A checkpoint written before the table existed reads as no configuration (the one implied member)")
    func checkpointWithoutTheTable() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let checkpoint = try ClusterCheckpoints.write(from: try Hive.inMemory(), to: directory.path)
        let old = try DatabaseQueue(path: checkpoint.path)
        try old.write { db in try db.execute(sql: "DROP TABLE hive_membership") }
        try old.close()
        let file = try Hive.openReadOnly(path: checkpoint.path)
        defer { file.close() }
        #expect(try file.configuration() == nil)
    }

    @Test("A change on a hive that records no configuration stops the apply and changes nothing; so does a change that does not decode")
    func refusals() throws {
        let hive = try Hive.inMemory()
        let change = try Self.change(1, .addLearner(4))
        do {
            _ = try hive.apply([change])
            Issue.record("a change without a configuration to change is refused")
        } catch {
            #expect(error.code == .clusterLogCorrupt && error.message.contains("records no configuration"))
        }
        #expect(try hive.state().appliedIndex == 0)
        #expect(try hive.configuration() == nil)
        do {
            _ = try Hive.Committed(entry: LogEntry(index: 1, term: 1, kind: .configurationChange, payload: [9, 1, 2]))
            Issue.record("a payload that is not a change is refused")
        } catch {
            #expect(error.code == .clusterLogCorrupt)
        }
    }
}
