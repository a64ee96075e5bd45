import ClusDBModel

/// The seeded generator of the randomized tests: ``RandomSource`` (SplitMix64), under the name
/// the tests have always used; the same seed gives the same sequence on every machine.
public typealias SplitMix64 = RandomSource
