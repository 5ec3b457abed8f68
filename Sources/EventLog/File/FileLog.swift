import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The embedded event log: a directory of LZ4 segment files, written by one process
/// through group commit, read by any number of readers. See docs/log-format.md.
public final class FileLog: EventStore, Sendable {
    public typealias Events = FileLogEvents

    public let directory: String
    public let options: Options
    /// What opening found: torn tail cut, repair done, indexes rebuilt.
    public let recovery: RecoveryReport
    let core: FileLogCore
    /// Bytes of the active segment that opening took from its checkpoint instead of scanning.
    let checkpointedBytes: Int
    private let writer: FileLogWriter?
    private let lockFile: SystemFile?

    /// Opens (creating if needed) the log in `directory`, recovering from a crash: a torn
    /// last batch is cut and reported; a damaged batch before the end makes opening fail
    /// with its segment, offset and position unless `options.repair` is set.
    public init(directory: String, options: Options = Options()) throws {
        guard options.segmentSize >= 64 << 10, options.segmentSize <= 4 << 30 else {
            throw EventLogError(.invalidInput, "segment size must be 64 KiB...4 GiB, got \(options.segmentSize) bytes")
        }
        guard options.streamCacheCapacity >= 0 else {
            throw EventLogError(.invalidInput, "stream cache capacity must be 0 or more, got \(options.streamCacheCapacity)")
        }
        guard options.checkpointBytes >= 0 else {
            throw EventLogError(.invalidInput, "checkpoint interval must be 0 or more bytes, got \(options.checkpointBytes)")
        }
        self.directory = directory
        self.options = options
        var lock: SystemFile?
        if !options.readOnly {
            try Directory.create(directory)
            lock = try Self.acquireWriterLock(directory: directory)
        }
        let opened = try FileLogOpener(directory: directory, options: options).open()
        self.lockFile = lock
        self.recovery = opened.report
        // A repair cut the log: the tree index may cover events that are gone (derived data,
        // rebuilt from the events by the next proof; `MerkleTreeIndex.reconcile` also checks).
        if opened.report.repair != nil { Directory.remove(directory + "/" + MerkleTreeIndex.fileName) }
        self.checkpointedBytes = opened.checkpointed
        let active = opened.active
        self.core = FileLogCore(directory: directory, state: opened.takeState())
        if options.readOnly {
            writer = nil
        } else {
            writer = try FileLogWriter(core: core, options: options, active: active!)
        }
    }

    deinit {
        writer?.requestShutdown()
    }

    /// Flushes and stops the writer, syncs the active segment and releases the lock.
    /// Pending appends complete first; appends after close fail with `.closed`.
    public func close() async throws {
        if let writer { try await writer.shutdown() }
        core.commits.close()
        if let lockFile {
            // Unlock before closing: a child process being spawned on another thread may share
            // the descriptor until it execs, and would hold the lock past our close.
            flock(lockFile.descriptor, LOCK_UN)
            lockFile.close()
        }
    }

    /// Sealed segments whose index was found damaged at a lookup (after open) and rebuilt.
    var indexesRebuiltAtLookup: [String] { core.state.withLock { $0.sealed.rebuiltAtLookup } }

    /// True while the writer sleeps with no sync owed (see `FileLogWriter`).
    var writerSleepsUntilWoken: Bool { writer?.isSleepingUntilWoken ?? false }

    public func append(_ appends: [StreamAppend], idempotencyKey: String?) async throws -> AppendResult {
        guard let writer else {
            throw EventLogError(.readOnly, "the log at \(directory) is open read-only; open it without readOnly to append")
        }
        let pending = try PendingAppend.validate(appends, idempotencyKey: idempotencyKey)
        return try await writer.submit(pending)
    }

    public func head() async throws -> LogHead {
        currentHead()
    }

    /// The head without suspending.
    public func currentHead() -> LogHead {
        core.state.withLock { LogHead(position: $0.head, chainHash: $0.headHash) }
    }

    public func read(from position: LogPosition, filter: EventFilter?) -> FileLogEvents {
        FileLogEvents(core: core, start: max(1, position), filter: filter, follow: false)
    }

    public func subscribe(from position: LogPosition) -> FileLogEvents {
        FileLogEvents(core: core, start: max(1, position), filter: nil, follow: true)
    }

    public func readStream(_ stream: String, fromVersion version: UInt64, limit: Int) async throws -> [RecordedEvent] {
        let positions = try core.state.withLock { s in try s.positions(of: stream, fromVersion: version, limit: limit) }
        let cursor = FileLogCursor(core: core)
        var events: [RecordedEvent] = []
        events.reserveCapacity(positions.count)
        for position in positions {
            guard let event = try cursor.event(at: position) else {
                throw EventLogError(.corrupted, "stream \(stream) lists position \(position), which the log does not hold")
            }
            events.append(event)
        }
        return events
    }

    public func streamVersion(_ stream: String) async throws -> UInt64? {
        let count = try core.state.withLock { s in try s.publishedCount(of: stream) }
        return count == 0 ? nil : count - 1
    }

    /// How the embedded log names its figures: commits are batches, syncs are fsyncs.
    static let statisticNames = StoreStatistics.Names(backend: "file", commit: "batch", commits: "batches", sync: "fsync")

    /// The writer's figures (zero when read-only) and the bytes of every segment.
    public func statistics() -> StoreStatistics {
        var statistics = writer?.statistics() ?? StoreStatistics(names: Self.statisticNames)
        statistics.bytesStored = core.state.withLock { $0.bytesOnDisk }
        return statistics
    }

    public func storedBytes() async throws -> Int {
        core.state.withLock { $0.bytesOnDisk }
    }

    /// Walks the directory's files as `LogVerifier.verify(directory:)` does, trusting no
    /// index and nothing this process holds in memory.
    public func verify(expected: LogHead?, progress: ((LogPosition) -> Void)?) async throws -> LogVerifier.Report {
        try LogVerifier.verify(directory: directory, expected: expected, progress: progress)
    }

    private static func acquireWriterLock(directory: String) throws -> SystemFile {
        let path = directory + "/" + SegmentNaming.lockFile
        let file = try SystemFile.open(path, writable: true, create: true)
        if flock(file.descriptor, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            let holder = (try? file.read(count: min(32, (try? file.size()) ?? 0), at: 0)).map { String(decoding: $0, as: UTF8.self) } ?? ""
            let who = holder.isEmpty ? "another process" : "process \(holder.trimmingSpaces())"
            throw EventLogError(
                .locked,
                "\(who) has the log at \(directory) open for writing; stop it, or open the log read-only",
                cause: SystemCallError(call: "flock", errno: code)
            )
        }
        let pid = Array(String(getpid()).utf8)
        try file.truncate(to: 0)
        try pid.withUnsafeBytes { (raw) throws in try file.write([raw], at: 0) }
        return file
    }
}

extension String {
    func trimmingSpaces() -> String {
        String(self.filter { !$0.isWhitespace })
    }
}
