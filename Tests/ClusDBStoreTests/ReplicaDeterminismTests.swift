import ClusDBModel
import ClusDBStore
import ClusDBTestSupport
import Testing

/// Every replica applies the same committed log and must reach the same hive, whatever its
/// storage (memory or a WAL file), however the log was cut into apply groups, and whether its
/// key-id cache is warm or was emptied by a restart.
@Suite("Replicas: the same log gives the same hive")
struct ReplicaDeterminismTests {
    /// One committed log entry as it travels between replicas: its term and its encoded command
    /// (nil for a no-op).
    struct LogItem {
        var term: UInt64
        var payload: [UInt8]?
    }

    // MARK: The log

    /// Names that fold together (case, Greek, Cyrillic, the Kelvin sign, Deseret outside the
    /// BMP) and names that must not (NFC and NFD spellings, U+0130 and i, dotless ı and i, final
    /// and non-final sigma).
    static let keyNames = [
        "Services", "SERVICES", "services", "Ärger", "äRGER", "ÄRGER", "Москва", "МОСКВА", "ΣΙΓΜΑ", "σιγμα",
        "σιγμας", "\u{212A}elvin", "KELVIN", "𐐀𐐁", "𐐨𐐩", "Caf\u{00E9}", "Cafe\u{0301}", "\u{0130}stanbul",
        "istanbul", "\u{0131}stanbul",
    ]
    static let valueNames = keyNames + ["", "Port", "PORT", "port"]

    /// A hand-written stretch under `Pinned`, whose export is checked against a literal below.
    static func pinnedCommands() throws -> [HiveCommand?] {
        func key(_ components: String...) throws -> KeyPath { try KeyPath(components: ["Pinned"] + components) }
        return [
            .createKey(try key("Ärger")),
            .createKey(try key("äRGER")),  // opens Ärger
            .setValue(key: try key("ÄRGER"), name: "Größe", value: .dword(1), createKey: false),
            .setValue(key: try key("ärger"), name: "GRÖßE", value: .dword(2), createKey: false),  // same value, first spelling kept
            .setValue(key: try key("\u{212A}elvin"), name: "ΣΙΓΜΑ", value: .string("kelvin sign"), createKey: true),
            .setValue(key: try key("KELVIN"), name: "σιγμα", value: .expandString("%K%"), createKey: true),  // same key, same value
            .setValue(key: try key("KELVIN"), name: "σιγμας", value: .qword(7), createKey: true),  // final sigma: another value
            .setValue(key: try key("МОСКВА"), name: "", value: .multiString(["Кремль", "ΟΔΟΣ", "𐐀"]), createKey: true),
            .setValue(key: try key("москва"), name: "Bin", value: .binary([0, 1, 0xFE, 0xFF]), createKey: false),
            .setValue(key: try key("москва"), name: "None", value: .none([]), createKey: false),
            .setValue(key: try key("𐐀𐐁"), name: "𐐨", value: .dword(3), createKey: true),
            .setValue(key: try key("𐐨𐐩"), name: "𐐀", value: .dword(4), createKey: true),  // same key and value
            .createKey(try key("Caf\u{00E9}")),
            .createKey(try key("Cafe\u{0301}")),  // canonically equivalent, yet another key
            .setValue(key: try key("CAFE\u{0301}"), name: "spelling", value: .string("NFD"), createKey: false),
            .setValue(key: try key("CAF\u{00C9}"), name: "spelling", value: .string("NFC"), createKey: false),
            .createKey(try key("\u{0130}stanbul")),
            .createKey(try key("istanbul")),  // U+0130 lowercases to two scalars: not folded
            .createKey(try key("\u{0131}stanbul")),  // dotless ı is not i
            nil,
            .deleteValue(key: try key("МОСКВА"), name: "none"),
            .deleteValue(key: try key("МОСКВА"), name: "none"),  // fails: already gone
            .deleteKey(try key("ISTANBUL"), recursive: false),
            .createKey(try key("Temp\u{212A}")),
            .deleteKey(try key("TEMPk"), recursive: false),  // the Kelvin sign folds to k
            .createKey(try key("Doomed", "Child")),
            .deleteKey(try key("DOOMED"), recursive: false),  // fails: has a subkey
            .deleteKey(try key("dOOMED"), recursive: true),
            .batch(root: try key("ärger"), commands: [
                .setValue(name: "InBatch", value: .string("ok")),
                .createKey(try KeyPath(components: ["Sub", "ΣΙΓΜΑ"])),
                .setValue(name: "deep", value: .qword(UInt64.max)),
                .deleteValue(name: "missing is fine"),
            ]),
            .batch(root: try key("ÄRGER"), commands: [
                .setValue(name: "rolled back", value: .dword(9)),
                .deleteKey(try KeyPath(components: ["SUB"])),
                .setValue(name: "fails", value: .dword(10)),  // no current key: the batch fails
            ]),
            .batch(root: try key("Missing"), commands: [.deleteValue(name: "x")]),  // fails before its first command
        ]
    }

