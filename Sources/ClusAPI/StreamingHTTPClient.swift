#if canImport(Glibc)
import Glibc
#endif
import ClusDBModel
import Foundation

/// A minimal blocking HTTP/1.1 client for one long response body that must be consumed as it
/// arrives (a backup stream). URLSession on Linux offers no streaming body with back-pressure: its
/// delegate callbacks queue without bound, so a backup larger than memory could not be received.
/// Here the socket is read only as fast as the receiver writes to disk, and TCP slows the sender.
///
/// It speaks exactly what the ClusDB service answers: `Content-Length` or `chunked` bodies,
/// `Connection: close`.
enum StreamingHTTPClient {
    /// Seconds a blocked send or receive may wait before the transfer is abandoned.
    static let socketTimeoutSeconds = 600
    /// Largest response head (status line and headers) accepted.
    static let headMaxBytes = 64 << 10
    /// Largest error body read from a non-200 answer.
    static let errorBodyMaxBytes = 1 << 20
    /// Bytes read from the socket per call.
    static let readBytes = 256 << 10

    /// Why a request did not complete.
    enum Failure: Error {
        /// No connection could be made: the request was never sent; another endpoint may be tried.
        case cannotConnect(String)
        /// The request failed after it was sent.
        case failed(ClusterError)
    }

