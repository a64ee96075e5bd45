import ClusDBBackup
import ClusDBModel
import ClusDBNode
import ClusDBStore
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// The HTTP/JSON client API of `docs/HTTP_API.md`: every endpoint is `POST /v1/...` with a JSON
/// body (key paths contain backslashes, which JSON carries without URL escaping), except
/// `GET /v1/status`. Failures answer `{"error": {"code", "name", "message", "failedCommand"}}`.
struct ClientAPI: Sendable {
    let node: ClusterNode
    let peerAddress: String
    let logger: Logger

    /// Registers every endpoint on `router`.
    func register(on router: Router<BasicRequestContext>) {
        let prefix = ClientProtocol.prefix
        router.get("\(prefix)/status") { _, _ in json(status()) }
        writeRoute(router, "registry/create-key") { (request: ClientProtocol.KeyRequest, session) in
            let result = try await commit(.createKey(try KeyPath(request.key)), session: session)
            return ClientProtocol.WriteResponse(index: result.index, created: result.outcome == .keyCreated)
        }
        writeRoute(router, "registry/set-value") { (request: ClientProtocol.SetValueRequest, session) in
            let command = HiveCommand.setValue(
                key: try KeyPath(request.key), name: request.name, value: request.value, createKey: request.createKey)
            return ClientProtocol.WriteResponse(index: try await commit(command, session: session).index)
        }
        writeRoute(router, "registry/delete-value") { (request: ClientProtocol.ValueRequest, session) in
            let command = HiveCommand.deleteValue(key: try KeyPath(request.key), name: request.name)
            return ClientProtocol.WriteResponse(index: try await commit(command, session: session).index)
        }
        writeRoute(router, "registry/delete-key") { (request: ClientProtocol.DeleteKeyRequest, session) in
            let command = HiveCommand.deleteKey(try KeyPath(request.key), recursive: request.recursive)
            return ClientProtocol.WriteResponse(index: try await commit(command, session: session).index)
        }
        writeRoute(router, "registry/batch") { (request: ClientProtocol.BatchRequest, session) in
            let root: KeyPath
            do throws(ClusterError) {
                root = try KeyPath(request.key)
            } catch {
                throw ClusterError(error.code, error.message, failedCommand: -1)
            }
            let command = HiveCommand.batch(root: root, commands: request.commands.map(\.command))
            return ClientProtocol.WriteResponse(index: try await commit(command, session: session).index)
        }
        route(router, "registry/open-key") { (request: ClientProtocol.KeyRequest) in
            let path = try KeyPath(request.key)
            try await node.read { (hive) throws(ClusterError) in try await hive.openKey(path) }
            return ClientProtocol.WriteResponse(index: node.status.appliedIndex)
        }
        route(router, "registry/enum-key") { (request: ClientProtocol.KeyRequest) in
            let path = try KeyPath(request.key)
            return try await node.read { (hive) throws(ClusterError) in try await hive.listing(of: path) }
        }
        route(router, "registry/query-value") { (request: ClientProtocol.ValueRequest) in
            let path = try KeyPath(request.key)
            return try await node.read { (hive) throws(ClusterError) in try await hive.queryValue(key: path, name: request.name) }
        }
        route(router, "backup") { (request: ClientProtocol.BackupRequest) in
            try await node.backup(to: request.path)
        }
        router.post("\(prefix)/backup/stream") { request, _ -> Response in
            do {
                _ = try await request.body.collect(upTo: Limits.requestBodyMaxBytes)
                let source = SourceBox(source: try await node.openBackup())
                return Response(
                    status: .ok, headers: [.contentType: "application/octet-stream"],
                    body: ResponseBody { [logger] writer in
                        // Closing the source releases the node's pin, so checkpoints resume: on
                        // success, and when the connection is closed under a write — the client
                        // went away, or took no bytes for Limits.answerStallSeconds (ConnectionGuard).
                        defer { source.source.close() }
                        var producer = BackupStreamProducer(source: source.source)
                        do {
                            while let bytes = producer.next() { try await writer.write(ByteBuffer(bytes: bytes)) }
                            try await writer.finish(nil)
                        } catch {
                            logger.warning(
                                "a streamed backup ended before it was complete; its pin on checkpoints is released",
                                metadata: ["error": "\(error)"])
                            throw error
                        }
                    })
            } catch {
                return failure(error)
            }
        }
        router.post("\(prefix)/registry/export") { request, _ -> Response in
            do {
                let body: ClientProtocol.KeyRequest = try await decode(request, maxBytes: Limits.requestBodyMaxBytes)
                let path = try KeyPath(body.key)
                let tree = try await node.read { (hive) throws(ClusterError) in try await hive.export(path) }
                return Response(
                    status: .ok, headers: [.contentType: "application/json"],
                    body: ResponseBody(byteBuffer: ByteBuffer(bytes: tree.jsonBytes())))
            } catch {
                return failure(error)
            }
        }
    }

