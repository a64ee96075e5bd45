/// The JSON messages of the HTTP client API (`docs/HTTP_API.md`), shared by the service and the
/// Swift client so both sides encode exactly the same shapes.
public enum ClientProtocol {
    /// The path prefix of every endpoint.
    public static let prefix = "/v1"

    /// `{"key"}`: create-key, open-key, enum-key, export.
    public struct KeyRequest: Codable, Sendable {
        /// The key path.
        public var key: String
        /// Creates a request.
        public init(key: String) { self.key = key }
    }

    /// `{"path"}`: backup written by the node itself (`--on-quorum-owner`).
    public struct BackupRequest: Codable, Sendable {
        /// The backup directory, in the node's file system.
        public var path: String
        /// Creates a request.
        public init(path: String) { self.path = path }
    }

    /// `{"key", "name"}`: query-value, delete-value.
    public struct ValueRequest: Codable, Sendable {
        /// The key path.
        public var key: String
        /// The value name.
        public var name: String
        /// Creates a request.
        public init(key: String, name: String) {
            self.key = key
            self.name = name
        }
    }

    /// `{"key", "name", "type", "data", "createKey"}`: set-value.
    public struct SetValueRequest: Codable, Sendable {
        /// The key path.
        public var key: String
        /// The value name.
        public var name: String
        /// The value.
        public var value: RegistryValue
        /// Create the key and its missing parents first.
        public var createKey: Bool

        /// Creates a request.
        public init(key: String, name: String, value: RegistryValue, createKey: Bool) {
            self.key = key
            self.name = name
            self.value = value
            self.createKey = createKey
        }

        private enum CodingKeys: String, CodingKey { case key, name, createKey }

        /// Decodes the flat form.
        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            key = try container.decode(String.self, forKey: .key)
            name = try container.decode(String.self, forKey: .name)
            createKey = try container.decodeIfPresent(Bool.self, forKey: .createKey) ?? false
            value = try RegistryValue(from: decoder)
        }

