import ArgumentParser
import EventLog
import Events
import Foundation
import Projections

/// `--snapshots DIR` and `--no-checkpoints`: where the view commands look for as-of
/// checkpoints. For a file log the default is the log's own `DIR/snapshots`, where
/// `replay rebuild` and the server keep them; a PostgreSQL log has none unless given.
struct CheckpointOptions: ParsableArguments {
    @Option(help: "Where snapshots and checkpoints are (default: DIR/snapshots next to a file log).") var snapshots: String?
    @Flag(help: "Fold from the first event, ignoring checkpoints.") var noCheckpoints = false

    func store(for target: LogOption) -> CheckpointStore? {
        guard !noCheckpoints else { return nil }
        if let snapshots { return CheckpointStore(snapshotDirectory: snapshots) }
        guard !PostgresURL.matches(target.log) else { return nil }
        return CheckpointStore(snapshotDirectory: defaultSnapshotDirectory(target.log))
    }
}

extension CheckpointOptions {
    /// The view as of `point`, folded from the nearest usable checkpoint: progress on
    /// stderr, every checkpoint passed over reported, a log that cannot be read exit 2.
    func answer<P: Projection>(_ type: P.Type, from log: any EventStore, target: LogOption, at point: AsOfPoint,
                               progress: Progress) async throws -> AsOfAnswer<P> {
        let answer: AsOfAnswer<P>
        do {
            answer = try await Projections.AsOf.fold(P.self, from: log, checkpoints: store(for: target), at: point) {
                progress.update($0)
            }
        } catch {
            progress.finish()
            throw target.unreadable("cannot read the log at \(target.name)", error)
        }
        progress.finish()
        reportRefused(answer.refused)
        return answer
    }
}

/// `DIR/snapshots` for the log directory `DIR`.
func defaultSnapshotDirectory(_ log: String) -> String {
    (log.hasSuffix("/") ? log : log + "/") + "snapshots"
}

extension RangeOptions {
    /// The as-of point the range names when it only bounds the end (no `--since`, no
    /// `--from-position` past 1): only then can a checkpoint answer it. Nil otherwise.
    func asOfPoint(_ selection: EventSelection) -> AsOfPoint? {
        guard selection.since == nil, selection.fromPosition <= 1 else { return nil }
        if let untilPosition = selection.untilPosition { return .position(untilPosition) }
        if let until = selection.until { return .before(until) }
        return .head
    }
}

/// Each checkpoint passed over, on stderr: the answer is still exact (folded from an older
/// checkpoint or the first event), but the file wants rewriting (`replay rebuild`).
func reportRefused(_ refused: [String]) {
    for reason in refused { printError("passed over \(reason); `replay rebuild` writes it anew") }
}

/// `--every`: an interval of event time, `N` followed by m, h or d (15m, 1h, 1d).
struct Interval: ExpressibleByArgument, Hashable {
    var micros: Int64
    var text: String

    init?(argument: String) {
        guard let unit = argument.last, let count = Int64(argument.dropLast()), (1...10_000).contains(count) else { return nil }
        let per: Int64
        switch unit {
        case "m": per = 60_000_000
        case "h": per = 3_600_000_000
        case "d": per = 86_400_000_000
        default: return nil
        }
        micros = count * per
        text = argument
    }
}

/// The rows of `replay stats --every`: times from `from` in steps of `interval`, each row
/// as of the end of its interval, the last cut at `until`.
enum SeriesPlan {
    /// The interval starts and ends; throws `ValidationError` (exit 64) past the row limit.
    static func intervals(from: Int64, until: Int64, every: Interval) throws -> [(start: Int64, end: Int64)] {
        guard from < until else { return [] }
        let (span, overflow) = until.subtractingReportingOverflow(from)
        let rows = overflow ? Int64.max : (span / every.micros + (span % every.micros == 0 ? 0 : 1))
        guard rows <= Int64(AsOfSeries.maximumRows) else {
            throw ValidationError("--every \(every.text) from \(EventTime.iso8601(micros: from)) until \(EventTime.iso8601(micros: until)) is \(rows) rows; "
                + "at most \(AsOfSeries.maximumRows): use a longer interval or a shorter --from/--until range")
        }
        var out: [(Int64, Int64)] = []
        var start = from
        while start < until {
            let end = start.addingReportingOverflow(every.micros)
            let cut = end.overflow ? until : min(end.partialValue, until)
            out.append((start, cut))
            start = cut
        }
        return out
    }

