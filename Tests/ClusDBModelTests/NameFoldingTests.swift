@testable import ClusDBModel
import Testing

/// The pinned name folding: the generated table (Sources/ClusDBModel/RegistryNameFoldTable.swift)
/// is what every replica compares names with, so these tests check the table itself, the named
/// cases the registry must get right, and that it matches the rule ClusDB used before it was
/// pinned.
@Suite("Name folding: the pinned table")
struct NameFoldingTests {
    /// How ClusDB folded one scalar before the table: ASCII A-Z to a-z, any other scalar to its
    /// standard-library lowercase mapping when that is exactly one scalar. Existing data
    /// directories hold `fold` columns computed this way.
    static func foldAsBeforeThePin(_ scalar: Unicode.Scalar) -> Unicode.Scalar {
        if scalar.value < 0x80 {
            return (0x41...0x5A).contains(scalar.value) ? Unicode.Scalar(UInt8(scalar.value + 32)) : scalar
        }
        let lower = scalar.properties.lowercaseMapping.unicodeScalars
        if lower.count == 1, let only = lower.first { return only }
        return scalar
    }

    /// The fold of a one-scalar name, as scalar values (never compared with String's `==`,
    /// which treats canonically equivalent spellings as equal).
    static func folded(_ scalar: Unicode.Scalar) -> [UInt32] {
        RegistryName.fold(String(Character(scalar))).unicodeScalars.map(\.value)
    }

    /// Fold of a whole name as scalar values.
    static func folded(_ name: String) -> [UInt32] {
        RegistryName.fold(name).unicodeScalars.map(\.value)
    }

