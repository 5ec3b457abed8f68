import ArgumentParser
import EventLog
import Foundation
import Synchronization

/// Opens `log` (a directory or a postgres:// URL); read-only unless `writable`. Every replay
/// command works through `EventStore` alone, whichever backend this returns.
///
/// A file log damaged before its end opens read-only as its intact prefix: the damage is
/// reported on stderr and noted (`DamagedPrefix`), and the command exits 1 at its end unless
/// it asked only for positions before the damage (`--until-position`). Nothing is changed.
func openLog(_ log: String, writable: Bool = false, fsync: FsyncPolicy = .never, segmentSize: Int = 128 << 20) throws -> any EventStore {
    if PostgresURL.matches(log) {
        return try PostgresLog(url: log, options: .init(fsync: fsync, readOnly: !writable))
    }
    do {
        return try FileLog(directory: log, options: .init(fsync: fsync, segmentSize: segmentSize, readOnly: !writable))
    } catch let error as EventLogError where error.code == .corrupted && !writable {
        // Read-only with repair: the opener stops at the damage and writes nothing.
        let prefix = try FileLog(directory: log, options: .init(fsync: fsync, segmentSize: segmentSize, readOnly: true, repair: true))
        guard let damage = prefix.recovery.repair else { return prefix }
        DamagedPrefix.note(damage.position)
        printError("""
            the log at \(log) is damaged at position \(damage.position) (\(damage.segment), byte \(damage.offset): \(damage.reason)); \
            reading its intact prefix, positions 1...\(damage.position - 1). Nothing was changed; \
            `replay repair --log \(log)` cuts the log there (keeping the cut bytes as *.damaged)
            """)
        return prefix
    }
}

/// The damage a read-only open stopped at, and the last position the command asked for, so
/// that `Replay.main` exits 1 when the answer may miss events past the damage.
enum DamagedPrefix {
    private static let state = Mutex<(damagedAt: LogPosition?, until: LogPosition?)>((nil, nil))

    static func note(_ position: LogPosition) { state.withLock { $0.damagedAt = $0.damagedAt.map { min($0, position) } ?? position } }
    static func asked(until position: LogPosition?) { state.withLock { $0.until = position } }

    /// True when a log was damaged at or before a position the command wanted.
    static var missedEvents: Bool {
        state.withLock { s in
            guard let damaged = s.damagedAt else { return false }
            guard let until = s.until else { return true }
            return until >= damaged
        }
    }
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

/// `--log`: the log a command works on, a data directory or a postgres:// URL. One option
/// group for every command, so the flag, its help and the way a log that cannot be opened
/// is reported (exit 2, with the reason) are the same everywhere.
struct LogOption: ParsableArguments {
    @Option(help: "The log: a data directory, or a postgres:// URL.") var log: String

    /// The log's name for messages: the directory, or the URL without its password.
    var name: String { logName(log) }

    /// Opens the log (read-only unless `writable`), or prints why not and exits 2. Read-only,
    /// it must be a log already (`requireLog`); writable, it is created when missing.
    func open(writable: Bool = false, fsync: FsyncPolicy = .never, segmentSize: Int = 128 << 20) throws -> any EventStore {
        if !writable { try requireLog() }
        do {
            return try openLog(log, writable: writable, fsync: fsync, segmentSize: segmentSize)
        } catch {
            throw unreadable("cannot open the log at \(name)", error)
        }
    }

    /// Opens the log and reads its head, or prints why not and exits 2.
    func openAtHead(writable: Bool = false, fsync: FsyncPolicy = .never) async throws -> (store: any EventStore, head: LogPosition) {
        let store = try open(writable: writable, fsync: fsync)
        do {
            return (store, try await store.head().position)
        } catch {
            try? await store.close()
            throw unreadable("cannot read the head of the log at \(name)", error)
        }
    }

    /// Exits 2 unless `log` is a log already. A read-only open of a directory without
    /// segments succeeds as an empty log, so a mistyped path printed zeros and exited 0 as if
    /// it were one: every read-only command checks this first. (A database URL is checked by
    /// the open itself.)
    func requireLog() throws {
        guard !PostgresURL.matches(log) else { return }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: log, isDirectory: &isDirectory) else {
            throw unreadable("cannot open the log at \(name)", NoLog(reason: "there is no such directory"))
        }
        guard isDirectory.boolValue else {
            throw unreadable("cannot open the log at \(name)", NoLog(reason: "it is a file, not a log's directory"))
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: log)) ?? []
        guard names.contains(where: Self.isSegmentName) else {
            throw unreadable("cannot open the log at \(name)", NoLog(
                reason: "the directory holds no log (no *.seg segment files); give the directory of a log that `replay generate`, `replay import` or the server wrote"))
        }
    }

    /// `00000000000000000001.seg`: 20 digits, the segment's first position.
    static func isSegmentName(_ name: String) -> Bool {
        let utf8 = name.utf8
        return utf8.count == 24 && name.hasSuffix(".seg") && utf8.prefix(20).allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }

    struct NoLog: Error, CustomStringConvertible {
        var reason: String
        var description: String { reason }
    }

    /// Prints `what` and `error`, and returns the exit to throw: 1 when the log's bytes are
    /// damaged (the README's "damaged log"), naming the repair; 2 when it cannot be read.
    func unreadable(_ what: String, _ error: any Error) -> ExitCode {
        printError("\(what): \(error)")
        if let error = error as? EventLogError, error.code == .corrupted {
            if !PostgresURL.matches(log), !error.message.contains("replay repair") {
                printError("the events before the damage stay readable (--until-position before it); `replay verify --log \(name)` names the first break, `replay repair --log \(name)` cuts the log there")
            }
            return ReplayExit.damaged
        }
        return ReplayExit.unreadable
    }
}
