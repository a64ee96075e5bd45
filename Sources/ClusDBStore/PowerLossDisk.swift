#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ClusDBModel
import Synchronization

/// A model of what a disk keeps through a power loss, kept beside a real directory tree: the
/// store works on real files, and this ``FileLayerObserver`` records, per file, the content its
/// last sync made durable and the writes since, and per directory the entries its last sync made
/// durable. ``image(tear:)`` is the tree a power loss at this instant would leave behind.
///
/// The rules are those of POSIX, and of ext4 and XFS at their weakest:
/// - a file's data is durable once the file is synced (`fdatasync` or `fsync`); writes since are
///   lost, or with a ``Tear`` partly kept (any prefix, or any subset of 4 KiB pages);
/// - a name (creation, rename, removal) is durable once its directory is synced; until then the
///   directory holds its previous entries, each with the durable content of its file;
/// - a file written by another writer (SQLite writing a checkpoint image) is seen at its sync,
///   which snapshots its content.
///
/// Files for which `isTrusted` is true (the live SQLite hive, which syncs itself; the lock file)
/// are left out of images: a node started on an image rebuilds its hive from checkpoint and log,
/// which is exactly the path whose syncs the model checks.
///
/// Syncs named in ``skippedSites`` are not performed (and make nothing durable): a test switches
/// one off to show that it matters.
///
/// Built for tests and the replication simulator; production never installs one.
public final class PowerLossDisk: FileLayerObserver, @unchecked Sendable {
    /// How unsynced writes survive a power loss.
    public enum Tear: Sendable, Equatable {
        /// Every write since the last sync is lost.
        case dropUnsynced
        /// The writes since the last sync are kept in order up to a point chosen by `seed`,
        /// which may fall inside a write.
        case prefix(seed: UInt64)
        /// Each 4 KiB page touched since the last sync is kept or lost independently, by `seed`
        /// (a disk that reorders its writes).
        case pages(seed: UInt64)
    }

    /// A directory tree as a power loss left it.
    public struct Image: Sendable {
        /// Files by path relative to the root, with their bytes.
        public var files: [String: [UInt8]]
        /// Directories by path relative to the root (the root is "").
        public var directories: Set<String>
    }

    private enum Entry: Equatable {
        case file(Int)
        case directory(Int)
    }

    private enum Pending {
        case write(offset: Int, bytes: [UInt8])
        case truncate(Int)
    }

    private struct FileState {
        /// Content after the last sync; nil when never synced (a power loss leaves it empty).
        var durable: [UInt8]?
        var pending: [Pending] = []
    }

    private struct State {
        var nextID = 1
        var files: [Int: FileState] = [:]
        /// Live path -> entry, for every file and directory under the root that the model knows.
        var live: [String: Entry] = [:]
        /// Directory id -> the entries its last sync made durable.
        var durableEntries: [Int: [String: Entry]] = [:]
        var skipped: Set<SyncSite> = []
        var syncsSkipped: [SyncSite: Int] = [:]
        var syncCount = 0
        var performsSyncs = true
        var isFull = false
        var shortWritesWhenFull = false
        var writesRefused = 0
    }

    /// The tree modelled.
    public let root: String
    private let isTrusted: @Sendable (String) -> Bool
    private let state = Mutex(State())
    /// Called at the start of every sync, before the model changes: a crash "just before" it.
    private let beforeSync: (@Sendable (SyncSite) -> Void)?

    /// Models the tree at `root` (which must exist); everything in it now counts as durable.
    /// - Parameters:
    ///   - isTrusted: names (last path component) left out of the model and of images.
    ///   - beforeSync: called before each sync (tests take images there).
    public init(
        root: String, isTrusted: @escaping @Sendable (String) -> Bool = { _ in false },
        beforeSync: (@Sendable (SyncSite) -> Void)? = nil
    ) throws(ClusterError) {
        var trimmed = root
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        precondition(trimmed.hasPrefix("/"), "the modelled root is an absolute path")
        self.root = trimmed
        self.isTrusted = isTrusted
        self.beforeSync = beforeSync
        var initial = State()
        let rootID = initial.nextID
        initial.nextID += 1
        initial.live[trimmed] = .directory(rootID)
        try Self.adopt(directory: trimmed, id: rootID, into: &initial, isTrusted: isTrusted)
        state.withLock { $0 = initial }
    }

    /// Records an existing tree as durable.
    private static func adopt(
        directory: String, id: Int, into state: inout State, isTrusted: (String) -> Bool
    ) throws(ClusterError) {
        var entries: [String: Entry] = [:]
        for name in try FileSystem.list(directory) where !isTrusted(name) {
            let path = FileSystem.join(directory, name)
            let childID = state.nextID
            state.nextID += 1
            if FileSystem.isDirectory(path) {
                entries[name] = .directory(childID)
                state.live[path] = .directory(childID)
                try adopt(directory: path, id: childID, into: &state, isTrusted: isTrusted)
            } else {
                entries[name] = .file(childID)
                state.live[path] = .file(childID)
                state.files[childID] = FileState(durable: try SystemFile(path: path, flags: O_RDONLY).readAll())
            }
        }
        state.durableEntries[id] = entries
    }

