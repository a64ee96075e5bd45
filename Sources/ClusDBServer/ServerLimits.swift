import ClusDBModel
import Foundation

/// The bounds the client API enforces on connections and requests (`docs/HTTP_API.md`,
/// "Limits"). Each defaults to its constant in ``Limits``; tests shrink them through
/// `CLUSDB_SERVER_LIMITS` (see ``init(overrides:)``) so that a cap or a timeout is reached quickly.
/// The per-endpoint body caps are not configurable: they are part of the API.
public struct ServerLimits: Sendable, Equatable {
    /// ``Limits/connectionsMax``.
    public var connectionsMax = Limits.connectionsMax
    /// ``Limits/requestsInFlightMax``.
    public var requestsInFlightMax = Limits.requestsInFlightMax
    /// ``Limits/requestBytesBufferedMax``.
    public var requestBytesBufferedMax = Limits.requestBytesBufferedMax
    /// ``Limits/requestHeadSeconds``.
    public var requestHeadSeconds = Limits.requestHeadSeconds
    /// ``Limits/requestBodySeconds``.
    public var requestBodySeconds = Limits.requestBodySeconds
    /// ``Limits/requestBodyMinBytesPerSecond``.
    public var requestBodyMinBytesPerSecond = Limits.requestBodyMinBytesPerSecond
    /// ``Limits/connectionIdleSeconds``.
    public var connectionIdleSeconds = Limits.connectionIdleSeconds
    /// ``Limits/answerStallSeconds``.
    public var answerStallSeconds = Limits.answerStallSeconds

    /// The defaults of ``Limits``.
    public init() {}

    /// The defaults with some replaced: `NAME=NUMBER,NAME=NUMBER`, each NAME one of the
    /// properties above (the names of ``Limits``), each NUMBER a whole number of at least 1.
    /// - Throws: `ERROR_INVALID_PARAMETER` naming the part that is wrong.
    public init(overrides: String) throws(ClusterError) {
        self.init()
        for part in overrides.split(separator: ",") {
            let pair = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2, let value = Int(pair[1]), value >= 1 else {
                throw ClusterError(.invalidParameter, "server limit \"\(part)\" is not NAME=NUMBER with a number of at least 1")
            }
            guard let path = Self.names[pair[0]] else {
                throw ClusterError(
                    .invalidParameter,
                    "unknown server limit \"\(pair[0])\"; known: \(Self.names.keys.sorted().joined(separator: ", "))")
            }
            self[keyPath: path] = value
        }
    }

    /// The configurable limits by the name they have in ``Limits``.
    private static var names: [String: WritableKeyPath<ServerLimits, Int>] {
        [
            "connectionsMax": \.connectionsMax,
            "requestsInFlightMax": \.requestsInFlightMax,
            "requestBytesBufferedMax": \.requestBytesBufferedMax,
            "requestHeadSeconds": \.requestHeadSeconds,
            "requestBodySeconds": \.requestBodySeconds,
            "requestBodyMinBytesPerSecond": \.requestBodyMinBytesPerSecond,
            "connectionIdleSeconds": \.connectionIdleSeconds,
            "answerStallSeconds": \.answerStallSeconds,
        ]
    }

    /// The largest body a request to `path` may have: the batch endpoint carries whole imports.
    public static func bodyMaxBytes(path: String?) -> Int {
        path == batchPath ? Limits.batchRequestBodyMaxBytes : Limits.requestBodyMaxBytes
    }

    /// The name of the limit ``bodyMaxBytes(path:)`` returns, for error messages.
    static func bodyLimitName(path: String?) -> String {
        path == batchPath ? "batchRequestBodyMaxBytes" : "requestBodyMaxBytes"
    }

    /// The batch endpoint's path.
    static let batchPath = "\(ClientProtocol.prefix)/registry/batch"
}
