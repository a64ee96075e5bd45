/// The registry value types the cluster hive accepts, with their Win32 numbers.
///
/// `REG_MULTI_SZ` is 7, as in `winnt.h` (the SDK pages that print 6 are wrong). Other Win32 types
/// (`REG_LINK`, `REG_DWORD_BIG_ENDIAN`, resource lists) are refused with `ERROR_INVALID_PARAMETER`.
public enum ValueType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    /// `REG_NONE` (0): bytes with no defined type.
    case none = 0
    /// `REG_SZ` (1): a string.
    case string = 1
    /// `REG_EXPAND_SZ` (2): a string with unexpanded `%VAR%` references.
    case expandString = 2
    /// `REG_BINARY` (3): bytes.
    case binary = 3
    /// `REG_DWORD` (4): a 32-bit number, little-endian.
    case dword = 4
    /// `REG_MULTI_SZ` (7): a list of non-empty strings.
    case multiString = 7
    /// `REG_QWORD` (11): a 64-bit number, little-endian.
    case qword = 11

    /// The name as in `winnt.h`, e.g. `REG_SZ`.
    public var name: String {
        switch self {
        case .none: return "REG_NONE"
        case .string: return "REG_SZ"
        case .expandString: return "REG_EXPAND_SZ"
        case .binary: return "REG_BINARY"
        case .dword: return "REG_DWORD"
        case .multiString: return "REG_MULTI_SZ"
        case .qword: return "REG_QWORD"
        }
    }

    /// Looks a type up by its `winnt.h` name (exact, upper case).
    public init?(name: String) {
        guard let match = ValueType.allCases.first(where: { $0.name == name }) else { return nil }
        self = match
    }

    /// Looks a type up by its Win32 number.
    /// - Throws: `ERROR_INVALID_PARAMETER` for a number that is not a cluster-registry type.
    public static func checked(_ number: UInt32) throws(ClusterError) -> ValueType {
        guard let type = ValueType(rawValue: number) else {
            throw ClusterError(.invalidParameter, "value type \(number) is not one the cluster registry accepts")
        }
        return type
    }

    /// The `winnt.h` name.
    public var description: String { name }
}
