import ClusDBModel

/// The seeded generator of the random histories: ``RandomSource`` (SplitMix64).
typealias SplitMix64 = RandomSource

extension RandomSource {
    /// A number in `0..<bound`.
    mutating func below(_ bound: Int) -> Int {
        precondition(bound > 0)
        return Int(next() % UInt64(bound))
    }

    /// True with probability `numerator / denominator`.
    mutating func chance(_ numerator: Int, in denominator: Int) -> Bool { below(denominator) < numerator }
}
