#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// A progress line on stderr for a person watching long work (`reg import`, `backup`, `verify`,
/// `restore`): the current step and the seconds so far, redrawn in place with `\r` four times a
/// second and cleared when the work ends, so the terminal is left as if it had never been there.
///
/// It exists only when stderr is a terminal and the output is not `--json`: scripts, pipes and
/// log files see exactly the bytes they saw before.
final class ProgressLine: Sendable {
    private struct State {
        var text: String
        var drawn = false
        var finished = false
    }

    private let state: Mutex<State>
    private let started = ContinuousClock.now
    private let ticker = Mutex<Task<Void, Never>?>(nil)

    /// How often the line is redrawn.
    static let interval = Duration.milliseconds(250)

    /// A progress line showing `text`, or nil when nobody watches (stderr not a terminal, `--json`,
    /// `TERM=dumb`).
    static func start(_ text: String, json: Bool = false) -> ProgressLine? {
        guard !json, isatty(STDERR_FILENO) == 1, ProcessInfo.processInfo.environment["TERM"] != "dumb" else { return nil }
        let line = ProgressLine(text: text)
        // The first frame at once: the person sees what runs, and a short command's frame is
        // cleared before anyone notices.
        line.draw()
        line.ticker.withLock { task in
            task = Task.detached { [line] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: interval)
                    line.draw()
                }
            }
        }
        return line
    }

    private init(text: String) {
        state = Mutex(State(text: text))
    }

    /// Changes the step shown from the next redraw on.
    func update(_ text: String) {
        state.withLock { $0.text = text }
    }

    /// Stops redrawing and clears the line; call before printing results or the error line.
    func finish() {
        ticker.withLock { task in
            task?.cancel()
            task = nil
        }
        state.withLock { state in
            guard !state.finished else { return }
            state.finished = true
            if state.drawn { Self.write("\r\u{1B}[K") }
        }
    }

    private func draw() {
        let seconds = (ContinuousClock.now - started).components.seconds
        state.withLock { state in
            guard !state.finished else { return }
            state.drawn = true
            Self.write("\r\u{1B}[K\(state.text) ... \(seconds)s")
        }
    }

    private static func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}
