#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A blocking loopback TCP connection for tests that must control every byte: send part of a
/// request, stop reading, see the server close. Reads give up after `readTimeoutSeconds`, so a
/// missing event fails the test instead of hanging it; sends never raise `SIGPIPE`.
final class TestSocket {
    /// One HTTP/1.1 answer as read off the socket.
    struct Answer {
        var status: Int
        var headers: [String: String]
        var body: Data
    }

    /// How a wait for the server's close ended.
    enum CloseOutcome: Equatable {
        /// End of stream or a reset: the server closed the connection.
        case closed
        /// Nothing happened within the read timeout.
        case timedOut
    }

    let descriptor: Int32
    private var buffer: [UInt8] = []

    /// Connects to `127.0.0.1:port`; `receiveBuffer` shrinks the socket's receive buffer first, so
    /// that a client that stops reading stalls the server quickly.
    init(port: Int, receiveBuffer: Int32? = nil, readTimeoutSeconds: Int = 60) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        var timeout = timeval(tv_sec: readTimeoutSeconds, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        if var size = receiveBuffer {
            setsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let code = errno
            close(descriptor)
            throw POSIXError(POSIXErrorCode(rawValue: code) ?? .ECONNREFUSED)
        }
    }

    deinit { close(descriptor) }

    /// Sends all of `bytes`; false when the connection is gone.
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if count <= 0 { return false }
            sent += count
        }
        return true
    }

    /// Sends `text` as UTF-8; false when the connection is gone.
    @discardableResult
    func send(_ text: String) -> Bool { send(Array(text.utf8)) }

    /// Reads more bytes into the buffer; false at end of stream, on a reset or a timeout.
    private func fill() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65_536)
        let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return false }
        buffer += chunk[..<count]
        return true
    }

    /// Reads until `count` bytes (or the end) are buffered; returns what is buffered, up to `count`.
    func readPrefix(_ count: Int) -> [UInt8] {
        while buffer.count < count, fill() {}
        return Array(buffer.prefix(count))
    }

    /// The next answer (by `Content-Length`), or nil when the stream ends first.
    func answer() -> Answer? {
        let separator = Array("\r\n\r\n".utf8)
        var headEnd: Int?
        while headEnd == nil {
            headEnd = buffer.indices.dropLast(3).first { buffer[$0..<$0 + 4].elementsEqual(separator) }
            if headEnd == nil && !fill() { return nil }
        }
        guard let headEnd else { return nil }
        let lines = String(decoding: buffer[..<headEnd], as: UTF8.self).components(separatedBy: "\r\n")
        let parts = lines[0].split(separator: " ")
        let status = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let length = Int(headers["content-length"] ?? "0") ?? 0
        let bodyStart = headEnd + 4
        while buffer.count < bodyStart + length {
            if !fill() { return nil }
        }
        let body = Data(buffer[bodyStart..<bodyStart + length])
        buffer.removeFirst(bodyStart + length)
        return Answer(status: status, headers: headers, body: body)
    }

    /// Reads and drops everything until the server closes the connection (or the read timeout).
    func waitForClose() -> CloseOutcome {
        buffer.removeAll()
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count > 0 { continue }
            if count == 0 { return .closed }
            if errno == EINTR { continue }
            return errno == EAGAIN || errno == EWOULDBLOCK ? .timedOut : .closed
        }
    }

    /// Whether the connection is still open, looked at without waiting or consuming anything.
    var isOpen: Bool {
        var byte: UInt8 = 0
        let count = recv(descriptor, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        if count > 0 { return true }
        return count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)
    }

    /// Whether bytes from the server wait to be read, looked at without waiting or consuming them.
    var hasBytesWaiting: Bool {
        if !buffer.isEmpty { return true }
        var byte: UInt8 = 0
        return recv(descriptor, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) > 0
    }

    /// A request with a JSON body (`close` adds `Connection: close`).
    static func post(_ path: String, _ body: String, close: Bool = false) -> String {
        "POST /v1/\(path) HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            + (close ? "Connection: close\r\n" : "") + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }

    /// `GET /v1/status`.
    static let status = "GET /v1/status HTTP/1.1\r\nHost: test\r\n\r\n"
}

/// Raises this process's soft limit on open files to its hard limit (tests that open a thousand
/// connections need more than the common default of 1,024).
func raiseOpenFileLimit() {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
    limit.rlim_cur = limit.rlim_max
    setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
}

/// A process's resident memory in KiB, from `/proc/PID/status` (`VmRSS`).
func residentKilobytes(of pid: Int32) -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
    }
    return nil
}
