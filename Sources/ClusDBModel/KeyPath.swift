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
        if text.hasPrefix("\\") {
            throw ClusterError(.invalidParameter, "key path \(RegistryName.quoted(text)) must not start with a backslash")
        }
        if text.hasSuffix("\\") {
            throw ClusterError(.invalidParameter, "key path \(RegistryName.quoted(text)) must not end with a backslash")
        }
        let parts = text.split(separator: "\\", omittingEmptySubsequences: false).map(String.init)
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
    public func sameKey(as other: KeyPath) -> Bool {
        components.count == other.components.count && folded == other.folded
    }

    /// The backslash-joined text form.
    public var description: String { components.joined(separator: "\\") }
}
