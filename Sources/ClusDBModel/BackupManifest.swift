import Foundation

/// `clusbackup.manifest`: what a backup holds and how to check it (see `docs/FORMATS.md`).
///
/// The JSON members are sorted and pretty-printed; unknown members are ignored when reading, so a
/// later format may add some. `backup inspect --json` prints the same members.
public struct BackupManifest: Codable, Sendable, Equatable {
    /// The cluster a backup belongs to.
    public struct Cluster: Codable, Sendable, Equatable {
        /// The cluster's name.
        public var name: String
        /// The cluster's id (a UUID string).
        public var id: String

        /// Creates a cluster reference.
        public init(name: String, id: String) {
            self.name = name
            self.id = id
        }
    }

    /// One file of the backup.
    public struct File: Codable, Sendable, Equatable {
        /// Relative path, `/`-separated (`chk0003.tmp`, `quolog.log`, `<GUID>/00000001.CPT`).
        public var path: String
        /// Size in bytes.
        public var size: Int
        /// SHA-256 of the content, 64 lower-case hex digits.
        public var sha256: String

        /// Creates a file entry.
        public init(path: String, size: Int, sha256: String) {
            self.path = path
            self.size = size
            self.sha256 = sha256
        }
    }

    /// The manifest format (``BackupLayout/formatVersion``).
    public var formatVersion: Int
    /// The cluster backed up.
    public var cluster: Cluster
    /// C: the index of the hive image in the checkpoint file.
    public var checkpointIndex: UInt64
    /// L: the last index in `quolog.log` (C when it holds no record). The backup is the state at L.
    public var lastIndex: UInt64
    /// The term of entry L.
    public var term: UInt64
    /// When the backup was taken, ISO 8601 in UTC.
    public var createdAt: String
    /// The ClusDB version that wrote it.
    public var productVersion: String
    /// The cluster's restore generation when the backup was taken.
    public var restoreGeneration: UInt64
    /// The node that wrote the image.
    public var node: String
    /// Keys in the hive at L, the root not counted.
    public var keys: Int
    /// Values in the hive at L.
    public var values: Int
    /// Every file of the backup but the manifest and the marker.
    public var files: [File]

    /// Creates a manifest.
    public init(
        cluster: Cluster, checkpointIndex: UInt64, lastIndex: UInt64, term: UInt64, createdAt: String,
        restoreGeneration: UInt64, node: String, keys: Int, values: Int, files: [File],
        formatVersion: Int = BackupLayout.formatVersion, productVersion: String = ProductVersion.current
    ) {
        self.formatVersion = formatVersion
        self.cluster = cluster
        self.checkpointIndex = checkpointIndex
        self.lastIndex = lastIndex
        self.term = term
        self.createdAt = createdAt
        self.productVersion = productVersion
        self.restoreGeneration = restoreGeneration
        self.node = node
        self.keys = keys
        self.values = values
        self.files = files
    }

    /// The checkpoint file's entry (a valid manifest has exactly one).
    public var checkpointFile: File? { files.first { BackupLayout.isCheckpointName($0.path) } }

    /// The quorum log's entry (a valid manifest has exactly one).
    public var quorumLogFile: File? { files.first { $0.path == BackupLayout.quorumLogName } }

    /// Total bytes of the listed files.
    public var totalBytes: Int { files.reduce(0) { $0 + $1.size } }

    /// The manifest as the bytes written to disk: sorted, pretty-printed JSON and a newline.
    public func jsonBytes() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do {
            return Array(try encoder.encode(self)) + [0x0A]
        } catch {
            preconditionFailure("a manifest always encodes: \(error)")
        }
    }

    /// Reads and checks a manifest.
    /// - Throws: `ERROR_DATABASE_BACKUP_CORRUPT` naming the first problem.
    public init(jsonBytes bytes: [UInt8]) throws(ClusterError) {
        let decoded: BackupManifest
        do {
            decoded = try JSONDecoder().decode(BackupManifest.self, from: Data(bytes))
        } catch {
            throw Self.corrupt("\(BackupLayout.manifestName) does not parse: \(JSONText.describe(error))")
        }
        try decoded.check()
        self = decoded
    }

    /// Checks the rules every manifest meets (format version, indexes, file names, exactly one
    /// checkpoint and one quorum log).
    /// - Throws: `ERROR_DATABASE_BACKUP_CORRUPT` naming the first broken rule.
    public func check() throws(ClusterError) {
        let name = BackupLayout.manifestName
        guard formatVersion == BackupLayout.formatVersion else {
            throw Self.corrupt("\(name) has format version \(formatVersion); this build reads \(BackupLayout.formatVersion)")
        }
        guard !cluster.id.isEmpty, !cluster.name.isEmpty else { throw Self.corrupt("\(name) names no cluster") }
        guard checkpointIndex <= lastIndex else {
            throw Self.corrupt("\(name): checkpoint index \(checkpointIndex) is after the last index \(lastIndex)")
        }
        guard keys >= 0, values >= 0 else { throw Self.corrupt("\(name): impossible key or value counts") }
        var seen = Set<String>()
        for file in files {
            guard BackupLayout.isListablePath(file.path) else {
                throw Self.corrupt("\(name) lists \"\(file.path)\", which is not a file of a backup")
            }
            guard seen.insert(file.path.lowercased()).inserted else {
                throw Self.corrupt("\(name) lists \(file.path) twice")
            }
            guard file.size >= 0, file.sha256.count == 64, file.sha256.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
                throw Self.corrupt("\(name): the entry of \(file.path) has a bad size or SHA-256")
            }
        }
        guard files.filter({ BackupLayout.isCheckpointName($0.path) }).count == 1 else {
            throw Self.corrupt("\(name) must list exactly one cluster checkpoint chk<NNNN>.tmp")
        }
        guard quorumLogFile != nil else { throw Self.corrupt("\(name) does not list \(BackupLayout.quorumLogName)") }
    }

    static func corrupt(_ message: String) -> ClusterError {
        ClusterError(.databaseBackupCorrupt, message)
    }

    /// Now, as the manifest writes it: ISO 8601 in UTC with milliseconds.
    public static func timestamp(_ date: Date = Date()) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: date)
    }
}
