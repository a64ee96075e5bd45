@testable import ClusDBServer
import ClusDBModel
import Testing

/// Goal: the limits a test may shrink through `CLUSDB_SERVER_LIMITS` parse as documented, and a
/// mistake names what is wrong instead of being ignored.
@Suite("Server limits")
struct ServerLimitsTests {
    @Test("Overrides replace only the limits they name")
    func overrides() throws {
        let limits = try ServerLimits(overrides: "connectionsMax=8, answerStallSeconds=1")
        var expected = ServerLimits()
        expected.connectionsMax = 8
        expected.answerStallSeconds = 1
        #expect(limits == expected)
        #expect(ServerLimits().requestsInFlightMax == Limits.requestsInFlightMax)
    }

    @Test("Unknown names and numbers below 1 are refused with ERROR_INVALID_PARAMETER", arguments: ["nope=1", "connectionsMax=0", "connectionsMax", "connectionsMax=x"])
    func refused(_ text: String) {
        #expect(throws: ClusterError.self) { try ServerLimits(overrides: text) }
        do {
            _ = try ServerLimits(overrides: text)
        } catch {
            #expect(error.code == .invalidParameter)
        }
    }

    @Test("Only the batch endpoint takes bodies past requestBodyMaxBytes")
    func bodyCaps() {
        #expect(ServerLimits.bodyMaxBytes(path: "/v1/registry/batch") == Limits.batchRequestBodyMaxBytes)
        #expect(ServerLimits.bodyMaxBytes(path: "/v1/registry/set-value") == Limits.requestBodyMaxBytes)
        #expect(ServerLimits.bodyMaxBytes(path: nil) == Limits.requestBodyMaxBytes)
        #expect(Limits.requestBodyMaxBytes < Limits.batchRequestBodyMaxBytes)
        #expect(Limits.batchRequestBodyMaxBytes < Limits.requestBytesBufferedMax)
    }
}
