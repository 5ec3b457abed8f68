import Commands
import EventLog
import Events
import Foundation
import Synchronization
import TallyTestSupport
import Testing

// Helpers of CommandTests: a real FileLog in a temporary directory, a CommandService over
// it, and readers of what the log holds.

/// A `FileLog` (fsync never unless told) in a fresh directory under the system's
/// temporary directory.
struct CommandTestLog {
    let directory: URL
    let log: FileLog

    init(fsync: FsyncPolicy = .never) throws {
        directory = URL(fileURLWithPath: try makeTemporaryDirectory("commands"))
        log = try FileLog(directory: directory.path, options: FileLog.Options(fsync: fsync))
    }

    func service(unlockCost: Int64 = 1, maxAttempts: Int = 8, walletCacheCapacity: Int = 10_000) -> CommandService<FileLog> {
        CommandService(store: log, unlockCost: unlockCost, maxAttempts: maxAttempts, walletCacheCapacity: walletCacheCapacity)
    }

    func head() async throws -> LogPosition { try await log.head().position }

    /// The user's stream as domain events.
    func userEvents(_ user: String) async throws -> [DomainEvent] {
        try await log.readStream("user-\(user)").compactMap(\.domainEvent)
    }

    func unlockEvents(_ user: String) async throws -> [ProfileUnlocked] {
        try await userEvents(user).compactMap { event in
            if case .profileUnlocked(let unlock) = event { return unlock }
            return nil
        }
    }

    /// Every event of the log, in position order.
    func allEvents() async throws -> [RecordedEvent] {
        var events: [RecordedEvent] = []
        for try await event in log.read(from: 1) { events.append(event) }
        return events
    }

    func remove() async {
        try? await log.close()
        try? FileManager.default.removeItem(at: directory)
    }
}

/// Runs `body` with a fresh log, closing and deleting it afterwards whatever happens.
func withCommandLog<T>(fsync: FsyncPolicy = .never, _ body: (CommandTestLog) async throws -> T) async throws -> T {
    let log = try CommandTestLog(fsync: fsync)
    do {
        let result = try await body(log)
        await log.remove()
        return result
    } catch {
        await log.remove()
        throw error
    }
}

let testUserContext = CommandContext(actor: "user:alice", correlationID: "req-1", causationID: "")
let testServiceContext = CommandContext(actor: "service:worker", correlationID: "job-1")

/// The `CommandError` `body` throws, or a recorded issue when it throws nothing or
/// another kind of error.
func commandError<T>(_ body: () async throws -> T, sourceLocation: SourceLocation = #_sourceLocation) async -> CommandError? {
    do {
        let value = try await body()
        Issue.record("expected a CommandError, got \(value)", sourceLocation: sourceLocation)
        return nil
    } catch let error as CommandError {
        return error
    } catch {
        Issue.record("expected a CommandError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

func analysisCompleted(_ username: String, post: Int) -> AnalysisResult {
    .completed(PostAnalysisCompleted(username: username, postID: "p\(post)", sentiment: 0.5, language: "en", category: "fitness", durationMs: 120))
}

/// A store in front of the real log that can refuse the first `conflicts` appends with a
/// version conflict (as if another writer kept moving the stream), and can hold the first
/// `gate` appends until all of them have arrived, so that they are decided on the same
/// state and reach the log together: the worst case for concurrent commands.
final class ScriptedStore: EventStore {
    typealias Events = FileLogEvents

    private struct Gate {
        var remaining: Int
        var waiting: [CheckedContinuation<Void, Never>] = []
    }

    let base: FileLog
    private let conflicts: Mutex<Int>
    private let calls = Mutex(0)
    private let gate: Mutex<Gate>
    private let streamReads = Mutex<(from: [UInt64], failing: Int)>(([], 0))

    init(base: FileLog, conflicts: Int = 0, gate: Int = 0) {
        self.base = base
        self.conflicts = Mutex(conflicts)
        self.gate = Mutex(Gate(remaining: gate))
    }

    var appendCalls: Int { calls.withLock { $0 } }

    /// The `fromVersion` of every stream read so far, oldest first.
    var streamReadVersions: [UInt64] { streamReads.withLock { $0.from } }

    /// The next `count` stream reads fail with an I/O error.
    func failStreamReads(_ count: Int) { streamReads.withLock { $0.failing = count } }

    func append(_ appends: [StreamAppend], idempotencyKey: String?) async throws -> AppendResult {
        calls.withLock { $0 += 1 }
        await passGate()
        let refuse = conflicts.withLock { left in
            guard left > 0 else { return false }
            left -= 1
            return true
        }
        if refuse { throw EventLogError(.wrongExpectedVersion, "scripted conflict on \(appends[0].stream)") }
        return try await base.append(appends, idempotencyKey: idempotencyKey)
    }

    private func passGate() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let release: [CheckedContinuation<Void, Never>] = gate.withLock { g in
                guard g.remaining > 0 else { return [continuation] }
                g.remaining -= 1
                g.waiting.append(continuation)
                guard g.remaining == 0 else { return [] }
                defer { g.waiting = [] }
                return g.waiting
            }
            for waiter in release { waiter.resume() }
        }
    }

    func head() async throws -> LogHead { try await base.head() }
    func read(from position: LogPosition, filter: EventFilter?) -> FileLogEvents { base.read(from: position, filter: filter) }
    func subscribe(from position: LogPosition) -> FileLogEvents { base.subscribe(from: position) }
    func readStream(_ stream: String, fromVersion version: UInt64, limit: Int) async throws -> [RecordedEvent] {
        let fail = streamReads.withLock { r in
            r.from.append(version)
            guard r.failing > 0 else { return false }
            r.failing -= 1
            return true
        }
        if fail { throw EventLogError(.io, "scripted read failure of \(stream)") }
        return try await base.readStream(stream, fromVersion: version, limit: limit)
    }
    func streamVersion(_ stream: String) async throws -> UInt64? { try await base.streamVersion(stream) }
}
