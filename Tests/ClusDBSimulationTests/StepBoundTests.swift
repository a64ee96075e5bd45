import ClusDBSimulation
import Testing

/// Goal: the search stops at its named bound. Method: an adversarial history whose search
/// space is exponential (many concurrent writes and then a read of a value none of them wrote:
/// every subset and order must be refuted), checked through a model that counts its own calls,
/// so the work done is measured independently of the checker's step counter. No clocks.
@Suite("Bounded search")
struct StepBoundTests {
    /// Forwards to the register model and counts the calls of `step`.
    final class StepCount { var calls = 0 }

    struct CountingModel: LinearizabilityModel {
        let counted: StepCount
        let register = Register()
        var initialState: Register.State { register.initialState }
        func partition(of input: Register.Input) -> String { register.partition(of: input) }
        func step(from state: Register.State, input: Register.Input, output: Register.Output?) -> Register.State? {
            counted.calls += 1
            return register.step(from: state, input: input, output: output)
        }
    }

    static func adversarial(writers: Int, readValue: String, keys: [String]) -> ClientHistory<CountingModel> {
        var history = ClientHistory<CountingModel>()
        for key in keys {
            for writer in 0..<writers {
                history.append(.init(clientID: writer, input: .write(key: key, value: "v\(writer)"), callTime: 0, outcome: .returned(.ok, at: 100)))
            }
            history.append(.init(clientID: writers, input: .read(key: key), callTime: 101, outcome: .returned(.value(readValue), at: 102)))
        }
        return history
    }

    @Test("An exponential search ends as unknown within its bound")
    func boundReached() {
        let count = StepCount()
        let bound = 20_000
        let checker = LinearizabilityChecker(model: CountingModel(counted: count), searchStepsMaxPerPartition: bound)
        let result = checker.check(Self.adversarial(writers: 40, readValue: "never", keys: ["a", "b"]))
        guard case .unknown(let reason) = result else {
            Issue.record("expected unknown, got \(result)")
            return
        }
        #expect(reason.contains("2 of 2 partitions"))
        #expect(count.calls <= 2 * bound)
        #expect(count.calls >= bound / 2, "the bound should be what stopped it")
    }

    @Test("A partition proven bad wins over an undecided one")
    func violationBeatsUnknown() {
        var history = Self.adversarial(writers: 40, readValue: "never", keys: ["a"])
        history.append(.init(clientID: 0, input: .write(key: "b", value: "x"), callTime: 0, outcome: .returned(.ok, at: 1)))
        history.append(.init(clientID: 0, input: .read(key: "b"), callTime: 2, outcome: .returned(.notFound, at: 3)))
        let result = LinearizabilityChecker(model: CountingModel(counted: StepCount()), searchStepsMaxPerPartition: 5_000).check(history)
        guard case .notLinearizable(let partition, _) = result else {
            Issue.record("expected partition b to be reported, got \(result)")
            return
        }
        #expect(partition == "b")
    }

    @Test("The same shape, small enough, is decided")
    func smallIsDecided() {
        let result = LinearizabilityChecker(model: CountingModel(counted: StepCount())).check(Self.adversarial(writers: 8, readValue: "never", keys: ["a"]))
        guard case .notLinearizable = result else {
            Issue.record("expected a violation, got \(result)")
            return
        }
    }
}
