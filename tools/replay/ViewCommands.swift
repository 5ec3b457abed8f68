import ArgumentParser
import EventLog
import Events
import Foundation
import Projections

/// The analysts' commands: views folded from any log, as of any point.

struct Stats: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The system-stats view folded from the log, as of a position or a time (JSON).",
        discussion: "Without --until-*, as of the head. --until-time counts the events recorded at or before that time."
    )

    @OptionGroup var target: LogOption
    @Option(help: "Fold events up to and including this position.") var untilPosition: UInt64?
    @Option(help: "Fold events recorded at or before this time (ISO 8601, UTC).") var untilTime: String?
    @Option(help: "json (default) or table.") var format: OutputFormat = .json

    func validate() throws {
        if untilPosition != nil && untilTime != nil { throw ValidationError("give --until-position or --until-time, not both") }
        if let untilTime, EventTime.parse(untilTime) == nil { throw ValidationError("--until-time \(untilTime) is not an ISO 8601 time such as 2026-11-25T14:00:00Z") }
    }

    func run() async throws {
        let store = try target.open()
        let until = untilTime.flatMap(EventTime.parse)
        let head = try await store.head().position
        let progress = Progress(label: "stats", total: untilPosition ?? head)
        var projection = SystemStatsProjection()
        var position: LogPosition = 0
        do {
            reading: for try await batch in store.read(from: 1).batches {
                for event in batch {
                    if let untilPosition, event.position > untilPosition { break reading }
                    position = event.position
                    if let until, event.recordedAt > until { continue }
                    projection.apply(event)
                }
                progress.update(position)
            }
        } catch {
            progress.finish()
            throw target.unreadable("cannot read the log at \(target.name)", error)
        }
        progress.finish()
        let stats = projection.makeView()
        switch format {
        case .json:
            writeLine(1, try renderJSON(AsOf(position: position, untilTime: untilTime, stats: stats)))
        case .table:
            writeLine(1, StatsTable.render(stats, position: position))
        }
        try await store.close()
    }

    struct AsOf: Encodable {
        var position: LogPosition
        var untilTime: String?
        var stats: SystemStats
        enum CodingKeys: String, CodingKey { case position, untilTime = "until_time", stats }
    }
}

struct Unlocked: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "One user's unlocked profiles, newest first (JSON).")

    @OptionGroup var target: LogOption
    @Option(help: "The user id (the token subject).") var user: String
    @Option(help: "At most this many profiles (1...10000).") var limit: Int = 100

    func validate() throws {
        guard (1...10_000).contains(limit) else { throw ValidationError("--limit must be 1...10000") }
    }

    func run() async throws {
        let store = try target.open()
        let rebuilt: RebuiltProjection<UnlockedProfilesProjection>
        do {
            rebuilt = try await UnlockedProfilesProjection.rebuild(from: store)
        } catch {
            throw target.unreadable("cannot read the log at \(target.name)", error)
        }
        let page = rebuilt.projection.makeView().unlocked(user: user, limit: limit)
        writeLine(1, try renderJSON(UserUnlocks(user: user, position: rebuilt.position, total: page.total, profiles: page.profiles)))
        try await store.close()
    }

    struct UserUnlocks: Encodable {
        var user: String
        var position: LogPosition
        var total: Int
        var profiles: [UnlockedProfile]
    }
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case json, table
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
