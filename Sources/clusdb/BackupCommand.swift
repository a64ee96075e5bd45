import ArgumentParser
import ClusAPI
import ClusDBBackup
import ClusDBModel
import ClusDBStore
import Foundation

/// `clusdb backup DIR [--on-quorum-owner]`, `backup verify DIR`, `backup inspect DIR`.
struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup", abstract: "Back up the cluster database, or check a backup.",
        subcommands: [BackupCreate.self, BackupVerify.self, BackupInspect.self], defaultSubcommand: BackupCreate.self)
}

/// `clusdb [--cluster NAME] backup DIR [--on-quorum-owner]`.
struct BackupCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Write a backup into DIR (streamed to this machine, or written by the quorum owner).",
        discussion: """
            DIR is a directory: created when missing, replaced when it holds an earlier backup, refused when it
            holds anything else. The completion marker .clusbackup.dat is written last, once everything was written and checked.
            """)
    @ParentCommand var root: Clusdb
    @Argument(help: "The backup directory.") var directory: String
    @Flag(name: .customLong("on-quorum-owner"), help: "The quorum owner writes DIR in its own file system.")
    var onQuorumOwner = false
    @Flag(name: .long, help: "Print the manifest as JSON.") var json = false

    func run() async throws {
        let progress = ProgressLine.start("backing up to \(directory)", json: json)
        defer { progress?.finish() }
        let cluster = try await openCluster(root.cluster)
        defer { cluster.close() }
        let manifest = try await cluster.backupClusterDatabase(to: directory, onQuorumOwner: onQuorumOwner) { bytes in
            progress?.update("backing up to \(directory): \(bytes / 1_048_576) MiB received")
        }
        progress?.finish()
        if json {
            try Output.json(manifest)
            return
        }
        Output.write(Data("""
            backed up cluster \(manifest.cluster.name) at index \(manifest.lastIndex) (checkpoint \(manifest.checkpointIndex)) \
            to \(directory): \(manifest.keys) keys, \(manifest.values) values, \(manifest.totalBytes) bytes

            """.utf8))
    }
}

/// `clusdb backup verify DIR [--json]`: exit 0 only for a complete, intact backup.
struct BackupVerify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check a backup completely: marker, manifest, sizes, SHA-256, checkpoint integrity, quorum log.")
    @Argument(help: "The backup directory.") var directory: String
    @Flag(name: .long, help: "Print {\"ok\", \"problem\"} as JSON.") var json = false

    /// The `--json` answer.
    struct Answer: Encodable {
        var ok: Bool
        var problem: String?
        var code: UInt32?

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(ok, forKey: .ok)
            try container.encode(problem, forKey: .problem)
            try container.encodeIfPresent(code, forKey: .code)
        }

        enum CodingKeys: String, CodingKey { case ok, problem, code }
    }

    func run() async throws {
        let directory = self.directory
        let progress = ProgressLine.start("verifying \(directory)", json: json)
        defer { progress?.finish() }
        do throws(ClusterError) {
            try BackupInspect.requireSomeBackup(directory)
            let backup = try await BlockingThread.run(named: "clusdb-verify") { () throws(ClusterError) in try BackupVerifier.verify(directory) }
            progress?.finish()
            if json {
                try Output.json(Answer(ok: true, problem: nil))
            } else {
                let manifest = backup.manifest
                Output.write(Data("ok: backup of cluster \(manifest.cluster.name) at index \(manifest.lastIndex), \(manifest.files.count) files verified\n".utf8))
            }
        } catch {
            progress?.finish()
            guard json else { throw error }
            try Output.json(Answer(ok: false, problem: error.message, code: error.code.rawValue))
            throw ExitCode(1)
        }
    }
}

/// `clusdb backup inspect DIR [--json]`: what a backup holds.
struct BackupInspect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "Show what a backup holds (from its manifest; 'verify' checks it).")
    @Argument(help: "The backup directory.") var directory: String
    @Flag(name: .long, help: "Print JSON.") var json = false

    /// Refuses a directory that holds no backup at all, in those words, before the detailed checks
    /// (which would name only the first missing file).
    /// A missing path or a file is left to the verifier and the inspection, which name it already.
    /// - Throws: `ERROR_DATABASE_BACKUP_CORRUPT` for a directory with neither manifest nor marker.
    static func requireSomeBackup(_ directory: String) throws(ClusterError) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else { return }
        let manifest = (directory as NSString).appendingPathComponent(BackupLayout.manifestName)
        let marker = (directory as NSString).appendingPathComponent(BackupLayout.markerName)
        if !FileManager.default.fileExists(atPath: manifest) && !FileManager.default.fileExists(atPath: marker) {
            throw ClusterError(
                .databaseBackupCorrupt,
                "no backup: \(directory) has no manifest (\(BackupLayout.manifestName)) and no completion marker (\(BackupLayout.markerName))")
        }
    }

    func run() async throws {
        try Self.requireSomeBackup(directory)
        let inspection = try BackupInspection(directory: directory)
        if json {
            try Output.json(inspection)
            return
        }
        let manifest = inspection.manifest
        let completeText = inspection.complete
            ? "yes (marker present; 'backup verify' checks the content)"
            : "no: the completion marker \(BackupLayout.markerName) is missing (the backup was interrupted or is still being written); restore refuses it"
        var text = """
            cluster:           \(manifest.cluster.name) (\(manifest.cluster.id))
            complete:          \(completeText)
            checkpoint index:  \(manifest.checkpointIndex)
            last index:        \(manifest.lastIndex)
            term:              \(manifest.term)
            keys:              \(manifest.keys)
            values:            \(manifest.values)
            created at:        \(manifest.createdAt)
            by node:           \(manifest.node)
            restore gen.:      \(manifest.restoreGeneration)
            product version:   \(manifest.productVersion)
            format version:    \(manifest.formatVersion)
            total size:        \(manifest.totalBytes) bytes
            files:

            """
        for file in manifest.files { text += "  \(file.path)\t\(file.size)\t\(file.sha256)\n" }
        Output.write(Data(text.utf8))
    }
}
