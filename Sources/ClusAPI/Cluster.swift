import ClusDBBackup
import ClusDBModel
import ClusDBStore
import Foundation
import Synchronization

/// An open connection to a cluster (`HCLUSTER`), from ``openCluster(_:)``.
///
/// Every registry call names its key by a backslash path relative to the hive root, so there are
/// no key handles to leak. Calls after ``close()`` throw `ERROR_INVALID_HANDLE`.
///
/// ```swift
/// let cluster = try await openCluster(nil)
/// defer { cluster.close() }
/// try await cluster.setValue(key: #"Resources\Web"#, name: "Port", value: .dword(8080), createKey: true)
/// ```
public final class Cluster: Sendable {
    /// The cluster's name, as the service reports it.
    public let clusterName: String
    /// The cluster's id, as the service reports it.
    public let clusterID: String
    /// The endpoints this handle talks to.
    public var endpoints: [String] { transport.endpoints }
    private let transport: HTTPTransport
    private let closed = Mutex(false)
    private let sessions = SessionPool()
    /// Whether the node applies writes in client sessions (its status says so); a release-1 node
    /// ignores the header, and a resend to it could apply a write twice.
    private let sessionsSupported: Bool

    init(transport: HTTPTransport, status: ClientProtocol.StatusResponse) {
        self.transport = transport
        sessionsSupported = status.clientSessions == true
        clusterName = status.cluster.name
        clusterID = status.cluster.id
    }

    /// Closes the handle (`CloseCluster`); later calls throw `ERROR_INVALID_HANDLE`.
    public func close() {
        let wasClosed = closed.withLock { value in
            defer { value = true }
            return value
        }
        if !wasClosed { transport.invalidate() }
    }

    private func live() throws(ClusterError) -> HTTPTransport {
        if closed.withLock({ $0 }) { throw ClusterError(.invalidHandle, "the cluster handle is closed") }
        return transport
    }

    /// Sends a write in a client session of this handle (``SessionPool``): a retry after a lost
    /// answer is applied once.
    private func write(_ path: String, _ body: some Encodable) async throws(ClusterError) -> ClientProtocol.WriteResponse {
        let transport = try live()
        guard sessionsSupported else { return try await transport.call(path, body, resendable: false) }
        let session = sessions.take()
        defer { sessions.giveBack(session) }
        return try await transport.call(path, body, session: session)
    }

    // MARK: Status

    /// The cluster's members, quorum owner and indexes.
    public func status() async throws(ClusterError) -> ClientProtocol.StatusResponse {
        try live().decode(try await live().send("status", body: nil))
    }

    // MARK: Keys

    /// Whether `createKey` made a key or found it.
    public enum KeyDisposition: Sendable, Equatable {
        /// `REG_CREATED_NEW_KEY`.
        case createdNewKey
        /// `REG_OPENED_EXISTING_KEY`.
        case openedExistingKey
    }

    /// Creates a key and its missing parents, or opens it (`ClusterRegCreateKey`).
    @discardableResult
    public func createKey(_ key: String) async throws(ClusterError) -> KeyDisposition {
        let answer = try await write("registry/create-key", ClientProtocol.KeyRequest(key: key))
        return answer.created == true ? .createdNewKey : .openedExistingKey
    }

    /// Succeeds when the key exists (`ClusterRegOpenKey`); `ERROR_FILE_NOT_FOUND` otherwise.
    public func openKey(_ key: String) async throws(ClusterError) {
        let _: ClientProtocol.WriteResponse = try await live().call("registry/open-key", ClientProtocol.KeyRequest(key: key))
    }

    /// Deletes a key (`ClusterRegDeleteKey`): a key with subkeys is `ERROR_ACCESS_DENIED` unless
    /// `recursive`.
    public func deleteKey(_ key: String, recursive: Bool = false) async throws(ClusterError) {
        _ = try await write("registry/delete-key", ClientProtocol.DeleteKeyRequest(key: key, recursive: recursive))
    }

    /// The subkeys and values of a key (`ClusterRegEnumKey` and `ClusterRegEnumValue`).
    public func enumerate(key: String) async throws(ClusterError) -> KeyListing {
        try await live().call("registry/enum-key", ClientProtocol.KeyRequest(key: key))
    }

    // MARK: Values

