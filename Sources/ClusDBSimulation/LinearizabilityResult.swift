/// What ``LinearizabilityChecker/check(_:)`` concluded about a history.
public enum LinearizabilityResult<Model: LinearizabilityModel> {
    /// Every partition has a linearization.
    case linearizable
    /// This partition has none (the first such partition, in order of first appearance).
    case notLinearizable(partition: Model.PartitionKey, details: LinearizabilityViolation<Model>)
    /// No partition was found non-linearizable, but at least one hit the step bound undecided.
    case unknown(reason: String)
}
