import ClusDBModel
import ClusDBPeer
import ClusDBRaft

/// Random but seeded peer-protocol values for the wire and transport tests: one message of every body per
/// call of ``everyBody(_:)``, with random fields.
public enum PeerWireSamples {
    public static func u64(_ random: inout RandomSource) -> UInt64 {
        // Mostly small values, sometimes the extremes, so both ends of each field are seen.
        switch random.next() % 4 {
        case 0: return 0
        case 1: return UInt64.max - random.next() % 3
        default: return random.next() % 100_000
        }
    }

    public static func flag(_ random: inout RandomSource) -> Bool { random.next() % 2 == 0 }

    public static func bytes(_ random: inout RandomSource, max: Int) -> [UInt8] {
        (0..<Int(random.next() % UInt64(max + 1))).map { _ in UInt8(truncatingIfNeeded: random.next()) }
    }

    public static func configuration(_ random: inout RandomSource) -> RaftConfiguration {
        let count = 1 + Int(random.next() % 7)
        let ids = (0..<count).map { _ in 1 + random.next() % 1_000 }
        let members = Array(Set(ids))
        let voterCount = 1 + Int(random.next() % UInt64(members.count))
        return RaftConfiguration(voters: Set(members.prefix(voterCount)), learners: Set(members.dropFirst(voterCount)))
    }

    public static func entries(_ random: inout RandomSource) -> [RaftEntry] {
        (0..<Int(random.next() % 5)).map { _ in
            let kind: RaftEntry.Kind = [.command, .noOp, .configurationChange][Int(random.next() % 3)]
            return RaftEntry(index: u64(&random), term: u64(&random), kind: kind, payload: bytes(&random, max: 300))
        }
    }

    /// One message of every body, in the order of ``RaftMessage/Body``'s cases.
    public static func everyBody(_ random: inout RandomSource) -> [RaftMessage] {
        let bodies: [RaftMessage.Body] = [
            .preVote(lastIndex: u64(&random), lastTerm: u64(&random)),
            .preVoteResponse(granted: flag(&random)),
            .vote(lastIndex: u64(&random), lastTerm: u64(&random), transfer: flag(&random)),
            .voteResponse(granted: flag(&random)),
            .append(previousIndex: u64(&random), previousTerm: u64(&random), entries: entries(&random), commit: u64(&random)),
            .appendResponse(index: u64(&random), rejected: flag(&random), hintIndex: u64(&random), hintTerm: u64(&random)),
            .heartbeat(commit: u64(&random), context: u64(&random)),
            .heartbeatResponse(context: u64(&random)),
            .installSnapshot(SnapshotMetadata(index: u64(&random), term: u64(&random), configuration: configuration(&random))),
            .timeoutNow,
            .commitHint(index: u64(&random), term: u64(&random)),
            .readIndex(context: u64(&random)),
            .readIndexResponse(context: u64(&random), index: u64(&random)),
        ]
        return bodies.map { RaftMessage(from: u64(&random), to: u64(&random), term: u64(&random), body: $0) }
    }

    public static func hello(_ random: inout RandomSource) -> PeerHello {
        PeerHello(
            clusterID: "c-\(random.next() % 1_000)", clusterName: "name-\(random.next() % 10)", nodeID: 1 + random.next() % 1_000,
            nodeName: "n\(random.next() % 10)", restoreGeneration: random.next() % 5,
            peerAddress: "127.0.0.\(random.next() % 250):7\(random.next() % 1_000)")
    }
}