    // MARK: Switches

    /// Syncs at these sites are skipped (and make nothing durable).
    public var skippedSites: Set<SyncSite> {
        get { state.withLock { $0.skipped } }
        set { state.withLock { $0.skipped = newValue } }
    }

    /// How many syncs each skipped site has swallowed so far (a site that never ran was not
    /// exercised by the workload).
    public var skippedCounts: [SyncSite: Int] { state.withLock { $0.syncsSkipped } }

    /// Whether syncs also reach the real disk (true) or are only modelled (false: the simulator,
    /// on tmpfs, where a real fsync buys nothing and a power loss is an image anyway).
    public var performsSyncs: Bool {
        get { state.withLock { $0.performsSyncs } }
        set { state.withLock { $0.performsSyncs = newValue } }
    }

    /// Syncs performed or skipped so far.
    public var syncCount: Int { state.withLock { $0.syncCount } }

    /// Whether the disk is full: every write under the root fails with `ENOSPC` (the
    /// simulator's full disk).
    public var isFull: Bool {
        get { state.withLock { $0.isFull } }
        set { state.withLock { $0.isFull = newValue } }
    }

    /// Whether a full disk still takes the first half of each write (rounded down to 512 bytes)
    /// before it fails, as a disk that fills part-way does; else it takes none.
    public var shortWritesWhenFull: Bool {
        get { state.withLock { $0.shortWritesWhenFull } }
        set { state.withLock { $0.shortWritesWhenFull = newValue } }
    }

    /// Writes refused because the disk was full.
    public var writesRefused: Int { state.withLock { $0.writesRefused } }

    public func writeFailure(_ path: String, offset: Int, count: Int) -> WriteFailure? {
        state.withLock { state in
            guard state.isFull else { return nil }
            state.writesRefused += 1
            return WriteFailure(code: ENOSPC, bytesWritten: state.shortWritesWhenFull ? (count / 2) & ~511 : 0)
        }
    }

    // MARK: FileLayerObserver