    /// The export of `Pinned` after ``pinnedCommands()``: folding as pinned, first spellings kept,
    /// canonically equivalent spellings apart.
    static let pinnedExport = """
        {
          "keys": {
            "Cafe\u{0301}": {
              "keys": {},
              "values": {
                "spelling": {
                  "data": "NFD",
                  "type": "REG_SZ"
                }
              }
            },
            "Caf\u{00E9}": {
              "keys": {},
              "values": {
                "spelling": {
                  "data": "NFC",
                  "type": "REG_SZ"
                }
              }
            },
            "Ärger": {
              "keys": {
                "Sub": {
                  "keys": {
                    "ΣΙΓΜΑ": {
                      "keys": {},
                      "values": {
                        "deep": {
                          "data": 18446744073709551615,
                          "type": "REG_QWORD"
                        }
                      }
                    }
                  },
                  "values": {}
                }
              },
              "values": {
                "Größe": {
                  "data": 2,
                  "type": "REG_DWORD"
                },
                "InBatch": {
                  "data": "ok",
                  "type": "REG_SZ"
                }
              }
            },
            "\u{0130}stanbul": {
              "keys": {},
              "values": {}
            },
            "\u{0131}stanbul": {
              "keys": {},
              "values": {}
            },
            "МОСКВА": {
              "keys": {},
              "values": {
                "": {
                  "data": ["Кремль","ΟΔΟΣ","𐐀"],
                  "type": "REG_MULTI_SZ"
                },
                "Bin": {
                  "data": "0001feff",
                  "type": "REG_BINARY"
                }
              }
            },
            "\u{212A}elvin": {
              "keys": {},
              "values": {
                "ΣΙΓΜΑ": {
                  "data": "%K%",
                  "type": "REG_EXPAND_SZ"
                },
                "σιγμας": {
                  "data": 7,
                  "type": "REG_QWORD"
                }
              }
            },
            "𐐀𐐁": {
              "keys": {},
              "values": {
                "𐐨": {
                  "data": 4,
                  "type": "REG_DWORD"
                }
              }
            }
          },
          "values": {}
        }

        """

