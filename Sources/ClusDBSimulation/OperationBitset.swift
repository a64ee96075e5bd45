/// A set of operation indices within one partition, as bits: the checker's memo key holds one, so
/// it must be cheap to copy, hash and compare.
struct OperationBitset: Hashable {
    private var words: [UInt64]

    /// An empty set able to hold indices below `capacity`.
    init(capacity: Int) {
        words = Array(repeating: 0, count: (capacity + 63) / 64)
    }

    mutating func insert(_ index: Int) {
        words[index >> 6] |= 1 << UInt64(index & 63)
    }

    mutating func remove(_ index: Int) {
        words[index >> 6] &= ~(1 << UInt64(index & 63))
    }

    func contains(_ index: Int) -> Bool {
        words[index >> 6] & (1 << UInt64(index & 63)) != 0
    }
}
