/// Rules for key and value names: case-insensitive comparison, case-preserving storage.
public enum RegistryName {
    /// The form two names are compared in: each Unicode scalar mapped to its lowercase form when
    /// that form is one scalar (a simple case fold, like the registry's per-character upcase),
    /// so folding never changes a name's length in scalars.
    ///
    /// The mapping is pinned: ASCII A-Z here, everything else from ``foldRuns`` (generated once,
    /// see `docs/FORMATS.md`, "Name folding"), never the standard library's current Unicode
    /// tables, so replicas built with different toolchains fold every name alike.
    public static func fold(_ name: String) -> String {
        var isASCIILower = true
        for byte in name.utf8 where byte >= 0x80 || (byte >= 0x41 && byte <= 0x5A) {
            isASCIILower = false
            break
        }
        if isASCIILower { return name }
        var scalars = String.UnicodeScalarView()
        for scalar in name.unicodeScalars {
            if scalar.value < 0x80 {
                let value = UInt8(scalar.value)
                scalars.append((value >= 0x41 && value <= 0x5A) ? Unicode.Scalar(value + 32) : scalar)
                continue
            }
            // The table only holds valid scalars (a test checks every target); the fallback
            // keeps a damaged table from trapping.
            scalars.append(Unicode.Scalar(foldedNonASCII(scalar.value)) ?? scalar)
        }
        return String(scalars)
    }

    /// The fold of one scalar value at or above U+0080: a binary search of ``foldRuns`` for the
    /// last run starting at or below it.
    static func foldedNonASCII(_ value: UInt32) -> UInt32 {
        let runs = foldRuns
        guard let lowest = runs.first?.first, let highest = runs.last?.last, value >= lowest, value <= highest else {
            return value
        }
        var low = 0
        var high = runs.count
        while low < high {
            let middle = (low + high) / 2
            if runs[middle].first <= value {
                low = middle + 1
            } else {
                high = middle
            }
        }
        guard low > 0 else { return value }
        let run = runs[low - 1]
        guard value <= run.last, (value - run.first).isMultiple(of: run.stride) else { return value }
        return UInt32(truncatingIfNeeded: Int64(value) + Int64(run.delta))
    }

    /// A run of the fold table: `first`, `first + stride`, ... up to `last` each fold to
    /// themselves plus `delta`; for stride 2 the scalars in between fold to themselves. Runs
    /// capture the table's patterns (`+32` blocks, `+1` alternating upper/lower pairs) compactly.
    struct FoldRun: Sendable {
        /// The first scalar value of the run.
        let first: UInt32
        /// The last scalar value of the run (a mapped one).
        let last: UInt32
        /// 1 when every scalar of the run is mapped, 2 when every other one is.
        let stride: UInt32
        /// What each mapped scalar value adds to become its fold.
        let delta: Int32
    }

    /// Checks one key name (a path component).
    /// - Throws: `ERROR_INVALID_PARAMETER` for an empty name, a backslash, a NUL or a name longer
    ///   than ``Limits/keyNameMaxLength``.
    public static func validateKeyName(_ name: String) throws(ClusterError) {
        if name.isEmpty {
            throw ClusterError(.invalidParameter, "a key name must not be empty")
        }
        let units = name.utf16.count
        if units > Limits.keyNameMaxLength {
            throw ClusterError(
                .invalidParameter,
                "key name is \(units) UTF-16 units long; the limit is \(Limits.keyNameMaxLength)")
        }
        for scalar in name.unicodeScalars where scalar == "\\" || scalar == "\0" {
            throw ClusterError(.invalidParameter, "key name \(quoted(name)) contains a backslash or NUL")
        }
    }

    /// Checks one value name; the empty name is the key's default value.
    /// - Throws: `ERROR_INVALID_PARAMETER` for a NUL or a name longer than
    ///   ``Limits/valueNameMaxLength``.
    public static func validateValueName(_ name: String) throws(ClusterError) {
        let units = name.utf16.count
        if units > Limits.valueNameMaxLength {
            throw ClusterError(
                .invalidParameter,
                "value name is \(units) UTF-16 units long; the limit is \(Limits.valueNameMaxLength)")
        }
        for scalar in name.unicodeScalars where scalar == "\0" {
            throw ClusterError(.invalidParameter, "value name contains a NUL character")
        }
    }

    /// A name in quotes for messages, shortened when long.
    ///
    /// Counted in Unicode scalars, not `Character`s: grapheme breaking follows the standard
    /// library's Unicode version, and apply-time failure messages must read the same on every
    /// replica whatever toolchain built it.
    public static func quoted(_ name: String) -> String {
        let scalars = name.unicodeScalars
        guard scalars.count > 64 else { return "\"\(name)\"" }
        var prefix = String.UnicodeScalarView()
        prefix.append(contentsOf: scalars.prefix(61))
        return "\"\(String(prefix))...\""
    }
}
