import ClusDBModel
import ClusDBNode
import ClusDBStore
import ClusDBTestSupport
import Dispatch
import Foundation
import Synchronization
import Testing

/// An apply failure of a durable entry is fail-stop: its proposer is told the write is committed
/// (not "failed"), nothing is appended behind it, later writes are refused as not written, and a
/// restart applies the committed entry. Every answer tells the truth about durability.
@Suite("Cluster node: an apply failure is fail-stop, and every answer is true after a restart")
struct FailStopTests {
    @Test("Writes after an injected apply failure are not written; the failed entry is applied after a restart")
    func applyFailure() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var configuration = ClusterNodeTests.configuration(dir)
        let failAt = Mutex<UInt64?>(nil)
        configuration.applyFault = { first, last in
            guard let index = failAt.withLock({ $0 }), first <= index, index <= last else { return nil }
            return ClusterError(.diskFull, "injected: the disk is full")
        }
        let node = try ClusterNode(configuration: configuration, logger: ClusterNodeTests.logger)
        _ = try await node.propose(.createKey(try KeyPath("Before")))
        let target = node.status.commitIndex + 1
        failAt.withLock { $0 = target }
        // A write whose answer needs the apply: told it is committed, not that it failed.
        do {
            _ = try await node.propose(.createKey(try KeyPath("Committed")))
            Issue.record("the write whose apply failed was answered as done")
        } catch {
            #expect(error.code == .ioPending, "\(error)")
            #expect(error.message.contains("committed at index \(target)"))
        }
        // Everything after is refused and not appended, whatever its kind.
        for command in [HiveCommand.createKey(try KeyPath("After")), .setValue(key: try KeyPath("After"), name: "v", value: .dword(1), createKey: true)] {
            do {
                _ = try await node.propose(command)
                Issue.record("a write after the apply failure was accepted")
            } catch {
                #expect(error.code == .diskFull)
                #expect(error.message.hasPrefix("not written"), "\(error.message)")
            }
        }
        #expect(node.status.commitIndex == target, "nothing was appended behind the failed entry")
        node.stop()

