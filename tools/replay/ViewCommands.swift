import ArgumentParser
import EventLog
import Events
import Foundation
import Projections

/// The analysts' commands: views folded from any log, as of any point.

struct Stats: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The system-stats view folded from the log, as of a position or a time (JSON), or as a series (--every).",
        discussion: """
            Folds the events in the range (without one, the whole log). "position" is the \
            position of the last event folded: the position the view is as of (0 when none). \
            \(RangeOptions.vocabulary) The older --until-time T (inclusive) still works and \
            means --until one microsecond after T. A range that only bounds the end (the head, \
            --until, --until-position) starts from the nearest checkpoint at or before it \
            (DIR/snapshots/checkpoints, written by `replay rebuild` and the server; \
            "checkpoint" names its position) and answers exactly what a fold from the first \
            event answers. --every 1h|1d|Nm|Nh|Nd prints one row per interval, each the view as \
            of the interval's end (the same as --until END), from --from (default: the first \
            event's interval) to --until (default: the end of the last event's interval), \
            as JSON lines or --format csv; at most 10000 rows. Exit 2 when the log cannot be read.
            """
    )

    @OptionGroup var target: LogOption
    @OptionGroup var range: RangeOptions
    @OptionGroup var checkpoints: CheckpointOptions
    @Option(help: "json (default), table; with --every: json (JSON lines, default) or csv.") var format: OutputFormat = .json
    @Option(help: "One row per interval of event time: 1h, 1d, or N followed by m, h or d.") var every: Interval?
    @Option(help: "With --every: where the first interval starts (ISO 8601 UTC or a date).") var from: String?

    func validate() throws {
        if every == nil {
            if from != nil { throw ValidationError("--from goes with --every") }
            if format == .csv { throw ValidationError("--format csv goes with --every; a single view is json or table") }
        } else {
            if format == .table { throw ValidationError("--every writes json (JSON lines) or csv, not table") }
            if range.since != nil || range.fromPosition != nil || range.untilPosition != nil {
                throw ValidationError("--every rows are as of their interval's end: give --from and --until, not --since, --from-position or --until-position")
            }
            if let from { _ = try EventSelection.time(from, option: "--from") }
        }
    }

    func run() async throws {
        let store = try target.open()
        let selection = try range.selection()
        let head = try await store.head().position
        if let every {
            try await series(store, every: every, until: selection.until, head: head)
            try await store.close()
            return
        }
        let progress = Progress(label: "stats", total: min(selection.untilPosition ?? head, head))
        var projection = SystemStatsProjection()
        let position: LogPosition
        var checkpoint: LogPosition?
        if let point = range.asOfPoint(selection) {
            let answer = try await checkpoints.answer(SystemStatsProjection.self, from: store, target: target, at: point, progress: progress)
            (projection, position, checkpoint) = (answer.projection, answer.position, answer.checkpoint?.position)
        } else {
            position = try await selection.fold(store, target: target, progress: progress) { projection.apply($0) }
        }
        let stats = projection.makeView()
        switch format {
        case .json, .csv:
            writeLine(1, try renderJSON(AsOf(position: position, checkpoint: checkpoint, range: range, stats: stats)))
        case .table:
            writeLine(1, StatsTable.render(stats, position: position))
        }
        try await store.close()
    }

    /// `--every`: the rows from one pass (see `AsOfSeries`), JSON lines or CSV.
    private func series(_ store: any EventStore, every: Interval, until: Int64?, head: LogPosition) async throws {
        let span: (Int64, Int64)?
        do {
            span = try await firstAndLastTimes(store, head: head)
        } catch {
            throw target.unreadable("cannot read the log at \(target.name)", error)
        }
        let start = try from.map { try EventSelection.time($0, option: "--from") } ?? span.map { SeriesPlan.floor($0.0, every) }
        let end = until ?? span.map { SeriesPlan.floor($0.1, every) + every.micros }
        guard let start, let end else { return }
        let intervals = try SeriesPlan.intervals(from: start, until: end, every: every)
        guard !intervals.isEmpty else { return }
        let progress = Progress(label: "stats --every", total: head)
        let answer: AsOfSeries.Answer<SystemStats>
        do {
            answer = try await AsOfSeries.fold(SystemStatsProjection.self, from: store, checkpoints: checkpoints.store(for: target),
                                               ends: intervals.map(\.end)) { progress.update($0) }
        } catch {
            progress.finish()
            throw target.unreadable("cannot read the log at \(target.name)", error)
        }
        progress.finish()
        reportRefused(answer.refused)
        var lines: [String] = []
        if format == .csv { lines.append(StatsCSV.header.joined(separator: ",")) }
        for (interval, row) in zip(intervals, answer.rows) {
            switch format {
            case .csv:
                lines.append(StatsCSV.row(from: interval.start, until: interval.end, position: row.position, row.view))
            case .json, .table:
                lines.append(try renderJSONLine(SeriesRow(from: EventTime.iso8601(micros: interval.start), until: EventTime.iso8601(micros: interval.end),
                                                          position: row.position, stats: row.view)))
            }
        }
        writeLine(1, lines.joined(separator: format == .csv ? "\r\n" : "\n"))
    }

    /// The view and the range it was folded from, as given.
    struct AsOf: Encodable {
        var position: LogPosition
        /// The checkpoint the fold started from; nil when it folded from the first event.
        var checkpoint: LogPosition?
        var since: String?
        var until: String?
        var untilTime: String?
        var fromPosition: UInt64?
        var untilPosition: UInt64?
        var stats: SystemStats

        init(position: LogPosition, checkpoint: LogPosition?, range: RangeOptions, stats: SystemStats) {
            self.position = position
            self.checkpoint = checkpoint
            (since, until, untilTime) = (range.since, range.until, range.untilTime)
            (fromPosition, untilPosition) = (range.fromPosition, range.untilPosition)
            self.stats = stats
        }

        enum CodingKeys: String, CodingKey {
            case position, checkpoint, since, until, untilTime = "until_time", fromPosition = "from_position", untilPosition = "until_position", stats
        }
    }
}

