/// What a leader knows of one follower's log, and how it sends to it (etcd-io/raft's Progress).
struct FollowerProgress: Sendable, Equatable {
    /// How the leader sends entries.
    enum Mode: Sendable, Equatable {
        /// Where the follower's log matches is unknown: one append at a time, each waiting for its
        /// answer (or the next heartbeat's).
        case probe
        /// The follower's log matches up to `match`: appends stream, up to the inflight window.
        case replicate
        /// The follower needs a snapshot at `index`; appends wait until it reports back.
        case snapshot(index: UInt64)
    }

    /// The highest index known to match the leader's log.
    var match: UInt64 = 0
    /// The next index to send.
    var next: UInt64
    /// How entries are sent.
    var mode = Mode.probe
    /// In probe mode: an append is out and unanswered, so no more until an answer or heartbeat.
    var probeSent = false
    /// Appends in flight in replicate mode: the last index and byte count of each, oldest first.
    var inflight: [(lastIndex: UInt64, bytes: Int)] = []
    /// Whether the follower was heard from since the last check-quorum round.
    var recentlyActive = false
    /// The highest commit index this follower was sent that it could take (capped by what the
    /// message proved it holds): when it lags the leader's, an append goes even without entries.
    var commitSent: UInt64 = 0
    init(next: UInt64) {
        self.next = next
    }

    static func == (left: FollowerProgress, right: FollowerProgress) -> Bool {
        left.match == right.match && left.next == right.next && left.commitSent == right.commitSent && left.mode == right.mode && left.probeSent == right.probeSent
            && left.inflight.map(\.lastIndex) == right.inflight.map(\.lastIndex) && left.recentlyActive == right.recentlyActive
    }

    /// Bytes in flight.
    var inflightBytes: Int { inflight.reduce(0) { $0 + $1.bytes } }

    /// Whether the leader must hold further appends back.
    func isPaused(options: RaftOptions) -> Bool {
        switch mode {
        case .probe: probeSent
        case .replicate: inflight.count >= options.maxInflightAppends || inflightBytes >= options.maxInflightBytes
        case .snapshot: true
        }
    }

    /// Records an accepted append up to `index`; returns whether `match` moved.
    mutating func acknowledge(_ index: UInt64) -> Bool {
        probeSent = false
        // Appends up to `index` are answered, whether or not the match moves (an append without
        // entries, sent for its commit index, is answered at the match).
        inflight.removeAll { $0.lastIndex <= index }
        guard index > match else {
            if next <= index { next = index + 1 }
            return false
        }
        match = index
        next = max(next, index + 1)
        return true
    }

    /// Moves to probing from `next` on (after a rejection, a snapshot, or at election).
    mutating func becomeProbe(next: UInt64) {
        mode = .probe
        probeSent = false
        inflight.removeAll()
        self.next = max(next, match + 1)
    }

    /// Moves to streaming after a match.
    mutating func becomeReplicate() {
        mode = .replicate
        probeSent = false
        inflight.removeAll()
        next = match + 1
    }

    /// Records an append that was sent with `entryCount` entries up to `lastIndex`.
    mutating func sent(lastIndex: UInt64, entryCount: Int, bytes: Int) {
        switch mode {
        case .replicate:
            // An append without entries (sent for its commit index) takes no place in the window.
            guard entryCount > 0 else { return }
            next = lastIndex + 1
            inflight.append((lastIndex, bytes))
        case .probe:
            probeSent = true
        case .snapshot:
            preconditionFailure("no appends while a snapshot is pending")
        }
    }
}
