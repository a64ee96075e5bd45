/// Why one partition's history is not linearizable, for a failing seed's report: the longest
/// linearization the search found and the operations that could not come next after it.
///
/// The search reaches every (linearized set, state) pair there is before it gives up, so the
/// prefix is as long as any linearizable prefix of the partition; which of several equally long
/// ones is shown depends on the search order. It usually ends just before the operation that
/// exposes the bug.
public struct LinearizabilityViolation<Model: LinearizabilityModel> {
    /// One operation that could have come next after the prefix but did not fit.
    public struct UnplacedOperation {
        /// Index into ``ClientHistory/operations``.
        public let operation: Int
        /// True when the model rejects the operation's answer in ``LinearizabilityViolation/stateAfterPrefix``;
        /// false when it accepts it but nothing linearizable follows.
        public let rejectedByModel: Bool
    }

    /// Indices into ``ClientHistory/operations``, in the order the search linearized them.
    public let longestLinearizablePrefix: [Int]
    /// The model's state after that prefix.
    public let stateAfterPrefix: Model.State
    /// Every operation that was called before the earliest outstanding answer, so could have
    /// been linearized next, and did not fit.
    public let unplacedOperations: [UnplacedOperation]
    /// The answered operation with the earliest return among those not in the prefix: something
    /// had to be linearized before it returned.
    public let earliestOutstandingReturn: Int?
    /// Search steps the partition took.
    public let searchSteps: Int
    /// A multi-line report naming each operation with its client, input, output and ticks.
    public let report: String

    /// Explains a failed search; `globalIndex` maps partition-local indices to history indices.
    init(
        model: Model,
        partition: Model.PartitionKey,
        operations: [ClientHistory<Model>.Operation],
        globalIndex: [Int],
        longestPrefix: [Int],
        searchSteps: Int
    ) {
        var state = model.initialState
        for index in longestPrefix {
            let operation = operations[index]
            guard let after = model.step(from: state, input: operation.input, output: operation.output) else {
                preconditionFailure("the model is not deterministic: a prefix it accepted no longer replays")
            }
            state = after
        }
        let placed = Set(longestPrefix)
        let outstanding = operations.indices.filter { !placed.contains($0) }
        let earliestReturn = outstanding.compactMap { index in operations[index].returnTime.map { (time: $0, index: index) } }
            .min { ($0.time, $0.index) < ($1.time, $1.index) }
        let deadline = earliestReturn?.index
        let deadlineTime = earliestReturn?.time ?? Int.max
        let candidates = outstanding.filter { operations[$0].callTime <= deadlineTime }.map { index in
            let operation = operations[index]
            return (index, model.step(from: state, input: operation.input, output: operation.output) == nil)
        }

        longestLinearizablePrefix = longestPrefix.map { globalIndex[$0] }
        stateAfterPrefix = state
        unplacedOperations = candidates.map { UnplacedOperation(operation: globalIndex[$0.0], rejectedByModel: $0.1) }
        earliestOutstandingReturn = deadline.map { globalIndex[$0] }
        self.searchSteps = searchSteps

        var lines = ["partition \(partition): not linearizable (\(operations.count) operations, \(searchSteps) search steps)"]
        lines.append("longest linearizable prefix found (\(longestPrefix.count) operations):")
        lines += longestPrefix.map { "  #\(globalIndex[$0]) \(operations[$0])" }
        lines.append("state after it: \(state)")
        lines.append("could not be placed next:")
        for (index, rejected) in candidates {
            let why = rejected ? "the model rejects this answer in that state" : "accepted, but nothing linearizable follows"
            lines.append("  #\(globalIndex[index]) \(operations[index]) — \(why)")
        }
        if let deadline { lines.append("one of them had to precede the return of #\(globalIndex[deadline]) at tick \(deadlineTime)") }
        report = lines.joined(separator: "\n")
    }
}
