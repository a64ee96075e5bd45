/// The names of a backup directory (`DESIGN.md` §6, a contract):
///
/// ```
/// DIR/chk<NNNN>.tmp                  cluster checkpoint: SQLite image of the hive at index C
/// DIR/quolog.log                     quorum log records (C, L], framed and checksummed
/// DIR/<resource GUID>/<NNNNNNNN>.CPT registry checkpoints of that resource
/// DIR/<resource GUID>/<NNNNNNNN>.CPR crypto checkpoints of that resource
/// DIR/clusbackup.manifest            JSON: what the backup holds, with every file's SHA-256
/// DIR/.clusbackup.dat                completion marker: 0 bytes, mode 0444, written last
/// ```
public enum BackupLayout {
    /// The manifest's file name.
    public static let manifestName = "clusbackup.manifest"
    /// The completion marker's file name.
    public static let markerName = ".clusbackup.dat"
    /// The quorum log's file name.
    public static let quorumLogName = "quolog.log"
    /// The manifest format this build writes and reads.
    public static let formatVersion = 1

    /// True for `chk<NNNN>.tmp`.
    public static func isCheckpointName(_ name: String) -> Bool {
        checkpointSequence(ofFileName: name) != nil
    }

    /// `chk<NNNN>.tmp`, at least four digits: the name of a cluster checkpoint, in a backup and in
    /// a node's quorum directory alike.
    public static func checkpointFileName(sequence: Int) -> String {
        precondition(sequence > 0, "checkpoint sequence numbers start at 1")
        let digits = String(sequence)
        return "chk" + String(repeating: "0", count: max(0, 4 - digits.count)) + digits + ".tmp"
    }

    /// The sequence number of a checkpoint file name, nil for other names.
    public static func checkpointSequence(ofFileName name: String) -> Int? {
        guard name.hasPrefix("chk"), name.hasSuffix(".tmp") else { return nil }
        let digits = name.dropFirst(3).dropLast(4)
        guard digits.count >= 4, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let number = Int(digits), number > 0 else { return nil }
        return number
    }

    /// True for a resource GUID as a folder name: `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, hex digits.
    public static func isResourceFolderName(_ name: String) -> Bool {
        let groups = name.split(separator: "-", omittingEmptySubsequences: false)
        guard groups.map(\.count) == [8, 4, 4, 4, 12] else { return false }
        return groups.allSatisfy { $0.allSatisfy(\.isHexDigit) }
    }

    /// True for `<NNNNNNNN>.CPT` or `<NNNNNNNN>.CPR` (case-insensitive extension, as the original
    /// sample prints them in lower case).
    public static func isResourceCheckpointName(_ name: String) -> Bool {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count == 8, parts[0].allSatisfy({ $0.isASCII && $0.isNumber }) else { return false }
        let suffix = parts[1].uppercased()
        return suffix == "CPT" || suffix == "CPR"
    }

    /// True when `path` (relative, `/`-separated) is a name a backup's manifest may list.
    public static func isListablePath(_ path: String) -> Bool {
        let components = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        switch components.count {
        case 1: return components[0] == quorumLogName || isCheckpointName(components[0])
        case 2: return isResourceFolderName(components[0]) && isResourceCheckpointName(components[1])
        default: return false
        }
    }

    /// True for a top-level entry a backup may own, which a new backup to the same directory
    /// replaces: the names of the layout (a killed backup leaves nothing else).
    public static func isOwnedEntry(_ name: String) -> Bool {
        name == manifestName || name == markerName || name == quorumLogName || isCheckpointName(name)
            || isResourceFolderName(name)
    }
}