        let restarted = try ClusterNode(configuration: ClusterNodeTests.configuration(dir), logger: ClusterNodeTests.logger)
        defer { restarted.stop() }
        let hive = try await ClusterNodeTests.applied(restarted)
        await #expect(throws: Never.self, "the committed write is applied after the restart") { try await hive.openKey(try KeyPath("Committed")) }
        await #expect(throws: ClusterError.self, "a write refused as not written appeared") { try await hive.openKey(try KeyPath("After")) }
    }

    @Test("Writes queued behind the log stage when the apply failure lands are not appended")
    func queuedBehindFailure() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var configuration = ClusterNodeTests.configuration(dir)
        let failAt = Mutex<UInt64?>(nil)
        let applying = DispatchSemaphore(value: 0)
        let fail = DispatchSemaphore(value: 0)
        configuration.applyFault = { first, last in
            guard let index = failAt.withLock({ $0 }), first <= index, index <= last else { return nil }
            // Hold the failing apply until the test has writes queued behind a held fsync.
            applying.signal()
            fail.wait()
            return ClusterError(.diskFull, "injected: the disk is full")
        }
        let node = try ClusterNode(configuration: configuration, logger: ClusterNodeTests.logger)
        _ = try await node.propose(.createKey(try KeyPath("Before")))
        let failing = node.status.commitIndex + 1
        failAt.withLock { $0 = failing }
        let committed = Task { () -> ClusterError? in
            do {
                _ = try await node.propose(.createKey(try KeyPath("Committed")))
                return nil
            } catch {
                return error as? ClusterError
            }
        }
        await withCheckedContinuation { continuation in Thread { applying.wait(); continuation.resume() }.start() }
        // The apply of `failing` is held; the next group's fsync is held too, and two writes
        // queue behind it.
        let gate = try SyncGate(root: dir.file("data"), site: .logAppend)
        FileLayer.install(gate)
        defer { FileLayer.remove(gate) }
        let inFsync = Task { try await ClusterNodeTests.set(node, "Durable", "v", .dword(1)) }
        try await waitUntil("the next group is in its fsync") { gate.waiting }
        let queued = (0..<2).map { number in
            Task { () -> ClusterError? in
                do {
                    _ = try await ClusterNodeTests.set(node, "Queued", "v\(number)", .dword(UInt32(number)))
                    return nil
                } catch {
                    return error as? ClusterError
                }
            }
        }
        try await waitUntil("two writes are queued") { node.status.pendingProposals == 2 }
        // The apply fails now, while the writes wait behind the held fsync.
        fail.signal()
        let answer = await committed.value
        #expect(answer?.code == .ioPending, "\(String(describing: answer))")
        gate.release()
        #expect(try await inFsync.value.index == failing + 1, "the group in its fsync was durable already: answered")
        for task in queued {
            let error = await task.value
            #expect(error?.code == .diskFull && error?.message.hasPrefix("not written") == true, "\(String(describing: error))")
        }
        #expect(node.status.commitIndex == failing + 1, "nothing was appended behind the failure")
        node.stop()

        let restarted = try ClusterNode(configuration: ClusterNodeTests.configuration(dir), logger: ClusterNodeTests.logger)
        defer { restarted.stop() }
        let hive = try await ClusterNodeTests.applied(restarted)
        await #expect(throws: Never.self) { try await hive.openKey(try KeyPath("Committed")) }
        #expect(try await hive.queryValue(key: try KeyPath("Durable"), name: "v") == .dword(1))
        await #expect(throws: ClusterError.self) { try await hive.openKey(try KeyPath("Queued")) }
    }

    /// Fails every write into a quorum-log segment while armed: the log's disk is full.
    final class FullLogDisk: FileLayerObserver, @unchecked Sendable {
        let root: String
        let armed = Mutex(false)
        /// Whether a refused write still puts its first half in the file (a disk filling part-way).
        let short: Bool
        init(root: String, short: Bool) {
            self.root = root
            self.short = short
        }
        func writeFailure(_ path: String, offset: Int, count: Int) -> WriteFailure? {
            path.hasSuffix(".seg") && armed.withLock { $0 } ? WriteFailure(code: ENOSPC, bytesWritten: short ? count / 2 : 0) : nil
        }
        func didCreateFile(_ path: String) {}
        func didWrite(_ path: String, offset: Int, bytes: UnsafeRawBufferPointer) {}
        func didTruncate(_ path: String, length: Int) {}
        func willSyncFile(_ path: String, site: SyncSite) -> Bool { true }
        func willSyncDirectory(_ path: String, site: SyncSite) -> Bool { true }
        func didRename(_ from: String, to: String) {}
        func didRemove(_ path: String) {}
        func didMakeDirectory(_ path: String) {}
    }

    @Test(
        "A write the log cannot take (none of it, or a short write) is answered with the disk's error; later writes are not written, reads go on, and a restart has neither",
        arguments: [false, true])
    func logWriteFailure(short: Bool) async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let node = try ClusterNode(configuration: ClusterNodeTests.configuration(dir), logger: ClusterNodeTests.logger)
        _ = try await ClusterNodeTests.set(node, "Before", "v", .dword(1))
        let disk = FullLogDisk(root: dir.file("data"), short: short)
        FileLayer.install(disk)
        disk.armed.withLock { $0 = true }
        do {
            _ = try await ClusterNodeTests.set(node, "Full", "v", .dword(2))
            Issue.record("a write the log refused was acknowledged")
        } catch {
            let failure = error as? ClusterError
            #expect(failure?.code == .diskFull && failure?.message.hasPrefix("not written") == true, "\(error)")
        }
        disk.armed.withLock { $0 = false }
        // The replica holds the refused entry as handed out: only a restart makes its view the
        // disk's again, so even with room again nothing more is written.
        do {
            _ = try await ClusterNodeTests.set(node, "After", "v", .dword(3))
            Issue.record("a write after the log failure was accepted")
        } catch {
            let failure = error as? ClusterError
            #expect(failure?.code == .diskFull && failure?.message.hasPrefix("not written") == true, "\(error)")
        }
        let seen = try await node.read { (hive) throws(ClusterError) in try await hive.queryValue(key: try KeyPath("Before"), name: "v") }
        #expect(seen == .dword(1), "reads of the applied hive go on")
        node.stop()
        FileLayer.remove(disk)

        let restarted = try ClusterNode(configuration: ClusterNodeTests.configuration(dir), logger: ClusterNodeTests.logger)
        defer { restarted.stop() }
        let hive = try await ClusterNodeTests.applied(restarted)
        #expect(try await hive.queryValue(key: try KeyPath("Before"), name: "v") == .dword(1))
        await #expect(throws: ClusterError.self, "the refused write is not there") { try await hive.openKey(try KeyPath("Full")) }
        await #expect(throws: ClusterError.self) { try await hive.openKey(try KeyPath("After")) }
        #expect(try await ClusterNodeTests.set(restarted, "Later", "v", .dword(4)).outcome == .done)
    }
}