    /// POSTs `body` as JSON to `path` (under `/v1/`) on `endpoint` and hands every piece of a 200
    /// answer's body to `receive`. A non-200 answer's JSON error is thrown.
    static func post(
        endpoint: String, path: String, body: [UInt8], receive: ([UInt8]) throws(ClusterError) -> Void
    ) throws(Failure) {
        let socket = try connect(endpoint)
        defer { close(socket) }
        let head = "POST \(ClientProtocol.prefix)/\(path) HTTP/1.1\r\nHost: \(endpoint)\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        do throws(ClusterError) {
            try sendAll(socket, Array(head.utf8) + body, endpoint)
            var reader = SocketReader(socket: socket, endpoint: endpoint)
            let (status, headers) = try reader.readHead()
            var bodyReader = try BodyReader(headers: headers)
            if status == 200 {
                while let piece = try bodyReader.next(&reader) { try receive(piece) }
                return
            }
            var errorBody: [UInt8] = []
            while let piece = try bodyReader.next(&reader), errorBody.count < errorBodyMaxBytes { errorBody += piece }
            if let answer = try? JSONDecoder().decode(ClientProtocol.ErrorResponse.self, from: Data(errorBody)) {
                throw answer.clusterError
            }
            throw ClusterError(.invalidData, "\(endpoint) answered HTTP \(status) without a ClusDB error body")
        } catch {
            throw .failed(error)
        }
    }

    static func connect(_ endpoint: String) throws(Failure) -> Int32 {
        guard let colon = endpoint.lastIndex(of: ":"), let port = UInt16(endpoint[endpoint.index(after: colon)...]) else {
            throw .failed(ClusterError(.invalidParameter, "endpoint \"\(endpoint)\" is not host:port"))
        }
        var host = String(endpoint[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let resolved = getaddrinfo(host, String(port), &hints, &list)
        guard resolved == 0, let first = list else {
            throw .cannotConnect("\(endpoint): cannot resolve \(host)")
        }
        defer { freeaddrinfo(list) }
        var problem = "no address"
        var candidate: UnsafeMutablePointer<addrinfo>? = first
        while let info = candidate {
            candidate = info.pointee.ai_next
            let descriptor = socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), info.pointee.ai_protocol)
            if descriptor < 0 { continue }
            if Glibc.connect(descriptor, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 {
                var timeout = timeval(tv_sec: socketTimeoutSeconds, tv_usec: 0)
                setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                return descriptor
            }
            problem = String(cString: strerror(errno))
            close(descriptor)
        }
        throw .cannotConnect("\(endpoint): \(problem)")
    }

    static func sendAll(_ socket: Int32, _ bytes: [UInt8], _ endpoint: String) throws(ClusterError) {
        var sent = 0
        while sent < bytes.count {
            let result = bytes.withUnsafeBytes { send(socket, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            if result < 0 {
                if errno == EINTR { continue }
                throw ClusterError(.clusterNodeDown, "\(endpoint): sending failed (\(String(cString: strerror(errno))))")
            }
            sent += result
        }
    }

    /// Buffered reads from the socket.
    struct SocketReader {
        let socket: Int32
        let endpoint: String
        var buffer: [UInt8] = []
        var position = 0
        /// Bytes asked of the socket per read: large for a backup stream, small for JSON answers.
        var readSize = StreamingHTTPClient.readBytes

        /// Reads more bytes; false at the end of the stream.
        mutating func fill() throws(ClusterError) -> Bool {
            if position == buffer.count {
                buffer.removeAll(keepingCapacity: true)
                position = 0
            }
            var chunk = [UInt8](repeating: 0, count: readSize)
            while true {
                let count = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress!, $0.count, 0) }
                if count < 0 {
                    if errno == EINTR { continue }
                    throw ClusterError(
                        .clusterNodeDown, "\(endpoint): the connection failed mid-transfer (\(String(cString: strerror(errno))))")
                }
                if count == 0 { return false }
                buffer.append(contentsOf: chunk[0..<count])
                return true
            }
        }

        var available: Int { buffer.count - position }

        /// Takes up to `count` buffered bytes.
        mutating func take(_ count: Int) -> [UInt8] {
            let end = position + min(count, available)
            defer { position = end }
            return Array(buffer[position..<end])
        }

        /// Reads one CRLF-terminated line (without the CRLF).
        mutating func line(limit: Int) throws(ClusterError) -> String {
            while true {
                if let end = buffer[position...].firstIndex(of: 0x0A) {
                    var bytes = buffer[position..<end]
                    position = end + 1
                    if bytes.last == 0x0D { bytes = bytes.dropLast() }
                    return String(decoding: bytes, as: UTF8.self)
                }
                guard available < limit else { throw ClusterError(.invalidData, "\(endpoint) sent an over-long HTTP line") }
                guard try fill() else { throw ClusterError(.clusterNodeDown, "\(endpoint) closed the connection early") }
            }
        }

        /// The status code and the headers (names lower-cased).
        mutating func readHead() throws(ClusterError) -> (Int, [String: String]) {
            let statusLine = try line(limit: StreamingHTTPClient.headMaxBytes)
            let parts = statusLine.split(separator: " ")
            guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
                throw ClusterError(.invalidData, "\(endpoint) did not answer HTTP/1.1")
            }
            var headers: [String: String] = [:]
            var total = statusLine.utf8.count
            while true {
                let header = try line(limit: StreamingHTTPClient.headMaxBytes)
                total += header.utf8.count
                guard total <= StreamingHTTPClient.headMaxBytes else { throw ClusterError(.invalidData, "\(endpoint) sent over-long headers") }
                if header.isEmpty { return (status, headers) }
                guard let colon = header.firstIndex(of: ":") else { continue }
                headers[header[..<colon].lowercased()] = header[header.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
    }

    /// Yields a response body framed by `Content-Length`, `chunked`, or the end of the connection.
    struct BodyReader {
        enum Framing {
            case length(remaining: Int)
            case chunked(remainingInChunk: Int, done: Bool)
            case untilClose
        }
        var framing: Framing

        init(headers: [String: String]) throws(ClusterError) {
            if headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
                framing = .chunked(remainingInChunk: 0, done: false)
            } else if let text = headers["content-length"] {
                guard let length = Int(text), length >= 0 else { throw ClusterError(.invalidData, "a bad Content-Length: \(text)") }
                framing = .length(remaining: length)
            } else {
                framing = .untilClose
            }
        }

        /// The next piece of the body, nil at its end.
        mutating func next(_ reader: inout SocketReader) throws(ClusterError) -> [UInt8]? {
            switch framing {
            case .length(let remaining):
                if remaining == 0 { return nil }
                if reader.available == 0, try !reader.fill() {
                    throw ClusterError(.clusterNodeDown, "\(reader.endpoint) closed the connection \(remaining) bytes before the end")
                }
                let piece = reader.take(remaining)
                framing = .length(remaining: remaining - piece.count)
                return piece
            case .untilClose:
                if reader.available == 0, try !reader.fill() { return nil }
                return reader.take(reader.available)
            case .chunked(var remaining, let done):
                if done { return nil }
                if remaining == 0 {
                    let sizeLine = try reader.line(limit: 1024)
                    let digits = sizeLine.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
                    guard let size = Int(digits, radix: 16), size >= 0 else {
                        throw ClusterError(.invalidData, "\(reader.endpoint) sent a bad chunk size \"\(sizeLine)\"")
                    }
                    if size == 0 {
                        // Trailers, if any, end with an empty line.
                        while try !reader.line(limit: StreamingHTTPClient.headMaxBytes).isEmpty {}
                        framing = .chunked(remainingInChunk: 0, done: true)
                        return nil
                    }
                    remaining = size
                }
                if reader.available == 0, try !reader.fill() {
                    throw ClusterError(.clusterNodeDown, "\(reader.endpoint) closed the connection inside a chunk")
                }
                let piece = reader.take(remaining)
                remaining -= piece.count
                if remaining == 0 {
                    let end = try reader.line(limit: 2)
                    guard end.isEmpty else { throw ClusterError(.invalidData, "\(reader.endpoint) sent a chunk without its CRLF") }
                }
                framing = .chunked(remainingInChunk: remaining, done: false)
                return piece
            }
        }
    }
}