    /// `time` rounded down to a multiple of the interval (UTC midnight for days).
    static func floor(_ time: Int64, _ every: Interval) -> Int64 {
        time.dividingFloor(by: every.micros).quotient * every.micros
    }
}

extension Int64 {
    fileprivate func dividingFloor(by divisor: Int64) -> (quotient: Int64, remainder: Int64) {
        let q = self / divisor, r = self % divisor
        return r < 0 ? (q - 1, r + divisor) : (q, r)
    }
}

/// One series row as `--format csv` writes it: fixed columns, health per component left out
/// (the JSON rows carry it).
enum StatsCSV {
    static let header = ["from", "until", "position", "profiles.total", "profiles.with_ai_analysis", "profiles.ai_completion_rate",
                         "posts.total", "posts.with_ai_analysis", "posts.failed_unrecovered", "analyses.completed", "analyses.failed",
                         "analyses.completion_rate", "searches.total", "searches.cache_hits", "searches.cache_hit_ratio",
                         "unlocks.total", "unlocks.distinct", "unlocks.users", "credits.granted", "credits.spent",
                         "cdn.queued", "cdn.succeeded", "cdn.failed", "cdn.success_rate"]
        + CdnPriority.allCases.flatMap { p in ["queued", "succeeded", "failed"].map { "cdn.\(p.rawValue).\($0)" } }
        + ["health.ok", "health.degraded", "health.down", "system.status", "system.ai_system"]

    static func row(from: Int64, until: Int64, position: LogPosition, _ s: SystemStats) -> String {
        var fields = [EventTime.iso8601(micros: from), EventTime.iso8601(micros: until), "\(position)",
                      "\(s.profiles.total)", "\(s.profiles.withAIAnalysis)", "\(s.profiles.aiCompletionRate)",
                      "\(s.posts.total)", "\(s.posts.withAIAnalysis)", "\(s.posts.failedUnrecovered)",
                      "\(s.analyses.completed)", "\(s.analyses.failed)", "\(s.analyses.completionRate)",
                      "\(s.searches.total)", "\(s.searches.cacheHits)", "\(s.searches.cacheHitRatio)",
                      "\(s.unlocks.total)", "\(s.unlocks.distinct)", "\(s.unlocks.users)",
                      "\(s.credits.granted)", "\(s.credits.spent)",
                      "\(s.cdn.queued)", "\(s.cdn.succeeded)", "\(s.cdn.failed)", "\(s.cdn.successRate)"]
        for priority in CdnPriority.allCases {
            let c = s.cdn.byPriority[priority.rawValue]
            fields += ["\(c?.queued ?? 0)", "\(c?.succeeded ?? 0)", "\(c?.failed ?? 0)"]
        }
        for status in ["ok", "degraded", "down"] { fields.append("\(s.health.statusCounts[status] ?? 0)") }
        fields += [s.system.status, s.system.aiSystem]
        return fields.map(csvField).joined(separator: ",")
    }

    /// RFC 4180 quoting where needed.
    static func csvField(_ field: String) -> String {
        guard field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return field }
        return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

/// One series row as a JSON line.
struct SeriesRow: Encodable {
    var from: String
    var until: String
    var position: LogPosition
    var stats: SystemStats
}

/// Compact, key-sorted JSON: one line per row.
func renderJSONLine(_ value: some Encodable) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}

/// The first and the last event's recorded-at (nil for an empty log): the default span of a
/// series.
func firstAndLastTimes(_ store: any EventStore, head: LogPosition) async throws -> (Int64, Int64)? {
    guard head > 0 else { return nil }
    func time(at position: LogPosition) async throws -> Int64? {
        for try await batch in store.read(from: position).batches { return batch.first?.recordedAt }
        return nil
    }
    guard let first = try await time(at: 1), let last = try await time(at: head) else { return nil }
    return (first, last)
}
