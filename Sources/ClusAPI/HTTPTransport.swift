#if canImport(Glibc)
import Glibc
#endif
import ClusDBModel
import Foundation
import Synchronization

/// Sends JSON requests to the first endpoint that accepts a connection, over HTTP/1.1 keep-alive
/// connections on blocking sockets.
///
/// A request moves on to the next endpoint only when the connection could not be made (so it was
/// never sent); any later failure reports `ERROR_CLUSTER_NODE_DOWN` with the outcome unknown,
/// because a write might have been committed — unless the write carries a client session: then
/// it is sent again, with the same session and number, up to ``sessionAttemptsMax`` times in
/// all, and the hive applies it once and answers a retry with the first outcome.
///
/// Why not URLSession: on Linux it is libcurl, and loading it (with OpenSSL, GnuTLS, Kerberos and
/// LDAP behind it) and setting it up cost a one-write `clusdb reg set` about half of its time
/// (`docs/PERFORMANCE.md`, "The command line"). The service speaks plain HTTP/1.1 with
/// `Content-Length` answers, which the blocking client that backup streams already use reads.
/// Each exchange runs on a thread of its own, never on Swift's cooperative pool, so a slow node
/// blocks only its own caller.
final class HTTPTransport: Sendable {
    let endpoints: [String]
    /// Idle keep-alive connections, by endpoint (at most ``idleConnectionsMax`` in all).
    private let idle = Mutex<[String: [Int32]]>([:])
    private let closed = Mutex(false)
    /// Most idle connections kept for reuse; more are closed after their answer.
    static let idleConnectionsMax = 16

    init(endpoints: [String]) {
        self.endpoints = endpoints
    }

    deinit { invalidate() }

    /// Closes every idle connection; requests made afterwards fail.
    func invalidate() {
        closed.withLock { $0 = true }
        let sockets = idle.withLock { pool in
            defer { pool.removeAll() }
            return pool.values.flatMap { $0 }
        }
        for socket in sockets { close(socket) }
    }

    /// Attempts of a write in a client session whose outcome stayed unknown (the connection
    /// failed after the request was sent).
    static let sessionAttemptsMax = 3
    /// Pause before a session retry, times the attempts so far.
    static let sessionRetryPauseMicroseconds = 100_000
    /// No retry starts later than this after the first send: the hive remembers sessions by
    /// entries and by count (``SessionRules``), which assume retries within seconds.
    static let sessionRetryWindowSeconds: UInt64 = 30

