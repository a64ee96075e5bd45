/// The binary form of a ``HiveCommand`` inside a quorum-log record (see `docs/FORMATS.md`):
/// a format byte, a tag byte, then the fields, all little-endian, strings as u32 length + UTF-8.
extension HiveCommand {
    /// The version byte every encoded command starts with.
    public static let encodingVersion: UInt8 = 1

    private enum Tag: UInt8 {
        case createKey = 1
        case setValue = 2
        case deleteValue = 3
        case deleteKey = 4
        case batch = 5
        case sessioned = 6
    }

    /// Encodes the command.
    public func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: 128)
        writer.u8(Self.encodingVersion)
        switch self {
        case .createKey(let path):
            writer.u8(Tag.createKey.rawValue)
            Self.write(path, to: &writer)
        case .setValue(let key, let name, let value, let createKey):
            writer.u8(Tag.setValue.rawValue)
            Self.write(key, to: &writer)
            writer.string(name)
            Self.write(value, to: &writer)
            writer.u8(createKey ? 1 : 0)
        case .deleteValue(let key, let name):
            writer.u8(Tag.deleteValue.rawValue)
            Self.write(key, to: &writer)
            writer.string(name)
        case .deleteKey(let key, let recursive):
            writer.u8(Tag.deleteKey.rawValue)
            Self.write(key, to: &writer)
            writer.u8(recursive ? 1 : 0)
        case .sessioned(let session, let command):
            writer.u8(Tag.sessioned.rawValue)
            writer.u64(session.client)
            writer.u64(session.sequence)
            writer.lengthPrefixed(command.encoded())
        case .batch(let root, let commands):
            writer.u8(Tag.batch.rawValue)
            Self.write(root, to: &writer)
            writer.u32(UInt32(commands.count))
            for command in commands {
                writer.u8(UInt8(command.commandNumber))
                switch command {
                case .setValue(let name, let value):
                    writer.string(name)
                    Self.write(value, to: &writer)
                case .createKey(let path), .deleteKey(let path):
                    Self.write(path, to: &writer)
                case .deleteValue(let name):
                    writer.string(name)
                }
            }
        }
        return writer.bytes
    }

    /// Decodes and validates an encoded command.
    /// - Throws: `ERROR_INVALID_DATA` for bytes that are not a valid command.
    public init(encoded bytes: [UInt8]) throws(ClusterError) {
        var reader = ByteReader(bytes)
        let version = try reader.u8()
        guard version == Self.encodingVersion else {
            throw ClusterError(.invalidData, "command encoding version \(version) is not \(Self.encodingVersion)")
        }
        guard let tag = Tag(rawValue: try reader.u8()) else {
            throw ClusterError(.invalidData, "unknown command tag")
        }
        do throws(ClusterError) {
            switch tag {
            case .createKey:
                self = .createKey(try Self.readPath(&reader))
            case .setValue:
                let key = try Self.readPath(&reader)
                let name = try reader.string()
                let value = try Self.readValue(&reader)
                self = .setValue(key: key, name: name, value: value, createKey: try Self.readBool(&reader))
            case .deleteValue:
                self = .deleteValue(key: try Self.readPath(&reader), name: try reader.string())
            case .deleteKey:
                self = .deleteKey(try Self.readPath(&reader), recursive: try Self.readBool(&reader))
            case .sessioned:
                let session = ClientSession(client: try reader.u64(), sequence: try reader.u64())
                self = .sessioned(session, try HiveCommand(encoded: Array(try reader.lengthPrefixed())))
            case .batch:
                let root = try Self.readPath(&reader)
                let count = Int(try reader.u32())
                guard count <= Limits.batchCommandsMax else {
                    throw ClusterError(.invalidData, "batch of \(count) commands is over the limit")
                }
                var commands: [BatchCommand] = []
                commands.reserveCapacity(count)
                for _ in 0..<count {
                    switch try reader.u8() {
                    case 1:
                        let name = try reader.string()
                        commands.append(.setValue(name: name, value: try Self.readValue(&reader)))
                    case 2: commands.append(.createKey(try Self.readPath(&reader)))
                    case 3: commands.append(.deleteKey(try Self.readPath(&reader)))
                    case 4: commands.append(.deleteValue(name: try reader.string()))
                    default: throw ClusterError(.invalidData, "unknown batch command")
                    }
                }
                self = .batch(root: root, commands: commands)
            }
            try reader.expectEnd()
            try validate()
        } catch {
            throw ClusterError(.invalidData, "invalid command: \(error.message)")
        }
    }

    private static func write(_ path: KeyPath, to writer: inout ByteWriter) {
        writer.u32(UInt32(path.components.count))
        for component in path.components { writer.string(component) }
    }

    private static func write(_ value: RegistryValue, to writer: inout ByteWriter) {
        writer.u32(value.type.rawValue)
        writer.lengthPrefixed(value.storedBytes)
    }

    private static func readPath(_ reader: inout ByteReader) throws(ClusterError) -> KeyPath {
        let count = Int(try reader.u32())
        guard count <= Limits.keyDepthMax else {
            throw ClusterError(.invalidData, "key path of \(count) levels is over the limit")
        }
        var components: [String] = []
        components.reserveCapacity(count)
        for _ in 0..<count { components.append(try reader.string()) }
        return try KeyPath(components: components)
    }

    private static func readValue(_ reader: inout ByteReader) throws(ClusterError) -> RegistryValue {
        let type = try ValueType.checked(try reader.u32())
        return try RegistryValue(type: type, storedBytes: try reader.lengthPrefixed())
    }

    private static func readBool(_ reader: inout ByteReader) throws(ClusterError) -> Bool {
        switch try reader.u8() {
        case 0: return false
        case 1: return true
        default: throw ClusterError(.invalidData, "a flag byte is neither 0 nor 1")
        }
    }
}