    /// Seeded random commands under `Random`, drawn from names that fold together, with every
    /// command kind and value type, batches that succeed and batches that roll back.
    static func randomCommands(count: Int, seed: UInt64) throws -> [HiveCommand?] {
        var random = SplitMix64(seed: seed)
        func below(_ bound: Int) -> Int { Int(random.next() % UInt64(bound)) }
        func pick<T>(_ choices: [T]) -> T { choices[below(choices.count)] }
        func relative() throws -> KeyPath { try KeyPath(components: (0...below(3)).map { _ in pick(keyNames) }) }
        func absolute() throws -> KeyPath { try KeyPath(components: ["Random"] + relative().components) }
        func text() -> String { (0...below(3)).map { _ in pick(valueNames + ["x"]) }.joined(separator: " ") }
        func bytes() -> [UInt8] { (0..<below(6)).map { _ in UInt8(truncatingIfNeeded: random.next()) } }
        func value() -> RegistryValue {
            switch below(7) {
            case 0: return .none(bytes())
            case 1: return .string(text())
            case 2: return .expandString("%" + text() + "%")
            case 3: return .binary(bytes())
            case 4: return .dword(UInt32(truncatingIfNeeded: random.next()))
            case 5: return .multiString((0..<below(4)).map { _ in pick(keyNames) })
            default: return .qword(random.next())
            }
        }
        func batchCommand() throws -> BatchCommand {
            switch below(10) {
            case 0...3: return .setValue(name: pick(valueNames), value: value())
            case 4...6: return .createKey(try relative())
            case 7: return .deleteKey(try relative())
            default: return .deleteValue(name: pick(valueNames))
            }
        }
        var commands: [HiveCommand?] = []
        for _ in 0..<count {
            switch below(100) {
            case 0..<30: commands.append(.setValue(key: try absolute(), name: pick(valueNames), value: value(), createKey: true))
            case 30..<40: commands.append(.setValue(key: try absolute(), name: pick(valueNames), value: value(), createKey: false))
            case 40..<52: commands.append(.createKey(try absolute()))
            case 52..<64: commands.append(.deleteValue(key: try absolute(), name: pick(valueNames)))
            case 64..<72: commands.append(.deleteKey(try absolute(), recursive: false))
            case 72..<77: commands.append(.deleteKey(try absolute(), recursive: true))
            case 77..<95:
                let root = try below(3) == 0 ? absolute() : KeyPath("Random")
                commands.append(.batch(root: root, commands: try (0...below(6)).map { _ in try batchCommand() }))
            default: commands.append(nil)
            }
        }
        return commands
    }

    /// The whole log: `Random` first (its first command creates the key), then `Pinned`, with
    /// the term rising now and then as leaders would change.
    static func log() throws -> [LogItem] {
        var commands: [HiveCommand?] = [.createKey(try KeyPath("Random"))]
        commands += try randomCommands(count: 600, seed: 0xF01D)
        commands += try pinnedCommands()
        var term: UInt64 = 1
        return commands.enumerated().map { offset, command in
            if offset % 97 == 96 { term += 1 }
            return LogItem(term: term, payload: command?.encoded())
        }
    }

    // MARK: Replicas

    /// A replica: decodes each entry itself (as it would from its own log) and applies the log in
    /// groups of the given sizes (cycled), recording every outcome.
    final class Replica {
        private(set) var hive: Hive
        private let path: String?
        private(set) var outcomes: [String] = []
        private var applied: UInt64 = 0

        /// A replica in memory, or on a WAL file at `path`.
        init(path: String? = nil) throws {
            self.path = path
            hive = try path.map { try Hive.open(path: $0) } ?? Hive.inMemory()
        }

        /// Closes and reopens the hive file, as a restarted node does: its key-id cache starts empty.
        func restart() throws {
            guard let path else { return }
            hive.close()
            hive = try Hive.open(path: path)
        }

        /// Applies the next `count` entries of `log` in one group.
        func apply(_ log: [LogItem], count: Int) throws {
            let start = Int(applied)
            let group = try log[start..<min(start + count, log.count)].enumerated().map { offset, item in
                let index = UInt64(start + offset + 1)
                guard let payload = item.payload else { return Hive.Committed(index: index, term: item.term, command: nil) }
                return Hive.Committed(index: index, term: item.term, command: try HiveCommand(encoded: payload))
            }
            for (item, outcome) in zip(group, try hive.apply(group)) {
                outcomes.append("\(item.index) \(Self.describe(outcome))")
            }
            applied += UInt64(group.count)
        }

        /// Applies the whole log in groups cycling through `sizes`, restarting after every
        /// `restartEvery` groups (0: never).
        func applyAll(_ log: [LogItem], sizes: [Int], restartEvery: Int = 0) throws {
            var group = 0
            while applied < UInt64(log.count) {
                try apply(log, count: sizes[group % sizes.count])
                group += 1
                if restartEvery > 0, group % restartEvery == 0 { try restart() }
            }
        }

