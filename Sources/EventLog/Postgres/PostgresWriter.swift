import Synchronization

/// The appending side of a `PostgresLog`: one thread and one connection per process that
/// turns everything queued into one transaction (group commit).
///
/// The transaction first locks the single `tally_head` row. That lock is the ordering
/// design: whoever holds it assigns the next positions, and PostgreSQL releases it only
/// after the commit is durable and visible, so transactions commit in position order across
/// every process. A reader's snapshot that shows a batch therefore shows every batch before
/// it — no reader can pass a position that a slower transaction fills later, and an aborted
/// transaction leaves no gap because its head update rolls back with it.
final class PostgresWriter: @unchecked Sendable {
    private struct Queue {
        var pending = PendingQueue()
        var finished = false
        var shutdownWaiters: [CheckedContinuation<Void, Never>] = []
    }

    /// Bounds of one transaction; each append is its own batch row inside it.
    static let maxGroupBytes = 32 << 20
    static let maxGroupEvents = 256 << 10

    private let url: String
    private let options: PostgresLog.Options
    private let notifier: PostgresNotifier
    private let queue = Mutex(Queue())
    private let worker = WorkerThread()
    private let counters = Locked(WriterCounters(names: PostgresLog.statisticNames, samples: 4_096))

    // Touched by the writer thread only.
    private var connection: PGConnection?
    private var retryAfter: UInt64 = 0
    private var backoffMilliseconds: UInt64 = 0
    private var compressor: LZ4FrameCompressor
    private var raw = ByteWriter(capacity: 1 << 20)
    /// Set while COMMIT is on the wire: a connection lost then leaves the outcome unknown.
    private var committing = false

    init(url: String, options: PostgresLog.Options, notifier: PostgresNotifier, connection: PGConnection) {
        self.url = url
        self.options = options
        self.notifier = notifier
        self.connection = connection
        self.compressor = LZ4FrameCompressor(level: options.compressionLevel)
        worker.start { [self] in step() }
    }

    func submit(_ pending: PendingAppend) async throws -> AppendResult {
        try await submitPending(
            pending, worker: worker, closed: EventLogError(.closed, "the PostgreSQL log is closed; open it again to append")
        ) { pending in queue.withLock { $0.pending.enqueue(pending) } }
    }

