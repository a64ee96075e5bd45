import ClusDBSimulation

/// The reference the WGL checker is compared with: it tries every order of the operations that
/// respects real time (A before B whenever A returned strictly before B was called), placing or
/// leaving out each unknown-outcome operation, over the *whole* history with one state per
/// partition — it neither partitions the search nor memoizes, so it shares none of the checker's
/// shortcuts. Exponential: for histories of at most eight operations.
struct BruteForceChecker<Model: LinearizabilityModel> {
    static var operationsMax: Int { 8 }

    let model: Model

    /// Whether some order works; when none does, also the most operations any order placed
    /// before getting stuck (the length of the longest linearizable prefix).
    func check(_ history: ClientHistory<Model>) -> (linearizable: Bool, longestPrefix: Int) {
        let operations = history.operations
        precondition(operations.count <= Self.operationsMax, "brute force is for small histories")
        var placed = Array(repeating: false, count: operations.count)
        var states: [Model.PartitionKey: Model.State] = [:]
        var depth = 0
        var longestPrefix = 0

        func mayGoNext(_ candidate: Int) -> Bool {
            !operations.indices.contains { other in
                guard !placed[other], other != candidate, let returnTime = operations[other].returnTime else { return false }
                return returnTime < operations[candidate].callTime
            }
        }

        func search(answeredLeft: Int) -> Bool {
            if answeredLeft == 0 { return true }
            for candidate in operations.indices where !placed[candidate] && mayGoNext(candidate) {
                let operation = operations[candidate]
                let key = model.partition(of: operation.input)
                let before = states[key] ?? model.initialState
                guard let after = model.step(from: before, input: operation.input, output: operation.output) else { continue }
                placed[candidate] = true
                states[key] = after
                depth += 1
                longestPrefix = max(longestPrefix, depth)
                if search(answeredLeft: answeredLeft - (operation.returnTime == nil ? 0 : 1)) { return true }
                depth -= 1
                placed[candidate] = false
                states[key] = before
            }
            return false
        }

        let linearizable = search(answeredLeft: operations.count { $0.returnTime != nil })
        return (linearizable, longestPrefix)
    }
}
