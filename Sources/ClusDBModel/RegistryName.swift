/// Rules for key and value names: case-insensitive comparison, case-preserving storage.
public enum RegistryName {
    /// The form two names are compared in: each Unicode scalar mapped to its lowercase form when
    /// that form is one scalar (a simple case fold, like the registry's per-character upcase),
    /// so folding never changes a name's length in scalars.
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
            let lower = scalar.properties.lowercaseMapping.unicodeScalars
            if lower.count == 1, let first = lower.first {
                scalars.append(first)
            } else {
                scalars.append(scalar)
            }
        }
        return String(scalars)
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
    public static func quoted(_ name: String) -> String {
        name.count > 64 ? "\"\(name.prefix(61))...\"" : "\"\(name)\""
    }
}