struct Unlocked: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "One user's unlocked profiles, newest first (JSON).",
        discussion: """
            Fields as the API names them: unlocked_at is ISO 8601 UTC. "position" is the \
            position of the last event folded (0 when none). \(RangeOptions.vocabulary) \
            A range that only bounds the end starts from the nearest unlocked-profiles \
            checkpoint at or before it, when there is one. Exit 2 when the log cannot be read.
            """
    )

    @OptionGroup var target: LogOption
    @OptionGroup var range: RangeOptions
    @OptionGroup var checkpoints: CheckpointOptions
    @Option(help: "The user id (the token subject).") var user: String
    @Option(help: "At most this many profiles (1...10000).") var limit: Int = 100

    func validate() throws {
        guard (1...10_000).contains(limit) else { throw ValidationError("--limit must be 1...10000") }
    }

    func run() async throws {
        let store = try target.open()
        let selection = try range.selection()
        let progress = Progress(label: "unlocked")
        var projection = UnlockedProfilesProjection()
        let position: LogPosition
        if let point = range.asOfPoint(selection) {
            let answer = try await checkpoints.answer(UnlockedProfilesProjection.self, from: store, target: target, at: point, progress: progress)
            (projection, position) = (answer.projection, answer.position)
        } else {
            position = try await selection.fold(store, target: target, progress: progress) { projection.apply($0) }
        }
        let page = projection.makeView().unlocked(user: user, limit: limit)
        writeLine(1, try renderJSON(UserUnlocks(user: user, position: position, total: page.total, profiles: page.profiles.map(Profile.init))))
        try await store.close()
    }

    struct UserUnlocks: Encodable {
        var user: String
        var position: LogPosition
        var total: Int
        var profiles: [Profile]
    }

    /// One unlocked profile with the API's field names and time format.
    struct Profile: Encodable {
        var username: String
        var unlockedAt: String
        var creditsSpent: Int64
        var position: LogPosition
        var profile: ProfileSummary

        init(_ p: UnlockedProfile) {
            (username, creditsSpent, position, profile) = (p.username, p.creditsSpent, p.position, p.profile)
            unlockedAt = EventTime.iso8601(micros: p.unlockedAt)
        }

        enum CodingKeys: String, CodingKey {
            case username, unlockedAt = "unlocked_at", creditsSpent = "credits_spent", position, profile
        }
    }
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case json, table, csv
}

/// Pretty, key-sorted JSON of a view (views are small; Foundation is fine off the fold path).
func renderJSON(_ value: some Encodable) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}

enum StatsTable {
    static func render(_ s: SystemStats, position: LogPosition) -> String {
        var rows: [(String, String)] = [("position", "\(position)")]
        rows += [
            ("profiles.total", "\(s.profiles.total)"), ("profiles.with_ai_analysis", "\(s.profiles.withAIAnalysis)"),
            ("profiles.ai_completion_rate", percent(s.profiles.aiCompletionRate)),
            ("posts.total", "\(s.posts.total)"), ("posts.with_ai_analysis", "\(s.posts.withAIAnalysis)"),
            ("posts.failed_unrecovered", "\(s.posts.failedUnrecovered)"),
            ("analyses.completed", "\(s.analyses.completed)"), ("analyses.failed", "\(s.analyses.failed)"),
            ("analyses.completion_rate", percent(s.analyses.completionRate)),
            ("searches.total", "\(s.searches.total)"), ("searches.cache_hits", "\(s.searches.cacheHits)"),
            ("searches.cache_hit_ratio", percent(s.searches.cacheHitRatio)),
            ("unlocks.total", "\(s.unlocks.total)"), ("unlocks.distinct", "\(s.unlocks.distinct)"), ("unlocks.users", "\(s.unlocks.users)"),
            ("credits.granted", "\(s.credits.granted)"), ("credits.spent", "\(s.credits.spent)"),
            ("cdn.queued", "\(s.cdn.queued)"), ("cdn.succeeded", "\(s.cdn.succeeded)"), ("cdn.failed", "\(s.cdn.failed)"),
            ("cdn.success_rate", percent(s.cdn.successRate)),
        ]
        for priority in CdnPriority.allCases {
            if let c = s.cdn.byPriority[priority.rawValue] {
                rows.append(("cdn.\(priority.rawValue)", "queued \(c.queued), succeeded \(c.succeeded), failed \(c.failed), \(percent(c.successRate))"))
            }
        }
        for (component, health) in s.health.latest.sorted(by: { $0.key < $1.key }) {
            rows.append(("health.\(component)", "\(health.status.rawValue)\(health.breaker.map { ", breaker \($0.rawValue)" } ?? "")"))
        }
        rows += [("system.status", s.system.status), ("system.ai_system", s.system.aiSystem)]
        let width = rows.map(\.0.count).max() ?? 0
        return rows.map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + $0.1 }.joined(separator: "\n")
    }

    static func percent(_ ratio: Double) -> String { format(ratio * 100, decimals: 1) + " %" }
}
