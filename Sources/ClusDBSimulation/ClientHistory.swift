/// The operations clients issued against a system, with the logical times (simulator ticks) at
/// which each was called and answered — the input of ``LinearizabilityChecker``.
///
/// Real-time order: operation A precedes B only when A returned strictly before B was called
/// (`A.returnTime < B.callTime`); an answer and a call at the same tick count as overlapping. A
/// recorder that issues a call because of an answer must therefore give the call a later tick.
public struct ClientHistory<Model: LinearizabilityModel> {
    /// How one operation ended, as far as its client knows.
    public enum Outcome {
        /// The client was answered `output` at tick `at`.
        case returned(Model.Output, at: Int)
        /// The client never learned the outcome (timeout, connection lost): the operation may or
        /// may not have taken effect, at any moment after its call.
        case unknown
    }

    /// One client operation.
    public struct Operation {
        /// Who issued it; only used in reports.
        public let clientID: Int
        /// What was asked.
        public let input: Model.Input
        /// The tick the call was issued at.
        public let callTime: Int
        /// How it ended.
        public fileprivate(set) var outcome: Outcome

        /// Records an operation; a return before the call is a bug in the recorder.
        public init(clientID: Int, input: Model.Input, callTime: Int, outcome: Outcome) {
            if case .returned(_, let returnTime) = outcome {
                precondition(returnTime >= callTime, "an operation cannot return before it was called")
            }
            self.clientID = clientID
            self.input = input
            self.callTime = callTime
            self.outcome = outcome
        }

        /// The answer, or nil when the outcome is unknown.
        public var output: Model.Output? {
            if case .returned(let output, _) = outcome { return output }
            return nil
        }

        /// The tick of the answer, or nil (read: +infinity) when the outcome is unknown.
        public var returnTime: Int? {
            if case .returned(_, let time) = outcome { return time }
            return nil
        }
    }

    /// Every operation in the order recorded; reports name them by their index here.
    public private(set) var operations: [Operation] = []

    /// An empty history.
    public init() {}

    /// Appends a finished (or abandoned) operation and returns its index.
    @discardableResult
    public mutating func append(_ operation: Operation) -> Int {
        operations.append(operation)
        return operations.count - 1
    }

    /// Records a call whose answer is still outstanding and returns its index for
    /// ``complete(_:output:at:)``. An operation never completed stays an unknown outcome.
    @discardableResult
    public mutating func call(client: Int, input: Model.Input, at time: Int) -> Int {
        append(Operation(clientID: client, input: input, callTime: time, outcome: .unknown))
    }

    /// Records the answer of the call at `index`.
    public mutating func complete(_ index: Int, output: Model.Output, at time: Int) {
        precondition(operations.indices.contains(index), "no such operation")
        precondition(operations[index].returnTime == nil, "an operation is answered once")
        precondition(time >= operations[index].callTime, "an operation cannot return before it was called")
        operations[index].outcome = .returned(output, at: time)
    }
}

extension ClientHistory.Operation: CustomStringConvertible {
    /// `client 2: <input> -> <output> [call 4, return 7]`, for reports.
    public var description: String {
        switch outcome {
        case .returned(let output, let time): "client \(clientID): \(input) -> \(output) [call \(callTime), return \(time)]"
        case .unknown: "client \(clientID): \(input) -> outcome unknown [call \(callTime), no return]"
        }
    }
}
