/// A validated path of a key, relative to the hive root: components joined by backslashes,
/// no leading or trailing backslash (`Resources\{GUID}\Parameters`). The empty path is the root.
///
/// Components keep their case; compare paths with ``folded``.
public struct KeyPath: Hashable, Sendable, CustomStringConvertible {
    /// The key names from the root down.
    public let components: [String]

    /// The hive root.
    public static let root = KeyPath(trusted: [])

    private init(trusted components: [String]) { self.components = components }

    /// Parses and validates a backslash-separated path.
    /// - Throws: `ERROR_INVALID_PARAMETER` for a leading or trailing backslash, an empty component,
    ///   a component that breaks ``RegistryName/validateKeyName(_:)``, or more than
    ///   ``Limits/keyDepthMax`` components.
    public init(_ text: String) throws(ClusterError) {
        if text.isEmpty {
            self.init(trusted: [])
            return
        }
        // Split on the backslash scalar, not on `Character`s: a backslash and a combining mark
        // after it (U+0301) are one Character, which a Character split would not separate, and
        // grapheme breaking follows the standard library's Unicode version.
        let scalars = text.unicodeScalars
        if scalars.first == "\\" {
            throw ClusterError(.invalidParameter, "key path \(RegistryName.quoted(text)) must not start with a backslash")
        }
        if scalars.last == "\\" {
            throw ClusterError(.invalidParameter, "key path \(RegistryName.quoted(text)) must not end with a backslash")
        }
        let parts = scalars.split(separator: "\\", omittingEmptySubsequences: false).map(String.init)
        try self.init(components: parts)
    }

    /// Validates a list of components.
    /// - Throws: as ``init(_:)``.
    public init(components: [String]) throws(ClusterError) {
        if components.count > Limits.keyDepthMax {
            throw ClusterError(
                .invalidParameter, "key path has \(components.count) levels; the limit is \(Limits.keyDepthMax)")
        }
        for component in components {
            try RegistryName.validateKeyName(component)
        }
        self.components = components
    }

    /// True for the hive root.
    public var isRoot: Bool { components.isEmpty }

    /// The components in their compared form.
    public var folded: [String] { components.map(RegistryName.fold) }

    /// The parent path; nil for the root.
    public var parent: KeyPath? {
        isRoot ? nil : KeyPath(trusted: Array(components.dropLast()))
    }

    /// This path with `other` appended below it.
    /// - Throws: `ERROR_INVALID_PARAMETER` when the result is deeper than ``Limits/keyDepthMax``.
    public func appending(_ other: KeyPath) throws(ClusterError) -> KeyPath {
        if components.count + other.components.count > Limits.keyDepthMax {
            throw ClusterError(.invalidParameter, "key path would be deeper than \(Limits.keyDepthMax) levels")
        }
        return KeyPath(trusted: components + other.components)
    }

    /// True when both name the same key (names compare case-insensitively).
    ///
    /// Folded names are compared by their UTF-8 bytes, as the hive compares them: `String`'s `==`
    /// treats canonically equivalent spellings (`é` and `e` + U+0301) as equal, the hive does not.
    public func sameKey(as other: KeyPath) -> Bool {
        components.count == other.components.count
            && zip(folded, other.folded).allSatisfy { $0.utf8.elementsEqual($1.utf8) }
    }

    /// The backslash-joined text form.
    public var description: String { components.joined(separator: "\\") }
}
