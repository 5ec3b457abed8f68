import EventLog

/// What the replay commands need of either backend: `--log DIR` opens the embedded log,
/// `--log postgres://…` the PostgreSQL one.
protocol ReplayStore: EventStore {
    func headPosition() async throws -> LogPosition
    func shut() async throws
    /// Bytes the log occupies (files, or tables with indexes).
    func storedBytes() async throws -> Int
    /// Writer figures for `bench append`, named for the backend.
    func writerFigures(into out: inout JSONObject)
}

extension FileLog: ReplayStore {
    func headPosition() async throws -> LogPosition { currentHead().position }
    func shut() async throws { try await close() }
    func storedBytes() async throws -> Int { statistics().bytesOnDisk }
    func writerFigures(into out: inout JSONObject) {
        let stats = statistics()
        out.set("batches", stats.batches)
        out.set("events_per_batch", Double(stats.events) / Double(max(1, stats.batches)), decimals: 1)
        out.set("fsyncs", stats.fsyncs)
        out.set("fsync_p50_ms", percentile(stats.recentFsyncNanoseconds, 0.50) / 1e6)
        out.set("fsync_p99_ms", percentile(stats.recentFsyncNanoseconds, 0.99) / 1e6)
    }
}

extension PostgresLog: ReplayStore {
    func headPosition() async throws -> LogPosition { try await head().position }
    func shut() async throws { await close() }
    func writerFigures(into out: inout JSONObject) {
        let stats = statistics()
        out.set("transactions", stats.transactions)
        out.set("events_per_transaction", Double(stats.events) / Double(max(1, stats.transactions)), decimals: 1)
        out.set("commit_p50_ms", percentile(stats.recentCommitNanoseconds, 0.50) / 1e6)
        out.set("commit_p99_ms", percentile(stats.recentCommitNanoseconds, 0.99) / 1e6)
    }
}

/// Opens `log` (a directory or a postgres:// URL); read-only unless `writable`.
func openLog(_ log: String, writable: Bool = false, fsync: FsyncPolicy = .never, segmentSize: Int = 128 << 20) throws -> any ReplayStore {
    if PostgresURL.matches(log) {
        return try PostgresLog(url: log, options: .init(fsync: fsync, readOnly: !writable))
    }
    return try FileLog(directory: log, options: .init(fsync: fsync, segmentSize: segmentSize, readOnly: !writable))
}

/// A log's name for messages: the directory, or the URL without its password.
func logName(_ log: String) -> String { PostgresURL.matches(log) ? PostgresURL.redacted(log) : log }
