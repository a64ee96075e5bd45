import ClusDBSimulation
import Testing

/// Goal: the WGL checker decides exactly what exhaustive search decides. Method: a few thousand
/// seeded random histories (concurrent clients, timeouts, values whose names differ in case,
/// falsified answers, lost writes), each checked by both; the generator must produce plenty of
/// both verdicts, or agreement would prove little.
@Suite("WGL checker agrees with brute force")
struct CheckerAgreementTests {
    static let histories = 4_000

    static func render(_ history: ClientHistory<Register>) -> String {
        history.operations.enumerated().map { "  #\($0) \($1)" }.joined(separator: "\n")
    }

    /// Whether two operations' intervals overlap (an unknown outcome's lasts forever).
    static func hasOverlap(_ history: ClientHistory<Register>) -> Bool {
        let operations = history.operations
        return operations.indices.contains { first in
            operations.indices.contains { second in
                first < second && (operations[first].returnTime ?? .max) >= operations[second].callTime
                    && (operations[second].returnTime ?? .max) >= operations[first].callTime
            }
        }
    }

    /// The explanation of a violation must itself hold up: a real-time-respecting linearization
    /// of the named partition that leads to the reported state, and at least one operation that
    /// could not follow it.
    static func checkExplanation(_ details: LinearizabilityViolation<Register>, partition: String, in history: ClientHistory<Register>) {
        let model = Register()
        var state = model.initialState
        for (position, index) in details.longestLinearizablePrefix.enumerated() {
            let operation = history.operations[index]
            #expect(model.partition(of: operation.input) == partition)
            for later in details.longestLinearizablePrefix.dropFirst(position + 1) {
                #expect(history.operations[later].returnTime.map { $0 >= operation.callTime } ?? true, "prefix breaks real-time order")
            }
            guard let after = model.step(from: state, input: operation.input, output: operation.output) else {
                Issue.record("prefix does not replay at #\(index)")
                return
            }
            state = after
        }
        #expect(state == details.stateAfterPrefix)
        #expect(!details.unplacedOperations.isEmpty)
        #expect(details.unplacedOperations.allSatisfy { !details.longestLinearizablePrefix.contains($0.operation) })
    }

    @Test("Random small histories: both checkers agree, and both verdicts are common")
    func randomHistories() {
        var random = SplitMix64(seed: 0x11_4EA2)
        let checker = LinearizabilityChecker(model: Register())
        let bruteForce = BruteForceChecker(model: Register())
        var linearizable = 0
        var notLinearizable = 0
        var withUnknownOutcome = 0
        var withSeveralValues = 0
        var badWithUnknown = 0
        var overlapping = 0
        for number in 0..<Self.histories {
            let shape = RandomRegistryHistory(
                clients: 2 + random.below(3),
                operations: 1 + random.below(BruteForceChecker<Register>.operationsMax),
                keys: random.chance(1, in: 2) ? ["k", "K"] : ["k", "K", "j"]
            )
            let history = shape.make(&random)
            let expected = bruteForce.check(history).linearizable
            if expected { linearizable += 1 } else { notLinearizable += 1 }
            if history.operations.contains(where: { $0.returnTime == nil }) {
                withUnknownOutcome += 1
                if !expected { badWithUnknown += 1 }
            }
            if Self.hasOverlap(history) { overlapping += 1 }
            if Set(history.operations.map { Register().partition(of: $0.input) }).count > 1 { withSeveralValues += 1 }
            switch checker.check(history) {
            case .linearizable:
                #expect(expected, "history \(number): WGL says linearizable, brute force does not\n\(Self.render(history))")
            case .notLinearizable(let partition, let details):
                #expect(!expected, "history \(number): WGL says not linearizable, brute force found an order\n\(Self.render(history))\n\(details.report)")
                Self.checkExplanation(details, partition: partition, in: history)
                // The search visits every reachable (set, state), so its deepest prefix is the
                // longest one there is in that partition.
                var partitionHistory = ClientHistory<Register>()
                for operation in history.operations where Register().partition(of: operation.input) == partition {
                    partitionHistory.append(operation)
                }
                let reference = bruteForce.check(partitionHistory)
                #expect(!reference.linearizable && reference.longestPrefix == details.longestLinearizablePrefix.count,
                        "history \(number): \(reference) against\n\(details.report)")
            case .unknown(let reason):
                Issue.record("history \(number): undecided on a small history: \(reason)")
            }
        }
        #expect(linearizable >= Self.histories / 4, "linearizable: \(linearizable)")
        #expect(notLinearizable >= Self.histories / 4, "not linearizable: \(notLinearizable)")
        #expect(withUnknownOutcome >= Self.histories / 4, "with an unknown outcome: \(withUnknownOutcome)")
        #expect(withSeveralValues >= Self.histories / 4, "on several values: \(withSeveralValues)")
        #expect(overlapping >= Self.histories / 2, "with overlapping operations: \(overlapping)")
        #expect(badWithUnknown >= Self.histories / 20, "not linearizable with an unknown outcome: \(badWithUnknown)")
    }

    @Test("A long history of correct answers (2,000 operations, 6 clients, 5 values) is linearizable")
    func longCorrectHistory() {
        var random = SplitMix64(seed: 0x10_26)
        let shape = RandomRegistryHistory(clients: 6, operations: 2_000, keys: ["a", "b", "c", "d", "e"], unknownPercent: 5, faultPercent: 0)
        let history = shape.make(&random)
        guard case .linearizable = LinearizabilityChecker(model: Register()).check(history) else {
            Issue.record("a history built from a linearization was not found linearizable")
            return
        }
    }
}
