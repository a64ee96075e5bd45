#if canImport(Glibc)
import Glibc
#endif
import ClusDBModel
import ClusDBRaft

/// The Raft hard state on disk: `raft.state` in the data directory (docs/FORMATS.md).
///
/// It is rewritten only when the term or the vote changes (rare: elections), always atomically
/// (temporary file, fsync, rename, directory fsync), and before any message that depends on it
/// leaves the node: a node that forgot its vote could vote twice in one term. The commit index it
/// holds is a lower bound written along, never a reason to write: the replica recovers the commit
/// index from it, from the hive's applied index and from the leader.
public enum RaftHardStateFile {
    /// The file's name in the data directory.
    public static let fileName = "raft.state"
    /// The sync site of its writes (``SyncSite/file`` for the temporary file, ``SyncSite/directory``
    /// for the rename).
    public static let site = SyncSite("raft.state")
    /// The format version this build writes and reads.
    public static let formatVersion: UInt32 = 1
    /// The first 8 bytes of the file.
    static let magic: [UInt8] = Array("CLUSRAFT".utf8)
    /// The file's size: magic 8, version 4, term 8, vote flag 1, zeros 3, vote 8, commit 8, CRC 4.
    static let size = 44

    /// The bytes of `state`.
    public static func encode(_ state: HardState) -> [UInt8] {
        var writer = ByteWriter(capacity: size)
        for byte in magic { writer.u8(byte) }
        writer.u32(formatVersion)
        writer.u64(state.term)
        writer.u8(state.vote == nil ? 0 : 1)
        for _ in 0..<3 { writer.u8(0) }
        writer.u64(state.vote ?? 0)
        writer.u64(state.commit)
        writer.u32(writer.bytes.withUnsafeBytes { CRC32C.checksum($0) })
        precondition(writer.bytes.count == size, "the hard state is \(size) bytes")
        return writer.bytes
    }

    /// Decodes ``encode(_:)``.
    /// - Throws: `ERROR_INVALID_DATA` for a file of this format's size that fails its checksum
    ///   (whatever its version field says) and anything else that is not a hard state of this
    ///   format; `ERROR_REVISION_MISMATCH` (1306) for a newer format version, naming it.
    public static func decode(_ bytes: [UInt8], path: String) throws(ClusterError) -> HardState {
        guard bytes.count >= 12, Array(bytes[0..<8]) == magic else {
            throw ClusterError(.invalidData, "\(path) is not a Raft hard-state file (its first bytes are not CLUSRAFT)")
        }
        var reader = ByteReader(bytes, offset: 8)
        let version = try reader.u32()
        // The checksum before the version, wherever it can be checked: a flipped bit in the
        // version field is damage, not a newer format (the simulator's bit flips found the
        // other order asking for a newer build).
        if bytes.count == size {
            let expected = Array(bytes[0..<(size - 4)]).withUnsafeBytes { CRC32C.checksum($0) }
            var crcReader = ByteReader(bytes, offset: size - 4)
            guard try crcReader.u32() == expected else {
                throw ClusterError(.invalidData, "\(path) fails its checksum: the vote and term in it cannot be trusted")
            }
        }
        if version > formatVersion {
            throw ClusterError(
                .revisionMismatch, "\(path) has hard-state format \(version); this build reads format \(formatVersion): use a newer build")
        }
        guard version == formatVersion, bytes.count == size else {
            throw ClusterError(.invalidData, "\(path) is \(bytes.count) bytes of format \(version); format \(formatVersion) is \(size) bytes")
        }
        let term = try reader.u64()
        let hasVote = try reader.u8()
        for _ in 0..<3 {
            guard try reader.u8() == 0 else { throw ClusterError(.invalidData, "\(path) has nonzero padding") }
        }
        let vote = try reader.u64()
        let commit = try reader.u64()
        guard hasVote <= 1, hasVote == 1 || vote == 0 else {
            throw ClusterError(.invalidData, "\(path) has a vote flag of \(hasVote) with vote \(vote)")
        }
        return HardState(term: term, vote: hasVote == 1 ? vote : nil, commit: commit)
    }

    /// The hard state in `directory`, or nil when there is none yet (a new node).
    public static func read(in directory: String) throws(ClusterError) -> HardState? {
        let path = FileSystem.join(directory, fileName)
        guard FileSystem.exists(path) else { return nil }
        return try decode(try SystemFile(path: path, flags: O_RDONLY).readAll(), path: path)
    }

    /// Makes `state` the durable hard state of `directory`; it is durable when this returns.
    public static func write(_ state: HardState, in directory: String) throws(ClusterError) {
        try FileSystem.writeAtomically(encode(state), to: FileSystem.join(directory, fileName), site: site)
    }
}
