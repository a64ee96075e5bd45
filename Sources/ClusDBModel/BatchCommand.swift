/// One command of an atomic write batch (`ClusterRegBatchAddCommand`).
///
/// Key paths are relative to the batch's root key. Value commands act on the *current key*:
/// the root at first, moved by each `createKey`, cleared by each `deleteKey` (a value command
/// while it is cleared fails the batch with `ERROR_INVALID_PARAMETER`).
public enum BatchCommand: Sendable, Hashable {
    /// `CLUSREG_SET_VALUE` (1): set `name` on the current key.
    case setValue(name: String, value: RegistryValue)
    /// `CLUSREG_CREATE_KEY` (2): create or open a key; it becomes the current key.
    case createKey(KeyPath)
    /// `CLUSREG_DELETE_KEY` (3): delete a key and its subtree; a missing key is not an error.
    case deleteKey(KeyPath)
    /// `CLUSREG_DELETE_VALUE` (4): delete `name` from the current key; a missing value is not an error.
    case deleteValue(name: String)

    /// The `CLUSTER_REG_COMMAND` number.
    public var commandNumber: UInt32 {
        switch self {
        case .setValue: return 1
        case .createKey: return 2
        case .deleteKey: return 3
        case .deleteValue: return 4
        }
    }
}