        /// Encodes the flat form.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(key, forKey: .key)
            try container.encode(name, forKey: .name)
            try container.encode(createKey, forKey: .createKey)
            try value.encode(to: encoder)
        }
    }

    /// `{"key", "recursive"}`: delete-key.
    public struct DeleteKeyRequest: Codable, Sendable {
        /// The key path.
        public var key: String
        /// Delete the whole subtree.
        public var recursive: Bool
        /// Creates a request.
        public init(key: String, recursive: Bool) {
            self.key = key
            self.recursive = recursive
        }
    }

    /// One batch command: `{"command": "setValue"|"createKey"|"deleteKey"|"deleteValue",
    /// "name", "type", "data"}` (`name` is a relative key path for the key commands).
    public struct BatchCommandMessage: Codable, Sendable {
        /// The command.
        public var command: BatchCommand

        /// Wraps a command.
        public init(_ command: BatchCommand) { self.command = command }

        private enum CodingKeys: String, CodingKey { case command, name }

        /// Decodes and validates one command.
        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            let kind = try container.decode(String.self, forKey: .command)
            let name = try container.decode(String.self, forKey: .name)
            switch kind {
            case "setValue": command = .setValue(name: name, value: try RegistryValue(from: decoder))
            case "createKey": command = .createKey(try KeyPath(name))
            case "deleteKey": command = .deleteKey(try KeyPath(name))
            case "deleteValue": command = .deleteValue(name: name)
            default: throw ClusterError(.invalidFunction, "unknown batch command \(RegistryName.quoted(kind))")
            }
        }

        /// Encodes one command.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            switch command {
            case .setValue(let name, let value):
                try container.encode("setValue", forKey: .command)
                try container.encode(name, forKey: .name)
                try value.encode(to: encoder)
            case .createKey(let path):
                try container.encode("createKey", forKey: .command)
                try container.encode(path.description, forKey: .name)
            case .deleteKey(let path):
                try container.encode("deleteKey", forKey: .command)
                try container.encode(path.description, forKey: .name)
            case .deleteValue(let name):
                try container.encode("deleteValue", forKey: .command)
                try container.encode(name, forKey: .name)
            }
        }
    }

    /// `{"key", "commands": [...]}`: batch.
    public struct BatchRequest: Codable, Sendable {
        /// The batch's root key.
        public var key: String
        /// The commands.
        public var commands: [BatchCommandMessage]
        /// Creates a request.
        public init(key: String, commands: [BatchCommand]) {
            self.key = key
            self.commands = commands.map(BatchCommandMessage.init)
        }
    }

    /// `{"index"}`: the answer to every write.
    public struct WriteResponse: Codable, Sendable {
        /// The log index the write was committed at.
        public var index: UInt64
        /// For create-key: true when the key was new.
        public var created: Bool?
        /// Creates a response.
        public init(index: UInt64, created: Bool? = nil) {
            self.index = index
            self.created = created
        }

        /// The JSON bytes, written directly: this answers every write, so it skips the encoder.
        public var jsonBytes: [UInt8] {
            var text = "{\"index\":\(index)"
            if let created { text += ",\"created\":\(created)" }
            text += "}"
            return Array(text.utf8)
        }
    }

    /// `{"error": {"code", "name", "message", "failedCommand"}}`: the answer to a failed call.
    public struct ErrorResponse: Codable, Sendable {
        /// The error.
        public var error: Body
        /// The error's fields.
        public struct Body: Codable, Sendable {
            /// The Win32 code.
            public var code: UInt32
            /// Its name.
            public var name: String
            /// The message.
            public var message: String
            /// The failing batch command (-1: before the first).
            public var failedCommand: Int?
        }

        /// Wraps an error.
        public init(_ error: ClusterError) {
            self.error = Body(code: error.code.rawValue, name: error.code.name, message: error.message, failedCommand: error.failedCommand)
        }

        /// The error it carries.
        public var clusterError: ClusterError {
            ClusterError(Win32Error(rawValue: error.code), error.message, failedCommand: error.failedCommand)
        }
    }

    /// The answer to status (the fixed `status --json` shape plus node details).
    public struct StatusResponse: Codable, Sendable, Equatable {
        /// `{"name", "id"}` of the cluster.
        public var cluster: ClusterName
        /// The quorum owner's node name, nil when there is none.
        public var quorumOwner: String?
        /// The current term.
        public var term: UInt64
        /// The highest committed index.
        public var commitIndex: UInt64
        /// The members.
        public var members: [Member]
        /// The answering node's name.
        public var node: String
        /// The restore generation of the answering node.
        public var restoreGeneration: UInt64
        /// The newest cluster checkpoint's index (0: none).
        public var checkpointIndex: UInt64
        /// Bytes in the answering node's quorum log.
        public var quorumLogBytes: Int
        /// The product version.
        public var version: String
        /// True when the node applies writes in client sessions (the `ClusDB-Session` header);
        /// absent from release 1, which ignores the header. A client resends a write whose answer
        /// was lost only to a node that says so: elsewhere the resend could apply it twice.
        public var clientSessions: Bool?

        /// A cluster's name and id.
        public struct ClusterName: Codable, Sendable, Equatable {
            /// The name.
            public var name: String
            /// The id.
            public var id: String
            /// Creates one.
            public init(name: String, id: String) {
                self.name = name
                self.id = id
            }
        }

        /// One member.
        public struct Member: Codable, Sendable, Equatable {
            /// Its name.
            public var name: String
            /// Its client address.
            public var clientAddr: String
            /// Its peer address.
            public var peerAddr: String
            /// `leader`, `follower`, `candidate` or `learner`.
            public var role: String
            /// Its applied index.
            public var appliedIndex: UInt64
            /// Whether the answering node reaches it.
            public var reachable: Bool
            /// Creates one.
            public init(name: String, clientAddr: String, peerAddr: String, role: String, appliedIndex: UInt64, reachable: Bool) {
                self.name = name
                self.clientAddr = clientAddr
                self.peerAddr = peerAddr
                self.role = role
                self.appliedIndex = appliedIndex
                self.reachable = reachable
            }
        }

        /// Creates a status.
        public init(
            cluster: ClusterName, quorumOwner: String?, term: UInt64, commitIndex: UInt64, members: [Member], node: String,
            restoreGeneration: UInt64, checkpointIndex: UInt64, quorumLogBytes: Int, version: String, clientSessions: Bool? = nil
        ) {
            self.clientSessions = clientSessions
            self.cluster = cluster
            self.quorumOwner = quorumOwner
            self.term = term
            self.commitIndex = commitIndex
            self.members = members
            self.node = node
            self.restoreGeneration = restoreGeneration
            self.checkpointIndex = checkpointIndex
            self.quorumLogBytes = quorumLogBytes
            self.version = version
        }
    }
}

/// The product version reported by status and written into backups.
public enum ProductVersion {
    /// The version string.
    public static let current = "0.1.0"
}

extension ClientProtocol.StatusResponse {
    private enum Keys: String, CodingKey {
        case cluster, quorumOwner, term, commitIndex, members, node, restoreGeneration, checkpointIndex, quorumLogBytes, version
        case clientSessions
    }

    /// Encodes every member, writing `"quorumOwner": null` when there is no quorum owner (scripts
    /// rely on the member being present).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        try container.encode(cluster, forKey: .cluster)
        if let quorumOwner {
            try container.encode(quorumOwner, forKey: .quorumOwner)
        } else {
            try container.encodeNil(forKey: .quorumOwner)
        }
        try container.encode(term, forKey: .term)
        try container.encode(commitIndex, forKey: .commitIndex)
        try container.encode(members, forKey: .members)
        try container.encode(node, forKey: .node)
        try container.encode(restoreGeneration, forKey: .restoreGeneration)
        try container.encode(checkpointIndex, forKey: .checkpointIndex)
        try container.encode(quorumLogBytes, forKey: .quorumLogBytes)
        try container.encode(version, forKey: .version)
        try container.encodeIfPresent(clientSessions, forKey: .clientSessions)
    }
}