    private func name(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    /// The file id of `path`, registering a file the model has not seen (written by SQLite).
    private func fileID(_ path: String, _ state: inout State) -> Int {
        if case .file(let id) = state.live[path] { return id }
        let id = state.nextID
        state.nextID += 1
        state.live[path] = .file(id)
        state.files[id] = FileState(durable: nil)
        return id
    }

    public func didCreateFile(_ path: String) {
        if isTrusted(name(path)) { return }
        state.withLock { state in
            let id = state.nextID
            state.nextID += 1
            state.live[path] = .file(id)
            state.files[id] = FileState(durable: nil)
        }
    }

    public func didWrite(_ path: String, offset: Int, bytes: UnsafeRawBufferPointer) {
        if isTrusted(name(path)) { return }
        let copy = Array(bytes)
        state.withLock { state in
            let id = fileID(path, &state)
            state.files[id, default: FileState()].pending.append(.write(offset: offset, bytes: copy))
        }
    }

    public func didTruncate(_ path: String, length: Int) {
        if isTrusted(name(path)) { return }
        state.withLock { state in
            let id = fileID(path, &state)
            state.files[id, default: FileState()].pending.append(.truncate(length))
        }
    }

    public func willSyncFile(_ path: String, site: SyncSite) -> Bool {
        beforeSync?(site)
        if isTrusted(name(path)) { return true }
        let content = (try? SystemFile(path: path, flags: O_RDONLY).readAll()) ?? []
        return state.withLock { state in
            state.syncCount += 1
            if state.skipped.contains(site) {
                state.syncsSkipped[site, default: 0] += 1
                return false
            }
            let id = fileID(path, &state)
            state.files[id] = FileState(durable: content)
            return state.performsSyncs
        }
    }

    public func willSyncDirectory(_ path: String, site: SyncSite) -> Bool {
        beforeSync?(site)
        let names = ((try? FileSystem.list(path)) ?? []).filter { !isTrusted($0) }
        return state.withLock { state in
            state.syncCount += 1
            if state.skipped.contains(site) {
                state.syncsSkipped[site, default: 0] += 1
                return false
            }
            guard case .directory(let id) = state.live[path] else { return true }
            var entries: [String: Entry] = [:]
            for name in names {
                let child = FileSystem.join(path, name)
                if let known = state.live[child] {
                    entries[name] = known
                } else if FileSystem.isDirectory(child) {
                    let childID = state.nextID
                    state.nextID += 1
                    state.live[child] = .directory(childID)
                    state.durableEntries[childID] = [:]
                    entries[name] = .directory(childID)
                } else {
                    entries[name] = .file(fileID(child, &state))
                }
            }
            state.durableEntries[id] = entries
            return state.performsSyncs
        }
    }

    public func didRename(_ from: String, to: String) {
        state.withLock { state in
            guard let moved = state.live.removeValue(forKey: from) else { return }
            state.live[to] = moved
            if case .directory = moved {
                let prefix = from + "/"
                for (path, entry) in state.live where path.hasPrefix(prefix) {
                    state.live.removeValue(forKey: path)
                    state.live[to + "/" + path.dropFirst(prefix.count)] = entry
                }
            }
        }
    }

    public func didRemove(_ path: String) {
        state.withLock { state in _ = state.live.removeValue(forKey: path) }
    }

    public func didMakeDirectory(_ path: String) {
        state.withLock { state in
            let id = state.nextID
            state.nextID += 1
            state.live[path] = .directory(id)
            state.durableEntries[id] = [:]
        }
    }

    // MARK: Power loss

    /// The tree a power loss now would leave (trusted files left out).
    public func image(tear: Tear = .dropUnsynced) -> Image {
        state.withLock { state in
            var image = Image(files: [:], directories: [""])
            guard case .directory(let rootID) = state.live[root] else { preconditionFailure("the root is a directory") }
            var generator = RandomSource(seed: Self.seed(of: tear))
            func walk(_ id: Int, _ relative: String) {
                // In name order: each file with pending writes draws from the generator, and a
                // dictionary's order differs between processes (a seed must replay alike).
                for (name, entry) in (state.durableEntries[id] ?? [:]).sorted(by: { $0.key < $1.key }) {
                    let path = relative.isEmpty ? name : relative + "/" + name
                    switch entry {
                    case .directory(let child):
                        image.directories.insert(path)
                        walk(child, path)
                    case .file(let fileID):
                        let file = state.files[fileID] ?? FileState(durable: nil)
                        image.files[path] = Self.survivor(of: file, tear: tear, generator: &generator)
                    }
                }
            }
            walk(rootID, "")
            return image
        }
    }

    private static func seed(of tear: Tear) -> UInt64 {
        switch tear {
        case .dropUnsynced: return 0
        case .prefix(let seed), .pages(let seed): return seed
        }
    }

    /// The bytes of a file after a power loss.
    private static func survivor(of file: FileState, tear: Tear, generator: inout RandomSource) -> [UInt8] {
        var bytes = file.durable ?? []
        guard !file.pending.isEmpty else { return bytes }
        switch tear {
        case .dropUnsynced:
            return bytes
        case .prefix:
            let total = file.pending.reduce(0) { total, step in
                if case .write(_, let written) = step { return total + written.count }
                return total
            }
            var budget = Int.random(in: 0...total, using: &generator)
            for step in file.pending {
                switch step {
                case .truncate(let length):
                    Self.resize(&bytes, to: length)
                case .write(let offset, let written):
                    let kept = min(budget, written.count)
                    Self.write(written.prefix(kept), at: offset, into: &bytes)
                    budget -= kept
                }
                if budget == 0 { break }
            }
            return bytes
        case .pages:
            // The page cache writes a page back whole, at its latest content: so each page
            // touched since the last sync reaches the disk (with every write to it) or not at all.
            var decided: [Int: Bool] = [:]
            func kept(_ page: Int) -> Bool {
                if let known = decided[page] { return known }
                let keep = Bool.random(using: &generator)
                decided[page] = keep
                return keep
            }
            for step in file.pending {
                switch step {
                case .truncate(let length):
                    // A size change is metadata: kept with the page it ends in.
                    if kept(length / 4096) { Self.resize(&bytes, to: length) }
                case .write(let offset, let written):
                    var position = 0
                    while position < written.count {
                        let page = (offset + position) / 4096
                        let pageEnd = min(written.count, (page + 1) * 4096 - offset)
                        if kept(page) { Self.write(written[position..<pageEnd], at: offset + position, into: &bytes) }
                        position = pageEnd
                    }
                }
            }
            return bytes
        }
    }

    private static func resize(_ bytes: inout [UInt8], to length: Int) {
        if bytes.count > length { bytes.removeLast(bytes.count - length) }
        else { bytes.append(contentsOf: repeatElement(0, count: length - bytes.count)) }
    }

    private static func write(_ slice: ArraySlice<UInt8>, at offset: Int, into bytes: inout [UInt8]) {
        if slice.isEmpty { return }
        if bytes.count < offset + slice.count { resize(&bytes, to: offset + slice.count) }
        bytes.replaceSubrange(offset..<(offset + slice.count), with: slice)
    }

    /// Writes `image` into the empty or missing directory `path` (files 0600, directories 0700).
    public static func materialize(_ image: Image, at path: String) throws(ClusterError) {
        try FileSystem.makeDirectories(path)
        for directory in image.directories.sorted() where !directory.isEmpty {
            try FileSystem.createDirectory(FileSystem.join(path, directory))
        }
        for (relative, bytes) in image.files {
            let file = try SystemFile(path: FileSystem.join(path, relative), flags: O_WRONLY | O_CREAT | O_TRUNC)
            try file.write(bytes, at: 0)
        }
    }
}