    // This pins today's behaviour: on the toolchain the table was generated with (Unicode 17.0,
    // Swift 6.3) the table and the standard library agree on every scalar. On a future toolchain
    // with newer Unicode data this test fails and so documents the drift: the standard library
    // now folds some names differently, and ClusDB does not follow, because the table is what
    // counts. Do not regenerate the table to make it pass; a new table is a format change
    // (docs/FORMATS.md, "Name folding").
    @Test("The table folds every scalar exactly as the standard library did when it was pinned")
    func agreesWithTheStandardLibraryForEveryScalar() {
        var differences: [String] = []
        var checked = 0
        for value in UInt32(0)...0x10FFFF {
            guard let scalar = Unicode.Scalar(value) else { continue }  // the surrogates
            checked += 1
            let expected = Self.foldAsBeforeThePin(scalar).value
            let actual = Self.folded(scalar)
            if actual != [expected] {
                let table = actual.map { "U+" + String($0, radix: 16, uppercase: true) }.joined(separator: " ")
                let stdlib = "U+" + String(expected, radix: 16, uppercase: true)
                differences.append("U+\(String(value, radix: 16, uppercase: true)): table \(table), stdlib \(stdlib)")
            }
        }
        #expect(checked == 0x110000 - 0x800)
        #expect(
            differences.isEmpty,
            "\(differences.count) scalars fold differently from this toolchain's standard library (table from Unicode \(RegistryName.foldTableUnicodeVersion)); first: \(differences.prefix(10))"
        )
    }

    @Test("The table's runs are sorted, do not overlap, and map only non-ASCII scalars to other valid scalars")
    func tableIsWellFormed() {
        let runs = RegistryName.foldRuns
        #expect(!runs.isEmpty)
        var previousLast: UInt32? = nil
        var mapped = 0
        for run in runs {
            #expect(run.first >= 0x80, "run at \(run.first) touches ASCII")
            #expect(run.first <= run.last)
            #expect(run.last <= 0x10FFFF)
            #expect(run.stride == 1 || run.stride == 2)
            #expect(run.delta != 0)
            #expect((run.last - run.first).isMultiple(of: run.stride), "run \(run.first)...\(run.last) ends off its stride")
            if let previousLast { #expect(previousLast < run.first, "runs overlap or are out of order at \(run.first)") }
            previousLast = run.last
            var source = run.first
            while source <= run.last {
                let target = Int64(source) + Int64(run.delta)
                #expect(Unicode.Scalar(source) != nil && target >= 0 && Unicode.Scalar(UInt32(target)) != nil)
                mapped += 1
                source += run.stride
            }
        }
        // The counts the generator printed in the table's header.
        #expect(runs.count == 184)
        #expect(mapped == 1461)
        #expect(RegistryName.foldTableUnicodeVersion == "17.0")
    }

    @Test("A fold of a fold changes nothing, for every scalar")
    func foldIsIdempotent() {
        var refolded: [UInt32] = []
        for value in UInt32(0x80)...0x10FFFF {
            let once = RegistryName.foldedNonASCII(value)
            // A target below U+0080 (the Kelvin sign's k) is already ASCII lower case.
            if once >= 0x80 && RegistryName.foldedNonASCII(once) != once { refolded.append(value) }
        }
        #expect(refolded.isEmpty, "these fold again after one fold: \(refolded.prefix(10))")
    }

    @Test("Greek sigma: Σ folds to σ; final ς stays itself")
    func sigma() {
        #expect(Self.folded("Σ") == [0x03C3])  // capital sigma to small sigma
        #expect(Self.folded("σ") == [0x03C3])
        // Final sigma is already lower case: a simple lowercase fold leaves it, so "ΟΔΟΣ" and
        // "οδος" (final ς) are different names, as they were before the pin.
        #expect(Self.folded("ς") == [0x03C2])
        #expect(Self.folded("ΟΔΟΣ") == Self.folded("οδοσ"))
        #expect(Self.folded("ΟΔΟΣ") != Self.folded("οδος"))
    }

    @Test("Scalars whose lowercase is more than one scalar stay unchanged (İ U+0130)")
    func multiScalarMappingsStay() {
        // U+0130's lowercase is "i" + U+0307: two scalars, so the name keeps U+0130.
        #expect(Self.folded("\u{0130}") == [0x0130])
        #expect(Self.folded("\u{0130}STANBUL") == [0x0130, 0x73, 0x74, 0x61, 0x6E, 0x62, 0x75, 0x6C])
        #expect(Self.folded("\u{0130}") != Self.folded("i"))
    }

    @Test("Kelvin sign U+212A folds to ASCII k")
    func kelvinSign() {
        #expect(Self.folded("\u{212A}") == [0x6B])
        #expect(Self.folded("\u{212A}elvin") == Self.folded("KELVIN"))
        // Ohm sign U+2126 likewise folds to small omega.
        #expect(Self.folded("\u{2126}") == [0x03C9])
    }

    @Test("Turkish dotless ı stays itself; capital I folds to ASCII i")
    func turkishDotlessI() {
        #expect(Self.folded("\u{0131}") == [0x0131])
        #expect(Self.folded("I") == [0x69])
        #expect(Self.folded("\u{0131}") != Self.folded("I"))
    }

    @Test("Cyrillic and Deseret (outside the BMP) fold, and folding keeps the length in scalars")
    func cyrillicAndDeseret() {
        #expect(Self.folded("МОСКВА") == Self.folded("москва"))
        #expect(Self.folded("Ё") == [0x0451])
        #expect(Self.folded("\u{10400}") == [0x10428])  // 𐐀 to 𐐨
        #expect(RegistryName.fold("𐐀𐐁").unicodeScalars.count == 2)
        #expect(Self.folded("ẞ") == [0x00DF])  // capital sharp s folds below its block
    }

    @Test("Canonically equivalent spellings are different names: folding does not normalize")
    func noNormalization() throws {
        let composed = "\u{00C9}"  // É
        let decomposed = "E\u{0301}"
        #expect(Self.folded(composed) == [0x00E9])
        #expect(Self.folded(decomposed) == [0x65, 0x0301])
        #expect(!(try KeyPath(composed).sameKey(as: try KeyPath(decomposed))))
        #expect(try KeyPath(composed).sameKey(as: try KeyPath("\u{00E9}")))
    }

    @Test("An export holding both spellings of é imports; two names differing only by case do not")
    func importComparesFoldsAsBytes() throws {
        let both = #"{"keys": {"Caf\#u{00E9}": {}, "Cafe\#u{0301}": {}}, "values": {"\#u{00E9}": {"type": "REG_DWORD", "data": 1}, "e\#u{0301}": {"type": "REG_DWORD", "data": 2}}}"#
        let imported = try ExportedKey(jsonBytes: Array(both.utf8))
        #expect(imported.keys.count == 2 && imported.values.count == 2)
        let clash = #"{"keys": {"\#u{212A}elvin": {}, "KELVIN": {}}}"#
        #expect(throws: ClusterError.self) { try ExportedKey(jsonBytes: Array(clash.utf8)) }
    }

    @Test("Key paths split on the backslash scalar even when a combining mark follows it")
    func pathSplitsOnScalars() throws {
        let path = try KeyPath("A\\\u{0301}b")
        #expect(path.components.map { Array($0.unicodeScalars) } == [["A"], ["\u{0301}", "b"]])
        #expect(throws: ClusterError.self) { try KeyPath("\\\u{0301}b") }
    }

    @Test("Long names in messages are cut by scalars, not Characters")
    func quotedCutsByScalars() {
        let long = String(repeating: "e\u{0301}", count: 40)  // 40 Characters, 80 scalars
        let quoted = RegistryName.quoted(long)
        #expect(quoted.unicodeScalars.count == 61 + 5)
        #expect(quoted.hasSuffix("...\""))
        #expect(RegistryName.quoted("short") == "\"short\"")
    }
}