    /// Registers `POST /v1/<path>` decoding `Body` and encoding the handler's answer.
    private func route<Body: Decodable & SendableMetatype, Answer: Encodable & SendableMetatype>(
        _ router: Router<BasicRequestContext>, _ path: String,
        _ handler: @escaping @Sendable (Body) async throws -> Answer
    ) {
        router.post("\(ClientProtocol.prefix)/\(path)") { request, _ -> Response in
            do {
                let body: Body = try await decode(request, maxBytes: ServerLimits.bodyMaxBytes(path: request.head.path))
                return json(try await handler(body))
            } catch {
                return failure(error)
            }
        }
    }

    /// Registers `POST /v1/<path>` for a write: like ``route(_:_:_:)``, and the request's
    /// client session (the `ClusDB-Session` header), if it has one, goes to the handler. A
    /// malformed header is `ERROR_INVALID_PARAMETER`, before anything is proposed.
    private func writeRoute<Body: Decodable & SendableMetatype, Answer: Encodable & SendableMetatype>(
        _ router: Router<BasicRequestContext>, _ path: String,
        _ handler: @escaping @Sendable (Body, ClientSession?) async throws -> Answer
    ) {
        router.post("\(ClientProtocol.prefix)/\(path)") { request, _ -> Response in
            do {
                let session: ClientSession?
                do throws(ClusterError) {
                    session = try Self.session(of: request.head)
                } catch {
                    // A batch's failures before its first command name command -1.
                    throw path == "registry/batch" ? ClusterError(error.code, error.message, failedCommand: -1) : error
                }
                let body: Body = try await decode(request, maxBytes: ServerLimits.bodyMaxBytes(path: request.head.path))
                return json(try await handler(body, session))
            } catch {
                return failure(error)
            }
        }
    }

    /// The name of the `ClusDB-Session` header.
    static let sessionHeader: HTTPField.Name = {
        guard let name = HTTPField.Name(ClientSession.headerName) else { preconditionFailure("a valid header name") }
        return name
    }()

    /// The `ClusDB-Session` header of a request: nil without one.
    /// - Throws: `ERROR_INVALID_PARAMETER` for a malformed one (or two of them).
    static func session(of head: HTTPRequest) throws(ClusterError) -> ClientSession? {
        let values = head.headerFields[values: Self.sessionHeader]
        guard let value = values.first else { return nil }
        guard values.count == 1 else { throw ClusterError(.invalidParameter, "a write carries one \(ClientSession.headerName) header") }
        return try ClientSession(headerValue: value)
    }

    /// Proposes a command (inside its client session, when it has one); a failed outcome becomes
    /// the thrown error. A session's retry is answered with the first outcome.
    private func commit(_ command: HiveCommand, session: ClientSession? = nil) async throws(ClusterError) -> CommitResult {
        let result = try await node.propose(session.map { .sessioned($0, command) } ?? command)
        if case .failed(let error) = result.outcome { throw error }
        return result
    }