        /// An outcome as text whose bytes can be compared (a ClusterError's `==` compares its
        /// message with String's canonical equivalence).
        static func describe(_ outcome: CommandOutcome) -> String {
            switch outcome {
            case .done: return "done"
            case .keyCreated: return "created"
            case .keyOpened: return "opened"
            case .failed(let error): return "failed \(error.code.rawValue) \(error.failedCommand.map { String($0) } ?? "-") \(error.message)"
            }
        }

        /// The export of the whole hive, as bytes.
        func export() throws -> [UInt8] { try hive.exportBlocking(.root).jsonBytes() }
    }

    @Test("Two hives, a third with other apply groups and restarts, and a fourth in one group export the same bytes")
    func sameLogSameHive() throws {
        let log = try Self.log()
        let directory = TemporaryDirectory("clusdb-replicas")
        defer { directory.remove() }

        let first = try Replica()
        try first.applyAll(log, sizes: [1])
        let second = try Replica(path: directory.file("second.sqlite"))
        try second.applyAll(log, sizes: [1])
        let regrouped = try Replica(path: directory.file("regrouped.sqlite"))
        try regrouped.applyAll(log, sizes: [3, 1, 17, 2, 64, 5, 8, 1, 40], restartEvery: 4)
        let oneGroup = try Replica()
        try oneGroup.applyAll(log, sizes: [log.count])
        defer { [first, second, regrouped, oneGroup].forEach { $0.hive.close() } }

        let expected = try first.export()
        for (name, replica) in [("second", second), ("regrouped", regrouped), ("one group", oneGroup)] {
            #expect(try replica.export() == expected, "\(name) exports other bytes")
            let otherOutcome = zip(replica.outcomes, first.outcomes).first { !$0.utf8.elementsEqual($1.utf8) }
            #expect(
                replica.outcomes.count == first.outcomes.count && otherOutcome == nil,
                "\(name) saw other outcomes, first: \(otherOutcome.map { "\($0.0) instead of \($0.1)" } ?? "a different count")")
            #expect(try replica.hive.state() == first.hive.state())
            // Also the stored folds, spellings and value bytes, which the export does not show.
            #expect(try HiveDifference.between(current: first.hive, restored: replica.hive) == HiveDifference())
        }

        // The log really exercised the rules: failures, batches, both kinds of outcome.
        #expect(first.outcomes.count == log.count)
        #expect(first.outcomes.contains { $0.hasSuffix(" created") } && first.outcomes.contains { $0.hasSuffix(" opened") })
        #expect(first.outcomes.filter { $0.contains(" failed ") }.count > 50)
        let counts = try first.hive.summary()
        #expect(counts.keys > 15 && counts.values > 15)

        // And the pinned stretch folded as pinned.
        let pinned = try first.hive.exportBlocking(try KeyPath("Pinned")).jsonBytes()
        #expect(pinned == Array(Self.pinnedExport.utf8), "\(String(decoding: pinned, as: UTF8.self))")
    }

    @Test("A cached key id never answers for a canonically equivalent spelling the hive keeps apart")
    func keyIDCacheComparesBytes() async throws {
        let hive = try Hive.inMemory()
        defer { hive.close() }
        let composed = try KeyPath(components: ["Caf\u{00E9}"])
        let decomposed = try KeyPath(components: ["Cafe\u{0301}"])
        let outcomes = try hive.apply([
            Hive.Committed(index: 1, term: 1, command: .createKey(composed)),  // caches the NFC path
            Hive.Committed(index: 2, term: 1, command: .setValue(key: decomposed, name: "v", value: .dword(1), createKey: false)),
            Hive.Committed(index: 3, term: 1, command: .createKey(decomposed)),
        ])
        guard outcomes.count == 3, case .failed(let error) = outcomes[1] else {
            Issue.record("setValue on the NFD spelling found the NFC key: \(outcomes)")
            return
        }
        #expect(error.code == .fileNotFound)
        #expect(outcomes[2] == .keyCreated)
        #expect(try await hive.counts().keys == 2)
    }
}
