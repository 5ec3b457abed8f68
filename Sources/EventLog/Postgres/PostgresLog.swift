/// The shared event log: several Tally processes append to and tail one PostgreSQL database
/// with the same contract as `FileLog` (gap-free commit-ordered positions, per-stream
/// optimistic concurrency, idempotency keys, durable acknowledgement, the same batch codec
/// and chain hash). Schema and ordering design: docs/log-format.md, "The PostgreSQL log".
public final class PostgresLog: EventStore, Sendable {
    public typealias Events = PostgresLogEvents

    public struct Options: Sendable {
        /// `always` commits with `synchronous_commit = on` (acknowledged = durable in the WAL);
        /// `never` and `interval` with `off` (PostgreSQL flushes the WAL within its
        /// `wal_writer_delay`; a crash may lose the last acknowledged appends, never corrupt).
        public var fsync: FsyncPolicy
        /// No writer connection, no migrations; appends fail.
        public var readOnly: Bool
        /// Reader connections shared by reads, tails and stream reads.
        public var readers: Int
        public var compressionLevel: Int32

        public init(fsync: FsyncPolicy = .always, readOnly: Bool = false, readers: Int = 4, compressionLevel: Int32 = 0) {
            self.fsync = fsync
            self.readOnly = readOnly
            self.readers = readers
            self.compressionLevel = compressionLevel
        }
    }

    /// How the PostgreSQL log names its figures: commits are transactions, and a sync is the
    /// COMMIT round trip.
    static let statisticNames = StoreStatistics.Names(backend: "postgres", commit: "transaction", commits: "transactions", sync: "commit")

    /// The URL without its password.
    public let location: String
    public let options: Options
    private let writer: PostgresWriter?
    let pool: PGConnectionPool
    private let notifier: PostgresNotifier

    /// Connects, applies pending migrations (unless read-only) and starts the writer,
    /// reader and listener connections. Fails with `.unavailable` when PostgreSQL cannot be
    /// reached.
    public init(url: String, options: Options = Options()) throws {
        guard PostgresURL.matches(url) else {
            throw EventLogError(.invalidInput, "a PostgreSQL log is named by a postgres:// URL, got \(PostgresURL.redacted(url))")
        }
        guard options.readers >= 1, options.readers <= 64 else {
            throw EventLogError(.invalidInput, "readers must be 1...64, got \(options.readers)")
        }
        location = PostgresURL.redacted(url)
        self.options = options
        let first = try PGConnection(url: url)
        if options.readOnly {
            let found = try first.query("SELECT count(*) FROM pg_tables WHERE tablename IN ('tally_head', 'tally_batches', 'tally_streams')")
            guard try found.int64(0, 0) == 3 else {
                throw EventLogError(.invalidInput, "\(location) holds no Tally log (no tally_* tables); a server started on it creates them")
            }
        } else {
            try PostgresSchema.migrate(first)
            try Self.configure(first, options: options)
        }
        notifier = PostgresNotifier(url: url)
        pool = PGConnectionPool(url: url, size: options.readers)
        writer = options.readOnly ? nil : PostgresWriter(url: url, options: options, notifier: notifier, connection: first)
    }

    deinit {
        writer?.requestShutdown()
        notifier.close()
        pool.close()
    }

    static func configure(_ connection: PGConnection, options: Options) throws {
        let synchronous = options.fsync == .always ? "on" : "off"
        try connection.query("SELECT set_config('synchronous_commit', $1, false)", [.text(synchronous)])
        try connection.query("SELECT set_config('application_name', $1, false)", [.text("tally-writer")])
    }

    /// Commits what is queued, then closes every connection. Appends after close fail.
    public func close() async {
        if let writer { await writer.shutdown() }
        notifier.close()
        pool.close()
    }

    public func append(_ appends: [StreamAppend], idempotencyKey: String?) async throws -> AppendResult {
        guard let writer else {
            throw EventLogError(.readOnly, "the PostgreSQL log at \(location) is open read-only; open it without readOnly to append")
        }
        let pending = try PendingAppend.validate(appends, idempotencyKey: idempotencyKey)
        return try await writer.submit(pending)
    }

    public func head() async throws -> LogHead {
        let head = try await pool.run { connection in
            let result = try connection.query("SELECT position, chain_hash FROM tally_head WHERE id = 1")
            guard result.rowCount == 1 else { throw EventLogError(.corrupted, "tally_head has \(result.rowCount) rows, expected 1") }
            return LogHead(position: UInt64(bitPattern: try result.int64(0, 0)), chainHash: try result.bytes(0, 1))
        }
        notifier.committed(head)
        return head
    }

    public func read(from position: LogPosition, filter: EventFilter?) -> PostgresLogEvents {
        PostgresLogEvents(pool: pool, notifier: notifier, start: max(1, position), filter: filter, follow: false)
    }

    public func subscribe(from position: LogPosition) -> PostgresLogEvents {
        PostgresLogEvents(pool: pool, notifier: notifier, start: max(1, position), filter: nil, follow: true)
    }

