/// The Wing–Gong–Lowe search over the operations of one partition, with Lowe's memoization of
/// (operations linearized so far, model state), as Porcupine does it.
///
/// Calls and returns form a doubly linked list in time order (calls before returns at equal
/// ticks). The search walks it from the front: at a call it tries to linearize that operation
/// next — the model must accept it and the (set, state) pair must be new — and then *lifts* the
/// operation's call and return out of the list; at a return it has failed to place that
/// operation before its deadline and backtracks, putting the last lifted operation back. An
/// operation with an unknown outcome has no return entry, so it never forces anything and may be
/// linearized late or not at all: the search succeeds once every *answered* operation is placed.
struct PartitionSearch<Model: LinearizabilityModel> {
    /// How the search ended.
    enum Ending {
        case linearizable
        /// Exhausted every ordering; `longestPrefix` is the deepest linearization reached, as
        /// indices into the partition's operations in linearization order.
        case notLinearizable(longestPrefix: [Int])
        /// Hit the step bound without deciding.
        case stepBoundReached
    }

    private struct MemoKey: Hashable {
        let linearized: OperationBitset
        let state: Model.State
    }

    private let model: Model
    private let operations: [ClientHistory<Model>.Operation]
    private let stepsMax: Int
    /// Steps taken so far: one per entry visited or backtrack.
    private(set) var steps = 0

    // The list: node 0 is the head; nodes 1... are entries in time order; -1 is "none".
    private var next: [Int] = [-1]
    private var previous: [Int] = [-1]
    private var operationOfNode: [Int] = [-1]
    private var isCall: [Bool] = [false]
    /// For a call node, its return node (-1 when the outcome is unknown).
    private var returnNodeOfCall: [Int] = [-1]

    init(model: Model, operations: [ClientHistory<Model>.Operation], stepsMax: Int) {
        precondition(stepsMax > 0, "the step bound must allow at least one step")
        self.model = model
        self.operations = operations
        self.stepsMax = stepsMax
        var events: [(time: Int, isReturn: Bool, operation: Int)] = []
        for (index, operation) in operations.enumerated() {
            events.append((operation.callTime, false, index))
            if let returnTime = operation.returnTime { events.append((returnTime, true, index)) }
        }
        // Ties: calls first (overlap is the permissive reading), then by index for determinism.
        events.sort { ($0.time, $0.isReturn ? 1 : 0, $0.operation) < ($1.time, $1.isReturn ? 1 : 0, $1.operation) }
        var callNode = Array(repeating: -1, count: operations.count)
        for (position, event) in events.enumerated() {
            let node = position + 1
            next[node - 1] = node
            next.append(-1)
            previous.append(node - 1)
            operationOfNode.append(event.operation)
            isCall.append(!event.isReturn)
            returnNodeOfCall.append(-1)
            if event.isReturn { returnNodeOfCall[callNode[event.operation]] = node } else { callNode[event.operation] = node }
        }
    }

    /// Runs the search to its end or to the step bound.
    // Specialized for the simulator's model: left generic, every model call and memo insert went
    // through runtime generic metadata (a sixth of a run's time, `perf`).
    @_specialize(where Model == RegistryRegisterModel<String>)
    mutating func run() -> Ending {
        let answeredCount = operations.count { $0.returnTime != nil }
        if answeredCount == 0 { return .linearizable }
        var memo = Set<MemoKey>()
        var stack: [(callNode: Int, stateBefore: Model.State)] = []
        var linearized = OperationBitset(capacity: operations.count)
        var answeredLinearized = 0
        var state = model.initialState
        var longestPrefix: [Int] = []
        var entry = next[0]
        while true {
            if steps >= stepsMax { return .stepBoundReached }
            steps += 1
            if entry != -1 && isCall[entry] {
                let index = operationOfNode[entry]
                let operation = operations[index]
                if let stateAfter = model.step(from: state, input: operation.input, output: operation.output) {
                    var linearizedAfter = linearized
                    linearizedAfter.insert(index)
                    if memo.insert(MemoKey(linearized: linearizedAfter, state: stateAfter)).inserted {
                        stack.append((entry, state))
                        state = stateAfter
                        linearized = linearizedAfter
                        if operation.returnTime != nil { answeredLinearized += 1 }
                        lift(entry)
                        if stack.count > longestPrefix.count { longestPrefix = stack.map { operationOfNode[$0.callNode] } }
                        if answeredLinearized == answeredCount { return .linearizable }
                        entry = next[0]
                        continue
                    }
                }
                entry = next[entry]
            } else {
                // A return (or the end of the list): nothing before it could go next. Undo the
                // last choice and try the entry after it.
                guard let (callNode, stateBefore) = stack.popLast() else {
                    return .notLinearizable(longestPrefix: longestPrefix)
                }
                let index = operationOfNode[callNode]
                linearized.remove(index)
                if operations[index].returnTime != nil { answeredLinearized -= 1 }
                state = stateBefore
                unlift(callNode)
                entry = next[callNode]
            }
        }
    }

    private mutating func lift(_ callNode: Int) {
        unlink(callNode)
        if returnNodeOfCall[callNode] != -1 { unlink(returnNodeOfCall[callNode]) }
    }

    /// Undoes ``lift(_:)`` in reverse order, so the nodes' kept links are valid again.
    private mutating func unlift(_ callNode: Int) {
        if returnNodeOfCall[callNode] != -1 { relink(returnNodeOfCall[callNode]) }
        relink(callNode)
    }

    private mutating func unlink(_ node: Int) {
        next[previous[node]] = next[node]
        if next[node] != -1 { previous[next[node]] = previous[node] }
    }

    private mutating func relink(_ node: Int) {
        next[previous[node]] = node
        if next[node] != -1 { previous[next[node]] = node }
    }
}