    private func status() -> ClientProtocol.StatusResponse {
        let status = node.status
        let configuration = node.configuration
        let identity = status.identity
        let member = ClientProtocol.StatusResponse.Member(
            name: identity.nodeName, clientAddr: configuration.clientAddress, peerAddr: configuration.peerAddress,
            role: "leader", appliedIndex: status.appliedIndex, reachable: true)
        return ClientProtocol.StatusResponse(
            cluster: .init(name: identity.clusterName, id: identity.clusterID), quorumOwner: identity.nodeName,
            term: status.term, commitIndex: status.commitIndex, members: [member], node: identity.nodeName,
            restoreGeneration: identity.restoreGeneration, checkpointIndex: status.checkpointIndex,
            quorumLogBytes: status.logBytes, version: ProductVersion.current, clientSessions: true)
    }
}

/// Hands a pinned backup to the response body's writer task, which alone uses it.
private struct SourceBox: @unchecked Sendable {
    let source: BackupSource
}

/// Reads and decodes a JSON request body of at most `maxBytes`.
private func decode<T: Decodable>(_ request: Request, maxBytes: Int) async throws -> T {
    let buffer: ByteBuffer
    do {
        buffer = try await request.body.collect(upTo: maxBytes)
    } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
        // Hummingbird's collect throws NIOTooManyBytesError, which says nothing of the limit.
        throw ClusterError(
            .invalidParameter,
            "the request body is over \(maxBytes) bytes, the limit of this endpoint (\(ServerLimits.bodyLimitName(path: request.head.path)))")
    }
    // The hottest body skips JSONDecoder when it is plain (see FastJSON); anything else, including
    // every malformed body, takes the full decoder and its error messages.
    if T.self == ClientProtocol.SetValueRequest.self,
        let fast = buffer.withUnsafeReadableBytes({ ClientProtocol.SetValueRequest(fastJSON: $0) }) as? T
    {
        return fast
    }
    // Invalid UTF-8 and lone surrogate escapes would reach the hive as U+FFFD through
    // JSONDecoder; refuse them, naming the member.
    do throws(JSONDocument.Problem) {
        try JSONDocument.checkEncoding(buffer.readableBytesView)
    } catch {
        throw error.error(in: "the request body")
    }
    do {
        return try JSONDecoder().decode(T.self, from: Data(buffer.readableBytesView))
    } catch let error as ClusterError {
        throw error
    } catch let DecodingError.dataCorrupted(context) {
        if let error = context.underlyingError as? ClusterError { throw error }
        if context.codingPath.isEmpty {
            // Not JSON at all: the strict reader says where and what.
            do throws(JSONDocument.Problem) {
                _ = try JSONDocument.parse(buffer.readableBytesView)
            } catch {
                throw error.error(in: "the request body")
            }
        }
        throw ClusterError(.invalidParameter, "the request body is not valid: \(JSONText.describe(DecodingError.dataCorrupted(context)))")
    } catch {
        throw ClusterError(.invalidParameter, "the request body is not valid: \(JSONText.describe(error))")
    }
}

/// A 200 answer with `value` as JSON.
private func json(_ value: some Encodable) -> Response {
    if let write = value as? ClientProtocol.WriteResponse {
        return Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: write.jsonBytes)))
    }
    do {
        let data = try JSONEncoder().encode(value)
        return Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    } catch {
        return failure(ClusterError(.invalidData, "the answer could not be encoded: \(error)"))
    }
}

/// The error answer (see ``ErrorAnswer``).
private func failure(_ error: any Error) -> Response {
    let clusterError = ErrorAnswer.clusterError(error)
    return Response(
        status: ErrorAnswer.status(clusterError), headers: [.contentType: "application/json"],
        body: ResponseBody(byteBuffer: ByteBuffer(bytes: ErrorAnswer.body(clusterError))))
}
