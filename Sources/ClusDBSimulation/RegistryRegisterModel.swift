/// One registry value (a key path plus a value name) seen as a register: it is absent or holds a
/// value; `write` sets it, `delete` removes it, `read` returns it.
///
/// Each value is its own partition. The partition key is the caller's `key` (key path and value
/// name joined as the caller likes) folded to lowercase ASCII, because the registry matches names
/// without regard to case; non-ASCII folding is left to the caller.
public struct RegistryRegisterModel<Value: Hashable & Sendable>: LinearizabilityModel, Sendable {
    /// What the register holds.
    public enum State: Hashable, Sendable {
        /// No such value.
        case absent
        /// The value holds this.
        case present(Value)
    }

    /// A client request on the value named `key`.
    public enum Input: Hashable, Sendable, CustomStringConvertible {
        /// Sets the value (creating it when absent); answered ``Output/ok``.
        case write(key: String, value: Value)
        /// Removes the value; answered ``Output/ok`` or ``Output/notFound``.
        case delete(key: String)
        /// Reads the value; answered ``Output/value(_:)`` or ``Output/notFound``.
        case read(key: String)

        /// The value addressed.
        public var key: String {
            switch self {
            case .write(let key, _), .delete(let key), .read(let key): key
            }
        }

        /// `write "k" = v`, `delete "k"`, `read "k"`.
        public var description: String {
            switch self {
            case .write(let key, let value): "write \"\(key)\" = \(value)"
            case .delete(let key): "delete \"\(key)\""
            case .read(let key): "read \"\(key)\""
            }
        }
    }

    /// An answer.
    public enum Output: Hashable, Sendable, CustomStringConvertible {
        /// A write or delete succeeded.
        case ok
        /// A delete or read found no value.
        case notFound
        /// A read found this.
        case value(Value)

        /// `ok`, `not found`, or the value read.
        public var description: String {
            switch self {
            case .ok: "ok"
            case .notFound: "not found"
            case .value(let value): "\(value)"
            }
        }
    }

    /// The model (it has no parameters).
    public init() {}

    /// Every value starts absent.
    public var initialState: State { .absent }

    /// `key` folded to lowercase ASCII.
    public func partition(of input: Input) -> String {
        String(decoding: input.key.utf8.map { (0x41...0x5A).contains($0) ? $0 | 0x20 : $0 }, as: UTF8.self)
    }

    /// The register's rules; an unknown outcome (`output` nil) leaves what the request would.
    @_specialize(where Value == String)  // the simulator's model; see PartitionSearch.run()
    public func step(from state: State, input: Input, output: Output?) -> State? {
        switch (input, output) {
        case (.write(_, let value), .ok?), (.write(_, let value), nil):
            return .present(value)
        case (.delete, nil):
            return .absent
        case (.delete, .ok?):
            return state == .absent ? nil : .absent
        case (.delete, .notFound?), (.read, .notFound?):
            return state == .absent ? .absent : nil
        case (.read, nil):
            return state
        case (.read, .value(let value)?):
            return state == .present(value) ? state : nil
        case (.write, _), (.delete, .value?), (.read, .ok?):
            return nil
        }
    }
}
