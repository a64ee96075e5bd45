import ClusDBModel
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Sends JSON requests to the first endpoint that accepts a connection.
///
/// A request moves on to the next endpoint only when the connection could not be made (so it was
/// never sent); any later failure reports `ERROR_CLUSTER_NODE_DOWN` with the outcome unknown,
/// because a write might have been committed.
final class HTTPTransport: Sendable {
    let endpoints: [String]
    private let session: URLSession
    /// Seconds a request may take (large imports included).
    static let requestTimeoutSeconds: TimeInterval = 600

    init(endpoints: [String]) {
        self.endpoints = endpoints
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = Self.requestTimeoutSeconds
        configuration.timeoutIntervalForResource = Self.requestTimeoutSeconds
        configuration.httpMaximumConnectionsPerHost = 64
        session = URLSession(configuration: configuration)
    }

    func invalidate() { session.invalidateAndCancel() }

    /// Sends `body` to `path` (GET when nil) and returns the 200 answer's bytes.
    /// - Throws: the service's ``ClusterError``, or `ERROR_CLUSTER_NODE_DOWN`.
    func send(_ path: String, body: Data?) async throws(ClusterError) -> Data {
        var lastProblem = "no endpoint given"
        for endpoint in endpoints {
            guard let url = URL(string: "http://\(endpoint)\(ClientProtocol.prefix)/\(path)") else {
                throw ClusterError(.invalidParameter, "endpoint \"\(endpoint)\" does not form a URL")
            }
            var request = URLRequest(url: url)
            if let body {
                request.httpMethod = "POST"
                request.httpBody = body
                request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            }
            let data: Data
            let response: URLResponse
            do {
                (data, response) = try await session.data(for: request)
            } catch let error as URLError where error.code == .cannotConnectToHost || error.code == .cannotFindHost {
                lastProblem = "\(endpoint): \(error.localizedDescription)"
                continue
            } catch {
                throw ClusterError(
                    .clusterNodeDown, "\(endpoint) did not answer (\(error.localizedDescription)); the outcome is unknown")
            }
            let status = (response as? HTTPURLResponse)?.statusCode ?? 0
            if status == 200 { return data }
            if let answer = try? JSONDecoder().decode(ClientProtocol.ErrorResponse.self, from: data) {
                throw answer.clusterError
            }
            throw ClusterError(.invalidData, "\(endpoint) answered HTTP \(status) without a ClusDB error body")
        }
        throw ClusterError(.clusterNodeDown, "no node of the cluster answered (\(lastProblem))")
    }

    /// Sends an encodable body and decodes the answer.
    func call<Answer: Decodable>(_ path: String, _ body: some Encodable) async throws(ClusterError) -> Answer {
        let data: Data
        do {
            data = try JSONEncoder().encode(body)
        } catch {
            throw ClusterError(.invalidParameter, "the request could not be encoded: \(error)")
        }
        return try decode(try await send(path, body: data))
    }

    func decode<Answer: Decodable>(_ data: Data) throws(ClusterError) -> Answer {
        do {
            return try JSONDecoder().decode(Answer.self, from: data)
        } catch {
            throw ClusterError(.invalidData, "the service's answer does not decode: \(error)")
        }
    }
}
