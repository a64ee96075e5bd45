import ClusDBModel

/// Cuts a peer connection's byte stream into checked ``PeerFrame``s.
///
/// Bytes go in as they arrive, in pieces of any size; frames come out once whole. The first
/// malformed frame — a bad header, a length over ``Limits/peerFrameBodyBytesMax``, a checksum
/// that does not match — throws, and the decoder stays failed: a stream that lost its framing
/// cannot be trusted past that point, so the connection is closed (never resynchronised). A
/// length over the limit throws as soon as its header has arrived, so a peer cannot make the
/// node buffer more than one frame's worth.
public struct PeerFrameDecoder: Sendable {
    private var buffer: [UInt8] = []
    /// Bytes of `buffer` already consumed.
    private var consumed = 0
    private var pendingHeader: PeerFrame.Header?
    private var failure: ClusterError?

    /// Creates a decoder at the start of a stream.
    public init() {}

    /// Bytes received but not yet returned in a frame.
    public var bufferedBytes: Int { buffer.count - consumed }

    /// Adds received bytes.
    public mutating func append(_ bytes: some Collection<UInt8>) {
        // Drop what was consumed before growing, so the buffer holds at most about one frame.
        if consumed > 0 && consumed >= buffer.count / 2 {
            buffer.removeFirst(consumed)
            consumed = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next whole frame, or nil until more bytes arrive.
    /// - Throws: what ``PeerFrame/header(_:)`` or ``PeerFrame/frame(_:body:)`` throws, then the
    ///   same error on every later call.
    public mutating func next() throws(ClusterError) -> PeerFrame? {
        if let failure { throw failure }
        do throws(ClusterError) {
            if pendingHeader == nil {
                guard bufferedBytes >= PeerFrame.headerBytes else { return nil }
                pendingHeader = try PeerFrame.header(buffer[consumed..<consumed + PeerFrame.headerBytes])
                consumed += PeerFrame.headerBytes
            }
            guard let header = pendingHeader, bufferedBytes >= header.bodyLength else { return nil }
            let body = Array(buffer[consumed..<consumed + header.bodyLength])
            consumed += header.bodyLength
            pendingHeader = nil
            return try PeerFrame.frame(header, body: body)
        } catch {
            failure = error
            buffer = []
            consumed = 0
            throw error
        }
    }
}
