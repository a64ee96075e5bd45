/// Decides whether a ``ClientHistory`` is linearizable with respect to a ``LinearizabilityModel``,
/// partition by partition, with a bounded Wing–Gong–Lowe search (see `PartitionSearch`).
///
/// Linearizability is NP-complete in general; the bound turns a history the search cannot decide
/// in time into ``LinearizabilityResult/unknown(reason:)`` instead of an endless run.
public struct LinearizabilityChecker<Model: LinearizabilityModel> {
    /// The default of ``searchStepsMaxPerPartition``: enough for thousands of operations with
    /// modest concurrency, small enough to finish in seconds in a debug build.
    public static var defaultSearchStepsMaxPerPartition: Int { 1_000_000 }

    /// The specification.
    public let model: Model
    /// Most search steps (entries visited plus backtracks) one partition may take; each step
    /// calls the model at most once and memoizes at most one (set, state) pair, of about
    /// operations-in-the-partition / 8 bytes plus the state — so this bounds memory as well.
    public let searchStepsMaxPerPartition: Int

    /// A checker for `model` with the given bound on work per partition.
    public init(model: Model, searchStepsMaxPerPartition: Int = Self.defaultSearchStepsMaxPerPartition) {
        precondition(searchStepsMaxPerPartition > 0, "the step bound must allow at least one step")
        self.model = model
        self.searchStepsMaxPerPartition = searchStepsMaxPerPartition
    }

    /// Checks every partition of `history` and reports the first one that is not linearizable.
    /// Partitions are checked in order of first appearance, so a report is the same on every run.
    public func check(_ history: ClientHistory<Model>) -> LinearizabilityResult<Model> {
        var partitionOrder: [Model.PartitionKey] = []
        var members: [Model.PartitionKey: [Int]] = [:]
        for (index, operation) in history.operations.enumerated() {
            let key = model.partition(of: operation.input)
            if members[key] == nil { partitionOrder.append(key) }
            members[key, default: []].append(index)
        }
        var undecided: [Model.PartitionKey] = []
        for key in partitionOrder {
            let globalIndex = members[key] ?? []
            let operations = globalIndex.map { history.operations[$0] }
            var search = PartitionSearch(model: model, operations: operations, stepsMax: searchStepsMaxPerPartition)
            switch search.run() {
            case .linearizable:
                continue
            case .stepBoundReached:
                undecided.append(key)
            case .notLinearizable(let longestPrefix):
                let details = LinearizabilityViolation(
                    model: model, partition: key, operations: operations, globalIndex: globalIndex,
                    longestPrefix: longestPrefix, searchSteps: search.steps
                )
                return .notLinearizable(partition: key, details: details)
            }
        }
        guard let first = undecided.first else { return .linearizable }
        return .unknown(
            reason: "\(undecided.count) of \(partitionOrder.count) partitions undecided after "
                + "\(searchStepsMaxPerPartition) search steps each (searchStepsMaxPerPartition), the first: \(first)"
        )
    }
}
