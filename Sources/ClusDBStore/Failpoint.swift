#if canImport(Glibc)
import Glibc
#endif

/// Named points where a test can make the process die as if killed, to check that every
/// multi-step operation (backup, restore) is safe to interrupt there.
///
/// A test sets `CLUSDB_FAILPOINT=<name>` in a process's environment; when that process reaches
/// the point of that name it sends itself SIGKILL. Without the variable every point is one
/// comparison of a nil string: nothing else changes.
public enum Failpoint {
    /// The armed point's name, read once from the environment.
    static let armed: String? = getenv("CLUSDB_FAILPOINT").map { String(cString: $0) }

    /// Dies here with SIGKILL when `name` is the armed point.
    public static func hit(_ name: String) {
        guard let armed, armed == name else { return }
        kill(getpid(), SIGKILL)
        // SIGKILL cannot be caught; this only waits for it to land.
        while true { pause() }
    }
}
