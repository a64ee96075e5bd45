import ClusDBModel
import ClusDBTestSupport
import Testing

@Suite("Command encoding")
struct HiveCommandEncodingTests {
    static func commands() throws -> [HiveCommand] {
        [
            .createKey(try KeyPath(#"Resources\A"#)),
            .createKey(.root),
            .setValue(key: try KeyPath("K"), name: "", value: .multiString(["x", "y"]), createKey: true),
            .setValue(key: try KeyPath("K"), name: "n", value: .qword(.max), createKey: false),
            .deleteValue(key: try KeyPath("K"), name: "n"),
            .deleteKey(try KeyPath(#"a\b"#), recursive: true),
            .batch(root: try KeyPath("R"), commands: [
                .createKey(try KeyPath(#"x\y"#)), .setValue(name: "v", value: .binary([1, 2])), .deleteValue(name: "w"),
                .deleteKey(try KeyPath("x")),
            ]),
            .batch(root: .root, commands: []),
        ]
    }

    @Test("Every command round-trips through its encoding")
    func roundTrip() throws {
        for command in try Self.commands() {
            #expect(try HiveCommand(encoded: command.encoded()) == command)
        }
    }

    @Test("Every truncation of an encoding is refused with ERROR_INVALID_DATA")
    func truncations() throws {
        for command in try Self.commands() {
            let bytes = command.encoded()
            for length in 0..<bytes.count {
                do {
                    _ = try HiveCommand(encoded: Array(bytes.prefix(length)))
                    Issue.record("a \(length)-byte prefix of \(command) decoded")
                } catch {
                    #expect(error.code == .invalidData)
                }
            }
        }
    }

    @Test("Mutated encodings never crash: they decode to a valid command or fail with ERROR_INVALID_DATA")
    func mutations() throws {
        var random = SplitMix64(seed: 0xC1D5)
        for command in try Self.commands() {
            let bytes = command.encoded()
            for _ in 0..<2_000 {
                var mutated = bytes
                for _ in 0..<(1 + Int(random.next() % 3)) {
                    let position = Int(random.next() % UInt64(mutated.count))
                    mutated[position] = UInt8(truncatingIfNeeded: random.next())
                }
                do {
                    let decoded = try HiveCommand(encoded: mutated)
                    try decoded.validate()
                } catch {
                    #expect(error.code == .invalidData)
                }
            }
        }
    }

    @Test("Batch validation reports the failing command's index")
    func batchValidation() throws {
        let command = HiveCommand.batch(root: .root, commands: [
            .setValue(name: "ok", value: .dword(1)), .setValue(name: "bad", value: .string("a\u{0}")),
        ])
        do {
            try command.validate()
            Issue.record("an invalid batch validated")
        } catch {
            #expect(error.code == .invalidParameter)
            #expect(error.failedCommand == 1)
        }
    }

    @Test("A batch over the command limit is refused before its first command")
    func batchSizeLimit() throws {
        let atLimit = HiveCommand.batch(
            root: .root, commands: Array(repeating: .deleteValue(name: "v"), count: Limits.batchCommandsMax))
        try atLimit.validate()
        let over = HiveCommand.batch(
            root: .root, commands: Array(repeating: .deleteValue(name: "v"), count: Limits.batchCommandsMax + 1))
        do {
            try over.validate()
            Issue.record("a batch over the limit validated")
        } catch {
            #expect(error.code == .invalidParameter)
            #expect(error.failedCommand == -1)
        }
    }
}
