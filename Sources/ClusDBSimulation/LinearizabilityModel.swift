/// A sequential specification that ``LinearizabilityChecker`` checks client histories against.
///
/// The model must be a deterministic function of state, input and output: the checker memoizes
/// on `State`, so two equal states must behave the same for every later operation.
public protocol LinearizabilityModel {
    /// What the object holds between operations (for a register: its value or its absence).
    associatedtype State: Hashable
    /// What a client asked for, including which object it addressed.
    associatedtype Input
    /// What a client was answered.
    associatedtype Output
    /// Names one independent object. Operations on different objects never constrain each other,
    /// so each partition is checked on its own (P-compositionality of linearizability).
    associatedtype PartitionKey: Hashable

    /// The state every partition starts in.
    var initialState: State { get }

    /// The object `input` addresses. Only the input is consulted, because an operation with an
    /// unknown outcome has no output.
    func partition(of input: Input) -> PartitionKey

    /// The state after applying `input` to `state` and answering `output`, or nil when that answer
    /// is impossible from `state`. `output` is nil when the client never learned the outcome (a
    /// timeout, a lost connection): the model then returns the state the operation leaves behind
    /// had it taken effect, whatever it would have answered.
    func step(from state: State, input: Input, output: Output?) -> State?
}
