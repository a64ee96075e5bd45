import ClusDBRaft
import ClusDBModel

/// The network between simulated replicas: every message takes a random number of steps, may be
/// lost or duplicated, and overtakes others; links can be cut one way or both. Deterministic for
/// a seed: ties are broken by the order messages were sent.
struct SimulatedNetwork: Sendable {
    /// A message on its way, with what the transport streams beside it.
    struct Envelope: Sendable {
        var message: RaftMessage
        var deliverAt: Int
        var sequence: Int
        /// The checkpoint image sent with an InstallSnapshot message.
        var image: SimulatedStateMachine.Image?
    }

    /// Messages in flight, kept sorted by (deliverAt, sequence).
    private(set) var inFlight: [Envelope] = []
    /// Directed links that lose everything: [from, to].
    var cut: Set<[NodeID]> = []
    private var nextSequence = 0

    /// Sends a message (or loses it, or sends it twice).
    mutating func send(_ message: RaftMessage, image: SimulatedStateMachine.Image?, now: Int, options: SimulationOptions, random: inout RandomSource) -> Bool {
        if cut.contains([message.from, message.to]) || Double.random(in: 0..<1, using: &random) < options.lossRate {
            return false
        }
        let copies = Double.random(in: 0..<1, using: &random) < options.duplicationRate ? 2 : 1
        for _ in 0..<copies {
            let envelope = Envelope(
                message: message, deliverAt: now + Int.random(in: 1...options.maxDelaySteps, using: &random), sequence: nextSequence,
                image: image)
            nextSequence += 1
            let position = inFlight.firstIndex { ($0.deliverAt, $0.sequence) > (envelope.deliverAt, envelope.sequence) } ?? inFlight.count
            inFlight.insert(envelope, at: position)
        }
        return true
    }

    /// Takes the messages due at `now`: those that arrive, and those a link cut meanwhile lost
    /// (the sender's transport learns of a lost snapshot stream).
    mutating func due(at now: Int) -> (arrived: [Envelope], lost: [Envelope]) {
        var arrived: [Envelope] = []
        var lost: [Envelope] = []
        while let first = inFlight.first, first.deliverAt <= now {
            inFlight.removeFirst()
            if cut.contains([first.message.from, first.message.to]) {
                lost.append(first)
            } else {
                arrived.append(first)
            }
        }
        return (arrived, lost)
    }

    /// Cuts a random set of links: a random minority, or random one-way links.
    mutating func partition(nodes: [NodeID], random: inout RandomSource) {
        cut = []
        if Bool.random(using: &random) {
            let isolated = nodes.filter { _ in Int.random(in: 0..<3, using: &random) == 0 }
            for a in isolated { for b in nodes where !isolated.contains(b) { cut.insert([a, b]); cut.insert([b, a]) } }
        } else {
            for a in nodes { for b in nodes where a != b && Int.random(in: 0..<5, using: &random) == 0 { cut.insert([a, b]) } }
        }
    }
}