    public func readStream(_ stream: String, fromVersion version: UInt64, limit: Int) async throws -> [RecordedEvent] {
        guard limit > 0 else { return [] }
        var events: [RecordedEvent] = []
        var from = version
        let decompressor = LZ4FrameDecompressor()
        while events.count < limit {
            let runs = min(limit - events.count, 256)
            let start = from
            let rows = try await pool.run { connection in
                let result = try connection.query(
                    """
                    SELECT \(PostgresBatchRow.columns) FROM tally_batches WHERE position IN (
                        SELECT batch_position FROM tally_streams WHERE stream = $1 AND last_version >= $2
                        ORDER BY first_version LIMIT $3)
                    ORDER BY position
                    """,
                    [.text(stream), .int64(Int64(bitPattern: start)), .int64(Int64(runs))]
                )
                return try (0..<result.rowCount).map { try PostgresBatchRow(result, row: $0) }
            }
            if rows.isEmpty { break }
            for row in rows {
                for event in try row.decode(decompressor) where event.streamVersion >= from && event.isInStream(stream) {
                    guard event.streamVersion == from else {
                        throw EventLogError(.corrupted, "stream \(stream) jumps from version \(from) to \(event.streamVersion) at position \(event.position)")
                    }
                    events.append(event)
                    from += 1
                    if events.count == limit { return events }
                }
            }
        }
        return events
    }

    public func streamVersion(_ stream: String) async throws -> UInt64? {
        try await pool.run { connection in
            let result = try connection.query(
                "SELECT last_version FROM tally_streams WHERE stream = $1 ORDER BY first_version DESC LIMIT 1", [.text(stream)]
            )
            return result.rowCount == 0 ? nil : UInt64(bitPattern: try result.int64(0, 0))
        }
    }

    /// This process's writer: group commits, their latency, failures, reconnects. The bytes
    /// stored need a query: `storedBytes()`.
    public func statistics() -> StoreStatistics {
        writer?.statistics() ?? StoreStatistics(names: Self.statisticNames)
    }

    /// Checks every batch row in order (positions, data checksum, LZ4 checksum, envelopes,
    /// chain hash) and that `tally_head` names the last one, reporting the first break. With
    /// `expected`, also checks that the log still holds that exact prefix.
    public func verify(expected: LogHead?, progress: ((LogPosition) -> Void)?) async throws -> LogVerifier.Report {
        var report = LogVerifier.Report(segments: 0, batches: 0, events: 0, head: LogHead(position: 0, chainHash: BatchHeader.zeroHash))
        func broken(_ position: LogPosition, _ reason: String, hashes: LogVerifier.HashMismatch? = nil) -> LogVerifier.Report {
            var r = report
            r.firstBreak = LogVerifier.Break(position: position, segment: "tally_batches", offset: 0, reason: reason, hashes: hashes)
            return r
        }
        let storedHead = try await head()
        var digestChecked = expected == nil || expected!.position == 0
        if let expected, expected.position == 0, expected.chainHash != BatchHeader.zeroHash {
            return broken(0, "the digest names position 0 with a non-zero hash")
        }
        var next: LogPosition = 1
        var hash = BatchHeader.zeroHash
        let decompressor = LZ4FrameDecompressor()
        while true {
            let page = try await PostgresLogEvents.Batches.Iterator.query(pool, from: next, rows: 256)
            if page.isEmpty { break }
            for row in page {
                guard row.header.firstPosition == next else {
                    return broken(next, "batch row starts at position \(row.header.firstPosition), expected \(next)")
                }
                // The hash the row records against the one its bytes and the row before give.
                let chain = row.expectedChainHash(after: hash)
                let mismatch = chain == row.header.chainHash ? nil : LogVerifier.HashMismatch(expected: row.header.chainHash, found: chain)
                do {
                    _ = try row.decode(decompressor)
                } catch {
                    return broken(next, EventLogError.wrapping(error).message, hashes: mismatch)
                }
                if let mismatch {
                    return broken(next, "chain hash does not match the batch and the one before it: history was changed", hashes: mismatch)
                }
                if let expected, !digestChecked {
                    if row.header.lastPosition == expected.position {
                        digestChecked = true
                        if chain != expected.chainHash {
                            return broken(row.header.firstPosition, "chain hash at position \(expected.position) differs from the digest: history up to it was changed",
                                          hashes: .init(expected: expected.chainHash, found: chain))
                        }
                    } else if row.header.lastPosition > expected.position {
                        return broken(expected.position, "no batch ends at the digest's position \(expected.position): history was rewritten")
                    }
                }
                hash = chain
                next = row.header.lastPosition + 1
                report.batches += 1
                report.events += UInt64(row.header.eventCount)
                report.head = LogHead(position: next - 1, chainHash: hash)
                progress?(next - 1)
            }
        }
        if storedHead.position > report.head.position || (storedHead.position == report.head.position && storedHead.chainHash != hash) {
            let hashes = storedHead.position == report.head.position ? LogVerifier.HashMismatch(expected: storedHead.chainHash, found: hash) : nil
            return broken(report.head.position + 1, "tally_head names position \(storedHead.position), the batches end at \(report.head.position)", hashes: hashes)
        }
        if let expected, !digestChecked {
            return broken(report.head.position + 1, "the log ends at position \(report.head.position), before the digest's position \(expected.position)")
        }
        return report
    }

    /// The result an append got, rebuilt from its batch (for a repeated idempotency key).
    static func result(of events: [RecordedEvent]) -> AppendResult {
        var versions: [String: UInt64] = [:]
        for event in events { versions[event.stream] = max(versions[event.stream] ?? 0, event.streamVersion) }
        return AppendResult(positions: events.first!.position...events.last!.position, streamVersions: versions, deduplicated: true)
    }
}

extension PostgresLog {
    /// Bytes the log takes in PostgreSQL: its tables with their indexes and TOAST.
    public func storedBytes() async throws -> Int {
        try await pool.run { connection in
            let result = try connection.query(
                "SELECT (pg_total_relation_size('tally_batches') + pg_total_relation_size('tally_streams') + pg_total_relation_size('tally_head'))::bigint"
            )
            return Int(try result.int64(0, 0))
        }
    }
}