    /// Sets a value, creating it (`ClusterRegSetValue`). With `createKey` the key is created
    /// first when missing; otherwise a missing key is `ERROR_FILE_NOT_FOUND`.
    /// - Returns: the log index the change was committed at.
    @discardableResult
    public func setValue(
        key: String, name: String, value: RegistryValue, createKey: Bool = false
    ) async throws(ClusterError) -> UInt64 {
        let answer = try await write(
            "registry/set-value", ClientProtocol.SetValueRequest(key: key, name: name, value: value, createKey: createKey))
        return answer.index
    }

    /// Reads one value (`ClusterRegQueryValue`).
    public func queryValue(key: String, name: String) async throws(ClusterError) -> RegistryValue {
        try await live().call("registry/query-value", ClientProtocol.ValueRequest(key: key, name: name))
    }

    /// Deletes one value (`ClusterRegDeleteValue`); a missing one is `ERROR_FILE_NOT_FOUND`.
    public func deleteValue(key: String, name: String) async throws(ClusterError) {
        _ = try await write("registry/delete-value", ClientProtocol.ValueRequest(key: key, name: name))
    }

    // MARK: Backup

    /// Backs up the cluster database (`BackupClusterDatabase`) into the directory `path`.
    ///
    /// By default the backup is streamed from the node and written on this machine; with
    /// `onQuorumOwner` the quorum owner writes `path` in its own file system (the original
    /// semantics). Either way the directory holds the layout of `DESIGN.md` §6 and its completion
    /// marker is written last, once every file is written, fsynced and checked.
    ///
    /// - Parameter progress: called now and then with the number of bytes received so far
    ///   (streamed backups only), for a progress display.
    /// - Returns: the manifest written.
    /// - Throws: `ERROR_DIRECTORY` when `path` is a file, `ERROR_PATH_NOT_FOUND` when its parent is
    ///   missing, `ERROR_ACCESS_DENIED`, `ERROR_DISK_FULL`, `ERROR_ALREADY_EXISTS` when the
    ///   directory holds files that are not a backup, `ERROR_BUSY` while another backup runs.
    @discardableResult
    public func backupClusterDatabase(
        to path: String, onQuorumOwner: Bool = false, progress: (@Sendable (Int) -> Void)? = nil
    ) async throws(ClusterError) -> BackupManifest {
        let transport = try live()
        if onQuorumOwner {
            return try await transport.call("backup", ClientProtocol.BackupRequest(path: path))
        }
        // Fail fast on a bad path; the earlier backup in it is only replaced once the node has
        // started sending, so a refused backup (another one running, the node down) leaves it.
        try BackupDirectoryWriter.checkPath(path)
        let endpoints = transport.endpoints
        return try await BlockingThread.run(named: "clusapi-backup") { () throws(ClusterError) -> BackupManifest in
            try Self.receiveBackup(into: path, from: endpoints, progress: progress)
        }
    }

    private static func receiveBackup(
        into path: String, from endpoints: [String], progress: (@Sendable (Int) -> Void)?
    ) throws(ClusterError) -> BackupManifest {
        var lastProblem = "no endpoint given"
        for endpoint in endpoints {
            var receiver: BackupStreamReceiver?
            var received = 0
            do throws(StreamingHTTPClient.Failure) {
                try StreamingHTTPClient.post(endpoint: endpoint, path: "backup/stream", body: Array("{}".utf8)) {
                    (piece) throws(ClusterError) in
                    if receiver == nil { receiver = BackupStreamReceiver(writer: try BackupDirectoryWriter(path: path)) }
                    try receiver?.receive(piece)
                    received += piece.count
                    progress?(received)
                }
            } catch {
                switch error {
                case .cannotConnect(let problem):
                    lastProblem = problem
                    continue
                case .failed(let clusterError):
                    receiver?.abandon()
                    throw clusterError
                }
            }
            guard let receiver else { throw ClusterError(.invalidData, "\(endpoint) sent an empty backup stream") }
            return try receiver.finish()
        }
        throw ClusterError(.clusterNodeDown, "no node of the cluster answered (\(lastProblem))")
    }

    // MARK: Batches, export, import

    /// Runs an atomic batch (`ClusterRegCloseBatch` with commit): every command or none.
    /// On failure the error's `failedCommand` is the failing command's index (-1: before any ran).
    /// - Returns: the log index the batch was committed at.
    @discardableResult
    public func executeBatch(_ batch: RegistryBatch) async throws(ClusterError) -> UInt64 {
        let answer = try await write("registry/batch", ClientProtocol.BatchRequest(key: batch.root, commands: batch.commands))
        return answer.index
    }

