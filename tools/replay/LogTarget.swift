import EventLog

/// Opens `log` (a directory or a postgres:// URL); read-only unless `writable`. Every replay
/// command works through `EventStore` alone, whichever backend this returns.
func openLog(_ log: String, writable: Bool = false, fsync: FsyncPolicy = .never, segmentSize: Int = 128 << 20) throws -> any EventStore {
    if PostgresURL.matches(log) {
        return try PostgresLog(url: log, options: .init(fsync: fsync, readOnly: !writable))
    }
    return try FileLog(directory: log, options: .init(fsync: fsync, segmentSize: segmentSize, readOnly: !writable))
}

/// A log's name for messages: the directory, or the URL without its password.
func logName(_ log: String) -> String { PostgresURL.matches(log) ? PostgresURL.redacted(log) : log }

/// The writer figures of `bench append`, named with the backend's words: `batches`,
/// `events_per_batch`, `fsyncs`, `fsync_p50_ms`… for the embedded log; `transactions`,
/// `commit_p50_ms`… for PostgreSQL.
func writerFigures(_ statistics: StoreStatistics, into out: inout JSONObject) {
    let names = statistics.names
    out.set(names.commits, statistics.commits)
    out.set("events_per_\(names.commit)", statistics.eventsPerCommit ?? 0, decimals: 1)
    out.set("\(names.sync)s", statistics.syncs)
    let (median, p99) = statistics.syncMedianAndP99 ?? (0, 0)
    out.set("\(names.sync)_p50_ms", Double(median) / 1e6)
    out.set("\(names.sync)_p99_ms", Double(p99) / 1e6)
}
