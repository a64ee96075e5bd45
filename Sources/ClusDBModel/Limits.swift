/// Every bound ClusDB enforces, in one place, so that each queue, batch and name has a named limit.
///
/// Lengths of names are counted in UTF-16 code units, as the Windows registry counts them, so that
/// a name ClusDB accepts also fits the C library's `WCHAR` buffers.
public enum Limits {
    /// Longest key name (one path component), in UTF-16 code units; the registry's limit.
    public static let keyNameMaxLength = 255
    /// Longest value name, in UTF-16 code units; the registry's limit.
    public static let valueNameMaxLength = 16_383
    /// Deepest key path below the hive root; the registry's limit.
    public static let keyDepthMax = 512
    /// Largest value payload, in bytes of its Win32 form (UTF-16 strings with their NULs).
    public static let valueDataMaxBytes = 1 << 20
    /// Most commands in one write batch (an import of 100,000 values plus its keys fits).
    public static let batchCommandsMax = 1 << 20
    /// Largest encoded command (one quorum-log record payload), in bytes.
    public static let commandEncodedMaxBytes = 64 << 20
    /// Largest HTTP request body the service reads for every endpoint but the batch endpoint, in
    /// bytes: a set-value of the largest value (``valueDataMaxBytes`` as JSON: hex doubles it,
    /// `\u0001` escapes of a string multiply it by three) fits with room to spare. Larger bodies
    /// are refused with `ERROR_INVALID_PARAMETER` naming this limit.
    public static let requestBodyMaxBytes = 16 << 20
    /// Largest HTTP request body of `POST /v1/registry/batch`, in bytes: an import is one atomic
    /// batch (up to ``batchCommandsMax`` commands and ``commandEncodedMaxBytes`` encoded), and its
    /// JSON is larger than its encoding. ``requestBytesBufferedMax`` keeps several of them from
    /// exhausting memory together.
    public static let batchRequestBodyMaxBytes = 256 << 20
    /// Most client connections open at once across the service; a connection beyond it is answered
    /// `503` with `ERROR_BUSY` naming this limit and closed. The service raises its soft limit on open
    /// files to fit it.
    public static let connectionsMax = 4_096
    /// Most requests in flight across the service (head received, answer not yet written to its
    /// end); a request beyond it is answered `503` with `ERROR_BUSY` naming this limit, and the
    /// connection stays open.
    public static let requestsInFlightMax = 1_024
    /// Most request-body bytes the service holds at once for requests not yet answered, across all
    /// connections. A request whose declared `Content-Length` does not fit is answered `503` with
    /// `ERROR_BUSY` naming this limit; a body without a length that outgrows it closes its connection
    /// (no answer is possible in the middle of a body). Larger than one batch body, so a largest
    /// import always fits on an otherwise quiet node.
    public static let requestBytesBufferedMax = 512 << 20
    /// Seconds a request head may take from its first byte until it is complete; past it the
    /// connection is closed (the head is incomplete, so there is nothing to answer).
    public static let requestHeadSeconds = 10
    /// Seconds a request body may take, from its head to its end, plus one second for every
    /// ``requestBodyMinBytesPerSecond`` bytes received: a large import over a slow link is fine, a
    /// client dripping bytes is not. Past it the connection is closed.
    public static let requestBodySeconds = 30
    /// The slowest body rate that earns more time (see ``requestBodySeconds``), in bytes per second.
    public static let requestBodyMinBytesPerSecond = 64 << 10
    /// Seconds a keep-alive connection may sit idle (no request being read, no answer owed)
    /// before the service closes it.
    public static let connectionIdleSeconds = 60
    /// Seconds an answer may wait for a client that takes no bytes (the connection's send buffer
    /// stays full) before the service closes the connection. For a streamed backup this ends the
    /// backup and releases its pin on the node's checkpoint, so checkpoints resume.
    public static let answerStallSeconds = 30
    /// Request parts (heads, body chunks, ends) a connection may pipeline behind a write that the
    /// event-loop fast path has handed to the node; they wait until it is answered, and reading
    /// pauses meanwhile, so only what one socket read decoded can pile up. Past it the service
    /// closes the connection.
    public static let pipelinedRequestPartsMax = 4_096
    /// Requests one connection may have sent whose answers are not yet written (HTTP/1.1
    /// pipelining); past it the service closes the connection. One socket read decodes at most
    /// 64 KiB, so a client that waits for its answers never comes near it.
    public static let pipelinedRequestsMax = 4_096
    /// Most proposals waiting for the commit loop; beyond it writers get `ERROR_BUSY`.
    public static let pendingProposalsMax = 16_384
    /// Most log entries one group commit writes with a single fdatasync.
    public static let groupCommitEntriesMax = 4_096
    /// Most payload bytes one group commit writes with a single fdatasync (one entry may exceed it).
    public static let groupCommitBytesMax = 16 << 20
    /// Most reads waiting at once for the apply stage to reach their index; beyond it reads get
    /// `ERROR_BUSY`.
    public static let applyWaitersMax = 16_384
    /// Most committed entries waiting for the apply stage; past it the log stage pauses until the
    /// apply stage catches up (writers queue meanwhile, up to ``pendingProposalsMax``), so memory
    /// stays bounded when SQLite is slower than the log.
    public static let committedEntriesMax = 65_536
    /// How long the apply stage lets committed writes that are already answered gather before it
    /// applies them, in microseconds: one SQLite transaction for many writes rewrites each touched
    /// page once, not once per write. Nothing waits for it — a read, a write answered only once
    /// applied, a checkpoint or a stop makes the apply stage start at once.
    public static let applyGatherMicroseconds = 5_000
    /// The apply stage stops gathering once this many committed entries wait.
    public static let applyGatherEntriesTarget = 1_024
    /// Most committed entries the apply stage puts in one SQLite transaction (a group larger than
    /// this is applied alone).
    public static let applyBatchEntriesMax = 16_384
    /// Most payload bytes the apply stage puts in one SQLite transaction, with the same exception.
    public static let applyBatchBytesMax = 64 << 20
    /// A quorum-log segment is closed and a new one started once it passes this size.
    public static let quorumLogSegmentTargetBytes = 4 << 20
    /// Default of `Quorum\MaxQuorumLogSize`: the log is truncated behind a checkpoint past it.
    public static let maxQuorumLogSizeDefault = 4 << 20
    /// Smallest `Quorum\MaxQuorumLogSize` honoured; smaller settings are raised to it.
    public static let maxQuorumLogSizeMin = 64 << 10
    /// A new cluster checkpoint waits until the log holds at least 1/N of the previous checkpoint's
    /// size (as well as `MaxQuorumLogSize`), so copying the hive costs at most N bytes per logged
    /// byte. Only hives far larger than `MaxQuorumLogSize` are affected.
    public static let checkpointImageBytesPerLogByte = 2
    /// Interval of the background WAL checkpoints of the hive, in milliseconds.
    public static let hiveWALCheckpointIntervalMilliseconds = 100
    /// SQLite's own WAL checkpoint threshold for the hive's writer, in pages: a safety net that
    /// bounds the WAL if background checkpoints stop (they normally run long before it).
    public static let hiveWALAutocheckpointPages = 16_384
    /// Largest body of one peer-protocol frame (docs/FORMATS.md, "Peer protocol"): one append
    /// always carries at least one entry, and one entry may be as large as a command may be
    /// encoded, plus room for the message around it. A length above it is refused before any
    /// of the body is buffered, and the connection is closed.
    public static let peerFrameBodyBytesMax = commandEncodedMaxBytes + (64 << 10)
    /// Bytes of checkpoint image per snapshot chunk frame.
    public static let peerSnapshotChunkBytes = 1 << 20
    /// Cluster checkpoints kept in the quorum directory (the newest and the one before it).
    public static let clusterCheckpointsKept = 2
}