    /// The subtree at `key` in the export format, as the exact bytes the service wrote.
    public func exportJSON(key: String = "") async throws(ClusterError) -> Data {
        let body: Data
        do {
            body = try JSONEncoder().encode(ClientProtocol.KeyRequest(key: key))
        } catch {
            throw ClusterError(.invalidParameter, "the request could not be encoded: \(error)")
        }
        return try await live().send("registry/export", body: body)
    }

    /// The subtree at `key`, parsed.
    public func export(key: String = "") async throws(ClusterError) -> ExportedKey {
        try ExportedKey(jsonBytes: try await exportJSON(key: key))
    }

    /// Merges a subtree into the hive at `key` as one atomic batch: keys are created, values set;
    /// nothing is deleted.
    @discardableResult
    public func importTree(_ tree: ExportedKey, at key: String = "") async throws(ClusterError) -> UInt64 {
        try await executeBatch(try RegistryBatch(importing: tree, at: key))
    }
}

/// Opens a cluster (`OpenCluster`): nil or "" is the local default cluster, otherwise
/// endpoints or a registered name (see ``ClusterEndpoints``).
/// - Throws: `ERROR_CLUSTER_NODE_DOWN` when no endpoint answers,
///   `ERROR_CLUSTER_INSTANCE_ID_MISMATCH` when the endpoints belong to another cluster.
public func openCluster(_ name: String? = nil) async throws(ClusterError) -> Cluster {
    let resolved = try ClusterEndpoints.resolve(name)
    let transport = HTTPTransport(endpoints: resolved.endpoints)
    do throws(ClusterError) {
        let status: ClientProtocol.StatusResponse = try transport.decode(try await transport.send("status", body: nil))
        if let expected = resolved.expectedName, expected != status.cluster.name {
            throw ClusterError(
                .clusterInstanceIDMismatch,
                "\(resolved.endpoints.joined(separator: ",")) serve cluster \"\(status.cluster.name)\", not \"\(expected)\"")
        }
        if let expected = resolved.expectedID, expected != status.cluster.id {
            throw ClusterError(
                .clusterInstanceIDMismatch,
                "\(resolved.endpoints.joined(separator: ",")) serve cluster id \(status.cluster.id), not \(expected)")
        }
        return Cluster(transport: transport, status: status)
    } catch {
        transport.invalidate()
        throw error
    }
}

/// Restores a backup into this machine's stopped node (`RestoreClusterDatabase`).
///
/// The backup is verified first; nothing is touched when it is damaged or incomplete
/// (`ERROR_DATABASE_BACKUP_CORRUPT`), when a node is running on the data directory
/// (`ERROR_SHARING_VIOLATION`), or when the data directory belongs to another cluster and `force`
/// is false (`ERROR_QUORUM_DISK_NOT_FOUND`). The restore is all-or-nothing even if it is killed.
/// Start the node afterwards: it forms the cluster alone from the restored database.
///
/// - Parameters:
///   - path: the backup directory.
///   - force: replace a data directory of another cluster.
///   - quorumPath: put the restored checkpoint and quorum log in this new or empty directory
///     (a replacement location) instead of the data directory's `quorum/`.
///   - dataDirectory: the node's data directory (default `$CLUSDB_DATA_DIR` or `./clusdb-data`).
///   - toIndex: replay the backup's quorum log only up to this index.
///   - dryRun: report what would change and change nothing.
/// - Returns: what was (or would be) restored.
@discardableResult
public func restoreClusterDatabase(
    from path: String, force: Bool = false, quorumPath: String? = nil, dataDirectory: String? = nil,
    toIndex: UInt64? = nil, dryRun: Bool = false
) async throws(ClusterError) -> RestoreReport {
    let request = RestoreRequest(
        backupDirectory: path, dataDirectory: dataDirectory ?? defaultDataDirectory(), force: force,
        quorumPath: quorumPath.flatMap { $0.isEmpty ? nil : $0 }, toIndex: toIndex, dryRun: dryRun)
    return try await BlockingThread.run(named: "clusapi-restore") { () throws(ClusterError) -> RestoreReport in try ClusterRestore.run(request) }
}

/// The local node's data directory: `$CLUSDB_DATA_DIR`, or `./clusdb-data` as `clusdb serve` uses.
public func defaultDataDirectory() -> String {
    if let value = ProcessInfo.processInfo.environment["CLUSDB_DATA_DIR"], !value.isEmpty { return value }
    return "./clusdb-data"
}
