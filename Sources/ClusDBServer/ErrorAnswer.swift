import ClusDBModel
import Foundation
import HTTPTypes
import Hummingbird

/// How the client API answers a failure: an HTTP status that matches the Win32 code and the body
/// `{"error": {"code", "name", "message", "failedCommand"}}`. Shared by the router and the
/// event-loop fast path, so a failure reads the same whichever of them answered it.
enum ErrorAnswer {
    /// The ``ClusterError`` a failure stands for: errors of other layers become `ERROR_INVALID_DATA`,
    /// an oversized body `ERROR_INVALID_PARAMETER`.
    static func clusterError(_ error: any Error) -> ClusterError {
        switch error {
        case let error as ClusterError: return error
        case let error as any HTTPResponseError where error.status == .contentTooLarge:
            return ClusterError(.invalidParameter, "the request body is over \(Limits.requestBodyMaxBytes) bytes (requestBodyMaxBytes)")
        default: return ClusterError(.invalidData, "\(error)")
        }
    }

    /// The HTTP status for a Win32 code.
    static func status(_ error: ClusterError) -> HTTPResponse.Status {
        switch error.code {
        case .fileNotFound, .pathNotFound: return .notFound
        case .invalidParameter, .invalidFunction: return .badRequest
        case .accessDenied: return .forbidden
        case .directory, .alreadyExists: return .conflict
        case .busy, .clusterShuttingDown: return .serviceUnavailable
        default: return .internalServerError
        }
    }

    /// The JSON body.
    static func body(_ error: ClusterError) -> [UInt8] {
        let encoder = JSONEncoder()
        // Fixed key order, so the same error always reads the same.
        encoder.outputFormatting = .sortedKeys
        return Array((try? encoder.encode(ClientProtocol.ErrorResponse(error))) ?? Data())
    }
}
