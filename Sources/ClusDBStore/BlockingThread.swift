import ClusDBModel
import Foundation

/// Runs blocking file work (a backup, a restore, a verification) on a thread of its own, so that
/// the caller's task does not hold one of the few threads Swift concurrency runs tasks on.
public enum BlockingThread {
    /// Runs `body` on a new thread named `name` (visible in `top -H`, at most 15 characters) and
    /// waits for its result.
    public static func run<T: Sendable>(
        named name: String, _ body: @escaping @Sendable () throws(ClusterError) -> T
    ) async throws(ClusterError) -> T {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, ClusterError>, Never>) in
            let thread = Thread {
                Thread.current.name = String(name.prefix(15))
                do throws(ClusterError) {
                    continuation.resume(returning: .success(try body()))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
            thread.start()
        }
        return try result.get()
    }
}