    /// Commits what is queued, then stops the thread and closes the connection.
    func shutdown() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = queue.withLock { q in
                if q.finished { return true }
                q.pending.closing = true
                q.shutdownWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() } else { worker.wake() }
        }
    }

    func requestShutdown() {
        queue.withLock { $0.pending.closing = true }
        worker.wake()
    }

    func statistics() -> StoreStatistics {
        counters.withLock { $0.snapshot }
    }

    // MARK: - The writer thread

    /// One turn: commit what is queued in one transaction, or finish when closing, or sleep.
    private func step() -> WorkerThread.Next {
        let (group, closing) = takeGroup()
        if !group.isEmpty {
            commit(group)
            return .proceed
        }
        guard closing else { return .sleep }
        connection = nil
        let waiters = queue.withLock { q in
            q.finished = true
            return q.shutdownWaiters
        }
        for waiter in waiters { waiter.resume() }
        return .stop
    }

    private func takeGroup() -> ([PendingAppend], Bool) {
        queue.withLock { q in (q.pending.take(maxBytes: Self.maxGroupBytes, maxEvents: Self.maxGroupEvents), q.pending.closing) }
    }

    /// The connection, reconnecting with exponential backoff (50 ms doubling to 2 s): while
    /// PostgreSQL is away, appends fail at once instead of each waiting for a timeout.
    private func connected() throws -> PGConnection {
        if let connection, !connection.isBroken { return connection }
        connection = nil
        let now = monotonicNanoseconds()
        guard now >= retryAfter else {
            throw EventLogError(
                .unavailable,
                "PostgreSQL at \(PostgresURL.redacted(url)) is unreachable; reconnecting in \((retryAfter - now) / 1_000_000) ms. Nothing was written"
            )
        }
        do {
            let fresh = try PGConnection(url: url)
            try PostgresLog.configure(fresh, options: options)
            connection = fresh
            backoffMilliseconds = 0
            counters.withLock { $0.statistics.reconnects += 1 }
            return fresh
        } catch {
            backoffMilliseconds = min(2_000, max(50, backoffMilliseconds * 2))
            retryAfter = monotonicNanoseconds() + backoffMilliseconds * 1_000_000
            throw error
        }
    }

    private typealias Outcome = (continuation: CheckedContinuation<AppendResult, any Error>, result: Result<AppendResult, any Error>)

    private func commit(_ group: [PendingAppend]) {
        let started = monotonicNanoseconds()
        committing = false
        var outcomes: [Outcome] = []
        do {
            let connection = try connected()
            var committedHead: LogHead?
            do {
                (outcomes, committedHead) = try transaction(group, on: connection)
            } catch {
                if !connection.isBroken { try? connection.execute("ROLLBACK") }
                if connection.isBroken { self.connection = nil }
                throw error
            }
            if let committedHead {
                let events = outcomes.reduce(0) { sum, o in
                    if case .success(let r) = o.result, !r.deduplicated { return sum + r.positions.count }
                    return sum
                }
                let elapsed = monotonicNanoseconds() - started
                counters.withLock { c in
                    c.statistics.commits += 1
                    c.statistics.events += events
                    c.recordSync(elapsed)
                }
                notifier.committed(committedHead)
            }
        } catch {
            let wrapped = EventLogError.wrapping(error)
            let failure: EventLogError
            if wrapped.code == .unavailable, committing {
                failure = EventLogError(
                    .unavailable,
                    "lost PostgreSQL while committing: the appends may or may not be stored. Retry with the same idempotency key",
                    cause: wrapped
                )
            } else {
                failure = wrapped
            }
            counters.withLock { $0.statistics.failedCommits += 1 }
            for pending in group { pending.continuation!.resume(throwing: failure) }
            return
        }
        for outcome in outcomes { outcome.continuation.resume(with: outcome.result) }
    }

    /// Decides and writes one group in one transaction; returns each append's outcome and the
    /// new head when something was written. Results are handed out only after COMMIT, so a
    /// conflict's loser always finds the winner readable.
    private func transaction(_ group: [PendingAppend], on connection: PGConnection) throws -> ([Outcome], LogHead?) {
        try connection.execute("BEGIN")
        let head = try connection.query("SELECT position, chain_hash FROM tally_head WHERE id = 1 FOR UPDATE")
        guard head.rowCount == 1 else { throw EventLogError(.corrupted, "tally_head has \(head.rowCount) rows, expected 1") }
        var position = UInt64(bitPattern: try head.int64(0, 0))
        var hash = try head.bytes(0, 1)
        guard hash.count == 32 else { throw EventLogError(.corrupted, "tally_head's chain hash has \(hash.count) bytes") }

        // The streams' versions and the keys already used, as committed before this lock.
        var streamNames = Set<String>()
        var keys = Set<String>()
        for pending in group {
            for append in pending.appends { streamNames.insert(append.stream) }
            if let key = pending.idempotencyKey { keys.insert(key) }
        }
        var counts: [String: UInt64] = [:]  // stream -> events in it
        let versions = try connection.query(
            "SELECT s, (SELECT last_version FROM tally_streams WHERE stream = s ORDER BY first_version DESC LIMIT 1) FROM unnest($1::text[]) AS s",
            [.textArray(Array(streamNames))]
        )
        for row in 0..<versions.rowCount where !versions.isNull(row, 1) {
            counts[try versions.text(row, 0)] = UInt64(bitPattern: try versions.int64(row, 1)) + 1
        }
        var seenKeys: [String: AppendResult] = [:]
        if !keys.isEmpty {
            let found = try connection.query(
                "SELECT \(PostgresBatchRow.columns) FROM tally_batches WHERE idempotency_key = ANY($1::text[])", [.textArray(Array(keys))]
            )
            let decompressor = LZ4FrameDecompressor()
            for row in 0..<found.rowCount {
                let batch = try PostgresBatchRow(found, row: row)
                let events = try batch.decode(decompressor)
                guard let key = events.first?.idempotencyKey else { continue }
                seenKeys[key] = PostgresLog.result(of: events)
            }
        }

        var outcomes: [Outcome] = []
        var batches = PGCopyEncoder()
        var runs = PGCopyEncoder()
        var written = 0
        let now = wallClockMicroseconds()
        // Every outcome is handed out after COMMIT (or ROLLBACK), so "answer now" and "answer
        // with the batch" are the same here; nothing is unpublished across transactions.
        var decider = CommitDecider(after: position)
        for pending in group {
            let continuation = pending.continuation!
            let action = decider.decide(
                pending, keyPrior: pending.idempotencyKey.flatMap { seenKeys[$0] }.map { CommitDecider.Prior($0) },
                streamPriors: pending.appends.map { CommitDecider.Prior(counts[$0.stream] ?? 0) }
            )
            switch action {
            case .write(let result):
                try encodeBatch(pending, firstPosition: result.positions.lowerBound, versions: result.streamVersions, previousHash: &hash, now: now,
                                batches: &batches, runs: &runs)
                position = result.positions.upperBound
                outcomes.append((continuation, .success(result)))
                written += 1
            case .answer(let outcome), .answerAfter(_, let outcome):
                outcomes.append((continuation, outcome.mapError { $0 as any Error }))
            }
        }
        guard written > 0 else {
            try connection.execute("ROLLBACK")
            return (outcomes, nil)
        }
        try connection.copyIn("COPY tally_batches (\(PostgresBatchRow.columns)) FROM STDIN (FORMAT binary)", data: batches.finish())
        try connection.copyIn(
            "COPY tally_streams (stream, first_version, last_version, batch_position, event_types, recorded_at_us) FROM STDIN (FORMAT binary)",
            data: runs.finish()
        )
        try connection.query(
            "WITH moved AS (UPDATE tally_head SET position = $1, chain_hash = $2 WHERE id = 1 RETURNING position) SELECT pg_notify('tally_log', position::text) FROM moved",
            [.int64(Int64(bitPattern: position)), .bytes(hash)]
        )
        committing = true
        try connection.execute("COMMIT")
        committing = false
        return (outcomes, LogHead(position: position, chainHash: hash))
    }

    /// One append as one batch row (the same header fields, LZ4 frame and chain hash as a
    /// `FileLog` batch) plus one `tally_streams` row per stream it touches.
    private func encodeBatch(
        _ pending: PendingAppend, firstPosition: LogPosition, versions: [String: UInt64], previousHash: inout [UInt8], now: Int64,
        batches: inout PGCopyEncoder, runs: inout PGCopyEncoder
    ) throws {
        raw.bytes.removeAll(keepingCapacity: true)
        var encoder = BatchEncoder()
        for append in pending.appends {
            let count = UInt64(append.events.count)
            let firstVersion = versions[append.stream]! + 1 - count
            encoder.encode(stream: append.stream, firstVersion: firstVersion, events: append.events, now: now,
                           idempotencyKey: pending.idempotencyKey, into: &raw)
            var types: [String] = []
            for event in append.events where !types.contains(event.type) && types.count < 8 { types.append(event.type) }
            runs.beginRow(fields: 6)
            runs.add(append.stream)
            runs.add(Int64(bitPattern: firstVersion))
            runs.add(Int64(bitPattern: firstVersion + count - 1))
            runs.add(Int64(bitPattern: firstPosition))
            runs.add(types.joined(separator: ","))
            runs.add(append.events[0].recordedAt ?? now)
        }
        let rawLength = raw.bytes.count
        let previous = previousHash
        let header: BatchHeader = try raw.bytes.withUnsafeBytes { input in
            let frame = try compressor.compress(input)
            var header = BatchHeader(
                firstPosition: firstPosition, eventCount: UInt32(pending.eventCount), rawLength: UInt32(rawLength),
                minRecordedAt: encoder.minRecordedAt, maxRecordedAt: encoder.maxRecordedAt,
                dataLength: UInt32(frame.count), dataChecksum: CRC32C.checksum(frame), previousHash: previous, chainHash: []
            )
            header.chainHash = header.computeChainHash(dataFrame: frame)
            PostgresBatchRow.encode(header, key: pending.idempotencyKey, frame: frame, into: &batches)
            return header
        }
        previousHash = header.chainHash
    }
}