    /// Sends `body` to `path` (GET when nil) and returns the 200 answer's bytes; a write with a
    /// `session` carries it in the `ClusDB-Session` header and is retried while its outcome is
    /// unknown.
    /// - Throws: the service's ``ClusterError``, or `ERROR_CLUSTER_NODE_DOWN`.
    /// - Parameter resendable: false for a write without a session: one the node may have read
    ///   before the connection failed is never sent again (it could be applied twice).
    func send(_ path: String, body: Data?, session: ClientSession? = nil, resendable: Bool = true) async throws(ClusterError) -> Data {
        let bytes = body.map { [UInt8]($0) }
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Data, ClusterError>, Never>) in
            let thread = Thread { [self] in
                var attempt = 1
                var unknownOutcome: ClusterError?
                let start = DispatchTime.now().uptimeNanoseconds
                while true {
                    do throws(ClusterError) {
                        continuation.resume(
                            returning: .success(try sendBlocking(path, body: bytes, session: session, resendable: resendable || session != nil)))
                        return
                    } catch {
                        // A handle closed between attempts must not hide that an earlier one may
                        // have been applied.
                        let reported = error.code == .invalidHandle ? unknownOutcome ?? error : error
                        let elapsed = DispatchTime.now().uptimeNanoseconds - start
                        guard session != nil, error.code == .clusterNodeDown, attempt < Self.sessionAttemptsMax,
                            elapsed < Self.sessionRetryWindowSeconds * 1_000_000_000
                        else {
                            continuation.resume(returning: .failure(reported))
                            return
                        }
                        unknownOutcome = error
                        // A node that just failed may be restarting: give it a moment, longer
                        // each time.
                        usleep(useconds_t(Self.sessionRetryPauseMicroseconds * attempt))
                        attempt += 1
                    }
                }
            }
            thread.start()
        }
        return try result.get()
    }

    private func sendBlocking(_ path: String, body: [UInt8]?, session: ClientSession?, resendable: Bool) throws(ClusterError) -> Data {
        if closed.withLock({ $0 }) { throw ClusterError(.invalidHandle, "the cluster handle is closed") }
        var lastProblem = "no endpoint given"
        for endpoint in endpoints {
            // A pooled connection the node closed while it was idle fails before any byte of an
            // answer, and one fresh connection is tried. But a node that read the request and
            // then failed looks the same: a write without a session is not sent again.
            if let socket = takeIdle(endpoint) {
                switch exchange(socket, endpoint, path, body, session) {
                case .answered(let data): return data
                case .failed(let error): throw error
                case .closedBeforeAnswer:
                    if !resendable {
                        throw ClusterError(.clusterNodeDown, "\(endpoint) closed the connection before answering; the outcome is unknown")
                    }
                }
            }
            let socket: Int32
            do {
                socket = try StreamingHTTPClient.connect(endpoint)
            } catch {
                switch error {
                case .cannotConnect(let problem):
                    lastProblem = problem
                    continue
                case .failed(let failure): throw failure
                }
            }
            switch exchange(socket, endpoint, path, body, session) {
            case .answered(let data): return data
            case .failed(let error): throw error
            case .closedBeforeAnswer:
                throw ClusterError(.clusterNodeDown, "\(endpoint) closed the connection before answering; the outcome is unknown")
            }
        }
        throw ClusterError(.clusterNodeDown, "no node of the cluster answered (\(lastProblem))")
    }

    private enum Exchange {
        case answered(Data)
        case failed(ClusterError)
        /// The connection ended before any byte of the answer.
        case closedBeforeAnswer
    }

    /// One request and its answer on `socket`; the socket is pooled again or closed.
    private func exchange(_ socket: Int32, _ endpoint: String, _ path: String, _ body: [UInt8]?, _ session: ClientSession?) -> Exchange {
        var head = (body == nil ? "GET " : "POST ") + "\(ClientProtocol.prefix)/\(path) HTTP/1.1\r\nHost: \(endpoint)\r\n"
        if let session { head += "\(ClientSession.headerName): \(session.headerValue)\r\n" }
        if let body { head += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n" }
        head += "\r\n"
        var reader = StreamingHTTPClient.SocketReader(socket: socket, endpoint: endpoint)
        reader.readSize = Self.readBytes
        do throws(ClusterError) {
            do throws(ClusterError) {
                try StreamingHTTPClient.sendAll(socket, Array(head.utf8) + (body ?? []), endpoint)
                guard try reader.fill() else {
                    close(socket)
                    return .closedBeforeAnswer
                }
            } catch {
                close(socket)
                return reader.buffer.isEmpty ? .closedBeforeAnswer : .failed(error)
            }
            let (status, headers) = try reader.readHead()
            var bodyReader = try StreamingHTTPClient.BodyReader(headers: headers)
            var answer: [UInt8] = []
            while let piece = try bodyReader.next(&reader) {
                answer += piece
                guard answer.count <= Self.answerMaxBytes else {
                    throw ClusterError(.invalidData, "\(endpoint) sent an answer over \(Self.answerMaxBytes) bytes")
                }
            }
            let keepAlive = headers["connection"]?.lowercased() != "close" && reader.available == 0
            if keepAlive { giveBack(socket, endpoint) } else { close(socket) }
            if status == 200 { return .answered(Data(answer)) }
            if let error = try? JSONDecoder().decode(ClientProtocol.ErrorResponse.self, from: Data(answer)) {
                return .failed(error.clusterError)
            }
            return .failed(ClusterError(.invalidData, "\(endpoint) answered HTTP \(status) without a ClusDB error body"))
        } catch {
            close(socket)
            return .failed(
                error.code == .clusterNodeDown
                    ? ClusterError(.clusterNodeDown, "\(error.message); the outcome is unknown") : error)
        }
    }

    /// Bytes asked of the socket per read (most answers fit one read).
    static let readBytes = 16 << 10

    /// Largest answer read (an export of the largest hive fits).
    static let answerMaxBytes = 1 << 30

    private func takeIdle(_ endpoint: String) -> Int32? {
        idle.withLock { pool in pool[endpoint]?.popLast() }
    }

    private func giveBack(_ socket: Int32, _ endpoint: String) {
        let kept = idle.withLock { pool -> Bool in
            let total = pool.values.reduce(0) { $0 + $1.count }
            guard total < Self.idleConnectionsMax else { return false }
            pool[endpoint, default: []].append(socket)
            return true
        }
        if !kept { close(socket) }
        // A handle closed meanwhile: nothing may stay open.
        if kept && closed.withLock({ $0 }) { invalidate() }
    }

    /// Sends an encodable body and decodes the answer.
    func call<Answer: Decodable>(
        _ path: String, _ body: some Encodable, session: ClientSession? = nil, resendable: Bool = true
    ) async throws(ClusterError) -> Answer {
        let data: Data
        do {
            data = try JSONEncoder().encode(body)
        } catch {
            throw ClusterError(.invalidParameter, "the request could not be encoded: \(error)")
        }
        return try decode(try await send(path, body: data, session: session, resendable: resendable))
    }

    func decode<Answer: Decodable>(_ data: Data) throws(ClusterError) -> Answer {
        do {
            return try JSONDecoder().decode(Answer.self, from: data)
        } catch {
            throw ClusterError(.invalidData, "the service's answer does not decode: \(error)")
        }
    }
}
