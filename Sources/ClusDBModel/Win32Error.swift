/// A Win32 system error code, as the Windows cluster API returns them.
///
/// ClusDB keeps the original numbers so that scripts, the C library and people who know the
/// Windows cluster service read the same codes. `name` gives the symbolic name from `winerror.h`.
public struct Win32Error: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The numeric code, as in `winerror.h`.
    public let rawValue: UInt32

    /// Creates a code from its number.
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `ERROR_SUCCESS` (0).
    public static let success = Win32Error(rawValue: 0)
    /// `ERROR_INVALID_FUNCTION` (1): an operation that is not one of the known ones.
    public static let invalidFunction = Win32Error(rawValue: 1)
    /// `ERROR_FILE_NOT_FOUND` (2): a key or value that does not exist.
    public static let fileNotFound = Win32Error(rawValue: 2)
    /// `ERROR_PATH_NOT_FOUND` (3): a directory in a path does not exist.
    public static let pathNotFound = Win32Error(rawValue: 3)
    /// `ERROR_ACCESS_DENIED` (5): deleting a key with subkeys, or no permission.
    public static let accessDenied = Win32Error(rawValue: 5)
    /// `ERROR_INVALID_HANDLE` (6): a closed or unknown handle.
    public static let invalidHandle = Win32Error(rawValue: 6)
    /// `ERROR_NOT_ENOUGH_MEMORY` (8).
    public static let notEnoughMemory = Win32Error(rawValue: 8)
    /// `ERROR_SHARING_VIOLATION` (32): a data directory in use by another process.
    public static let sharingViolation = Win32Error(rawValue: 32)
    /// `ERROR_INVALID_PARAMETER` (87): input that breaks a rule.
    public static let invalidParameter = Win32Error(rawValue: 87)
    /// `ERROR_DISK_FULL` (112).
    public static let diskFull = Win32Error(rawValue: 112)
    /// `ERROR_CALL_NOT_IMPLEMENTED` (120).
    public static let callNotImplemented = Win32Error(rawValue: 120)
    /// `ERROR_BUSY` (170): a bounded queue is full; retry later.
    public static let busy = Win32Error(rawValue: 170)
    /// `ERROR_ALREADY_EXISTS` (183).
    public static let alreadyExists = Win32Error(rawValue: 183)
    /// `ERROR_MORE_DATA` (234): a caller's buffer is too small.
    public static let moreData = Win32Error(rawValue: 234)
    /// `ERROR_NO_MORE_ITEMS` (259): the end of an enumeration.
    public static let noMoreItems = Win32Error(rawValue: 259)
    /// `ERROR_DIRECTORY` (267): a path that names a file where a directory is needed.
    public static let directory = Win32Error(rawValue: 267)
    /// `ERROR_INVALID_DATA` (13): data read from storage or the network that does not decode.
    public static let invalidData = Win32Error(rawValue: 13)
    /// `ERROR_ADDRESS_ALREADY_ASSOCIATED` (1227): a listening address already in use.
    public static let addressAlreadyAssociated = Win32Error(rawValue: 1227)
    /// ERROR_IO_PENDING: the write is durable in the quorum log but not applied yet; a restart
    /// applies it (see "Fail-stop" in docs/ARCHITECTURE.md).
    public static let ioPending = Win32Error(rawValue: 997)
    /// ERROR_REVISION_MISMATCH: a file is in a format this build does not read.
    public static let revisionMismatch = Win32Error(rawValue: 1306)
    /// `ERROR_CLUSTER_SHUTTING_DOWN` (5022): the node is stopping.
    public static let clusterShuttingDown = Win32Error(rawValue: 5022)
    /// `ERROR_CLUSTERLOG_CORRUPT` (5029): the quorum log is damaged before its tail.
    public static let clusterLogCorrupt = Win32Error(rawValue: 5029)
    /// `ERROR_CLUSTER_NODE_DOWN` (5050): no node of the cluster answered.
    public static let clusterNodeDown = Win32Error(rawValue: 5050)
    /// `ERROR_CLUSTER_NODE_UP` (5056): other nodes of the cluster are running.
    public static let clusterNodeUp = Win32Error(rawValue: 5056)
    /// `ERROR_QUORUM_DISK_NOT_FOUND` (5086): the data directory belongs to another cluster.
    public static let quorumDiskNotFound = Win32Error(rawValue: 5086)
    /// `ERROR_DATABASE_BACKUP_CORRUPT` (5087): a backup that is incomplete or damaged.
    public static let databaseBackupCorrupt = Win32Error(rawValue: 5087)
    /// `ERROR_CLUSTER_INSTANCE_ID_MISMATCH` (5893): endpoints that belong to another cluster.
    public static let clusterInstanceIDMismatch = Win32Error(rawValue: 5893)

    /// The symbolic name, as in `winerror.h`, or `ERROR_<number>` for a code ClusDB does not name.
    public var name: String {
        switch rawValue {
        case 0: return "ERROR_SUCCESS"
        case 1: return "ERROR_INVALID_FUNCTION"
        case 2: return "ERROR_FILE_NOT_FOUND"
        case 3: return "ERROR_PATH_NOT_FOUND"
        case 5: return "ERROR_ACCESS_DENIED"
        case 6: return "ERROR_INVALID_HANDLE"
        case 8: return "ERROR_NOT_ENOUGH_MEMORY"
        case 13: return "ERROR_INVALID_DATA"
        case 32: return "ERROR_SHARING_VIOLATION"
        case 87: return "ERROR_INVALID_PARAMETER"
        case 112: return "ERROR_DISK_FULL"
        case 120: return "ERROR_CALL_NOT_IMPLEMENTED"
        case 170: return "ERROR_BUSY"
        case 183: return "ERROR_ALREADY_EXISTS"
        case 234: return "ERROR_MORE_DATA"
        case 259: return "ERROR_NO_MORE_ITEMS"
        case 267: return "ERROR_DIRECTORY"
        case 997: return "ERROR_IO_PENDING"
        case 1227: return "ERROR_ADDRESS_ALREADY_ASSOCIATED"
        case 1306: return "ERROR_REVISION_MISMATCH"
        case 5022: return "ERROR_CLUSTER_SHUTTING_DOWN"
        case 5029: return "ERROR_CLUSTERLOG_CORRUPT"
        case 5050: return "ERROR_CLUSTER_NODE_DOWN"
        case 5056: return "ERROR_CLUSTER_NODE_UP"
        case 5086: return "ERROR_QUORUM_DISK_NOT_FOUND"
        case 5087: return "ERROR_DATABASE_BACKUP_CORRUPT"
        case 5893: return "ERROR_CLUSTER_INSTANCE_ID_MISMATCH"
        default: return "ERROR_\(rawValue)"
        }
    }

    /// `NAME (code)`, the form the command line prints.
    public var description: String { "\(name) (\(rawValue))" }
}
