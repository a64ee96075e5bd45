import ClusDBSimulation
import Testing

/// Goal: the classic anomalies are caught, with an explanation that points at the operation
/// responsible, and legal concurrency and timeouts are not flagged.
@Suite("Hand-written histories")
struct KnownHistoryTests {
    typealias Operation = ClientHistory<Register>.Operation

    static func answered(_ client: Int, _ input: Register.Input, _ output: Register.Output, _ call: Int, _ returnTime: Int) -> Operation {
        Operation(clientID: client, input: input, callTime: call, outcome: .returned(output, at: returnTime))
    }

    static func timedOut(_ client: Int, _ input: Register.Input, _ call: Int) -> Operation {
        Operation(clientID: client, input: input, callTime: call, outcome: .unknown)
    }

    static func check(_ operations: [Operation]) -> LinearizabilityResult<Register> {
        var history = ClientHistory<Register>()
        for operation in operations { history.append(operation) }
        return LinearizabilityChecker(model: Register()).check(history)
    }

    static func isLinearizable(_ operations: [Operation]) -> Bool {
        if case .linearizable = check(operations) { return true }
        return false
    }

    @Test("Stale read after a write completed, explained")
    func staleRead() throws {
        let result = Self.check([
            Self.answered(1, .write(key: "k", value: "x"), .ok, 0, 1),
            Self.answered(1, .write(key: "k", value: "y"), .ok, 2, 3),
            Self.answered(2, .read(key: "k"), .value("x"), 4, 5),
        ])
        guard case .notLinearizable(let partition, let details) = result else {
            Issue.record("stale read accepted: \(result)")
            return
        }
        #expect(partition == "k")
        #expect(details.longestLinearizablePrefix == [0, 1])
        #expect(details.stateAfterPrefix == .present("y"))
        #expect(details.unplacedOperations.map(\.operation) == [2])
        #expect(details.unplacedOperations.allSatisfy { $0.rejectedByModel })
        #expect(details.earliestOutstandingReturn == 2)
        #expect(details.report.contains("#2 client 2: read \"k\" -> x [call 4, return 5]"))
    }

