import ClusDBSimulation

typealias Register = RegistryRegisterModel<String>

/// Seeded random client histories against a registry: clients issue operations one after
/// another on a few values, each takes effect at a random tick inside its call–return interval
/// (so the true history is linearizable), some time out (unknown outcome: they take effect late
/// or never), and then, in a share of histories, one answer or effect is falsified so the history
/// may no longer be linearizable.
struct RandomRegistryHistory {
    var clients: Int
    var operations: Int
    /// Names of values; names differing only in case are the same value.
    var keys: [String]
    var values = ["x", "y", "z"]
    /// Chance in 100 that an operation times out.
    var unknownPercent = 15
    /// Chance in 100 that the history gets one falsified answer or lost write.
    var faultPercent = 50

    private struct Draft {
        var client: Int
        var input: Register.Input
        var call: Int
        var returnTime: Int?
        /// When it takes effect; nil: never (only for unknown outcomes and lost writes).
        var effect: Int?
        var output: Register.Output = .ok
    }

    func make(_ random: inout SplitMix64) -> ClientHistory<Register> {
        var freeAt = Array(repeating: 0, count: clients)
        var drafts: [Draft] = []
        for _ in 0..<operations {
            let client = random.below(clients)
            let key = keys[random.below(keys.count)]
            let input: Register.Input = switch random.below(10) {
            case 0...3: .write(key: key, value: values[random.below(values.count)])
            case 4...5: .delete(key: key)
            default: .read(key: key)
            }
            let call = freeAt[client] + random.below(3)
            let duration = random.below(6)
            freeAt[client] = call + duration + 1
            if random.chance(unknownPercent, in: 100) {
                // The client gives up after `duration`; the request may still land much later, or never.
                let effect = random.chance(1, in: 2) ? call + random.below(25) : nil
                drafts.append(Draft(client: client, input: input, call: call, returnTime: nil, effect: effect))
            } else {
                drafts.append(Draft(client: client, input: input, call: call, returnTime: call + duration, effect: call + random.below(duration + 1)))
            }
        }
        var falsified: Int?
        let answered = drafts.indices.filter { drafts[$0].returnTime != nil }
        if !answered.isEmpty && random.chance(faultPercent, in: 100) {
            let victim = answered[random.below(answered.count)]
            if case .write = drafts[victim].input, random.chance(1, in: 2) {
                drafts[victim].effect = nil  // acknowledged, never applied: a lost update
            } else {
                falsified = victim
            }
        }
        applyTruth(&drafts)
        if let falsified {
            let answers: [Register.Output] = [.ok, .notFound] + values.map { .value($0) }
            drafts[falsified].output = answers[random.below(answers.count)]  // may happen to be right
        }
        return record(drafts)
    }

    /// Computes every answer from the effects in tick order.
    private func applyTruth(_ drafts: inout [Draft]) {
        let model = Register()
        var store: [String: Register.State] = [:]
        let effects = drafts.indices.compactMap { index in drafts[index].effect.map { (tick: $0, index: index) } }
        for (_, index) in effects.sorted(by: { ($0.tick, $0.index) < ($1.tick, $1.index) }) {
            let key = model.partition(of: drafts[index].input)
            let state = store[key] ?? .absent
            switch drafts[index].input {
            case .write(_, let value): store[key] = .present(value); drafts[index].output = .ok
            case .delete: store[key] = .absent; drafts[index].output = state == .absent ? .notFound : .ok
            case .read:
                if case .present(let value) = state { drafts[index].output = .value(value) } else { drafts[index].output = .notFound }
            }
        }
    }

    private func record(_ drafts: [Draft]) -> ClientHistory<Register> {
        var history = ClientHistory<Register>()
        for draft in drafts {
            let outcome: ClientHistory<Register>.Outcome = draft.returnTime.map { .returned(draft.output, at: $0) } ?? .unknown
            history.append(.init(clientID: draft.client, input: draft.input, callTime: draft.call, outcome: outcome))
        }
        return history
    }
}
