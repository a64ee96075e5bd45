import Foundation

/// Why ``waitUntil(_:polls:_:)`` gave up.
public struct ConditionNeverHeld: Error, CustomStringConvertible {
    /// The condition waited for.
    public let what: String
    /// What the error says.
    public var description: String { "gave up waiting until \(what)" }
}

/// Waits for an event that a test cannot be called back for, by looking at `condition` every
/// millisecond. This is not a sleep that hopes something happened meanwhile: it returns as soon
/// as the condition holds, and only a condition that never holds (a hang) makes it throw, after
/// `polls` looks (two minutes by default, far beyond any healthy run on a loaded machine).
public func waitUntil(_ what: String, polls: Int = 120_000, _ condition: () -> Bool) async throws {
    for _ in 0..<polls {
        if condition() { return }
        try await Task.sleep(for: .milliseconds(1))
    }
    if condition() { return }
    throw ConditionNeverHeld(what: what)
}