    @Test("Lost update: an acknowledged write is gone, or two finished writes appear in both orders")
    func lostUpdate() {
        #expect(!Self.isLinearizable([
            Self.answered(1, .write(key: "k", value: "x"), .ok, 0, 1),
            Self.answered(2, .read(key: "k"), .notFound, 2, 3),
        ]))
        #expect(!Self.isLinearizable([
            Self.answered(1, .write(key: "k", value: "x"), .ok, 0, 4),
            Self.answered(2, .write(key: "k", value: "y"), .ok, 1, 5),
            Self.answered(3, .read(key: "k"), .value("y"), 6, 7),
            Self.answered(3, .read(key: "k"), .value("x"), 8, 9),
        ]))
    }

    @Test("Read-your-write violation under a concurrent writer")
    func readYourWrite() {
        #expect(!Self.isLinearizable([
            Self.answered(2, .write(key: "k", value: "z"), .ok, 0, 20),
            Self.answered(1, .write(key: "k", value: "x"), .ok, 1, 2),
            Self.answered(1, .write(key: "k", value: "y"), .ok, 3, 4),
            Self.answered(1, .read(key: "k"), .value("x"), 5, 6),
        ]))
    }

    @Test("Read of a value never written; delete answered wrongly")
    func impossibleAnswers() {
        #expect(!Self.isLinearizable([
            Self.answered(1, .write(key: "k", value: "x"), .ok, 0, 5),
            Self.answered(2, .read(key: "k"), .value("never"), 1, 6),
        ]))
        #expect(!Self.isLinearizable([
            Self.answered(1, .write(key: "k", value: "x"), .ok, 0, 1),
            Self.answered(2, .delete(key: "k"), .notFound, 2, 3),
        ]))
    }

    @Test("Names differing in case are one value; the bad partition is named")
    func caseFoldedPartitions() {
        let result = Self.check([
            Self.answered(1, .write(key: "Good", value: "x"), .ok, 0, 1),
            Self.answered(1, .write(key: "Key", value: "x"), .ok, 2, 3),
            Self.answered(2, .read(key: "good"), .value("x"), 4, 5),
            Self.answered(2, .read(key: "KEY"), .notFound, 6, 7),
        ])
        guard case .notLinearizable(let partition, _) = result else {
            Issue.record("lost write through another spelling accepted")
            return
        }
        #expect(partition == "key")
    }

    @Test("Overlapping operations may take effect in any order inside their intervals")
    func overlapping() {
        #expect(Self.isLinearizable([
            Self.answered(1, .write(key: "k", value: "x"), .ok, 0, 10),
            Self.answered(2, .read(key: "k"), .notFound, 1, 2),
            Self.answered(3, .read(key: "k"), .value("x"), 3, 4),
            Self.answered(2, .delete(key: "k"), .ok, 5, 12),
            Self.answered(3, .read(key: "k"), .value("x"), 6, 7),
        ]))
        #expect(Self.isLinearizable([
            Self.answered(1, .write(key: "k", value: "x"), .ok, 0, 5),
            Self.answered(2, .write(key: "k", value: "y"), .ok, 1, 6),
            Self.answered(3, .read(key: "k"), .value("x"), 7, 8),
            Self.answered(3, .read(key: "k"), .value("x"), 9, 10),
        ]))
        // An answer and a call at the same tick overlap.
        #expect(Self.isLinearizable([
            Self.answered(1, .write(key: "k", value: "x"), .ok, 0, 5),
            Self.answered(2, .read(key: "k"), .notFound, 5, 6),
        ]))
        #expect(Self.isLinearizable([]))
    }

    @Test("Unknown outcomes: may land late, or never, but not un-happen")
    func unknownOutcomes() {
        // The timed-out write lands after the first read.
        #expect(Self.isLinearizable([
            Self.timedOut(1, .write(key: "k", value: "x"), 0),
            Self.answered(2, .read(key: "k"), .notFound, 1, 2),
            Self.answered(2, .read(key: "k"), .value("x"), 30, 31),
        ]))
        // It never lands.
        #expect(Self.isLinearizable([
            Self.timedOut(1, .write(key: "k", value: "x"), 0),
            Self.answered(1, .write(key: "k", value: "y"), .ok, 5, 6),
            Self.answered(2, .read(key: "k"), .value("y"), 10, 11),
            Self.timedOut(2, .read(key: "k"), 12),
            Self.timedOut(2, .delete(key: "k"), 13),
        ]))
        // Once seen, it cannot be undone.
        #expect(!Self.isLinearizable([
            Self.timedOut(1, .write(key: "k", value: "x"), 0),
            Self.answered(2, .read(key: "k"), .value("x"), 1, 2),
            Self.answered(2, .read(key: "k"), .notFound, 3, 4),
        ]))
        // It cannot land before it was called.
        #expect(!Self.isLinearizable([
            Self.answered(2, .read(key: "k"), .value("x"), 0, 1),
            Self.timedOut(1, .write(key: "k", value: "x"), 2),
        ]))
    }

    @Test("Recording with call/complete: an operation never completed is an unknown outcome")
    func recording() {
        var history = ClientHistory<Register>()
        let write = history.call(client: 1, input: .write(key: "k", value: "x"), at: 0)
        _ = history.call(client: 2, input: .delete(key: "k"), at: 1)
        history.complete(write, output: .ok, at: 2)
        let read = history.call(client: 1, input: .read(key: "k"), at: 3)
        history.complete(read, output: .notFound, at: 4)
        #expect(history.operations[1].returnTime == nil)
        guard case .linearizable = LinearizabilityChecker(model: Register()).check(history) else {
            Issue.record("the pending delete explains the read")
            return
        }
    }
}
