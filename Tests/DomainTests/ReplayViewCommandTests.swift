import EventLog
import Events
import Foundation
import Projections
import Synchronization
import TallyTestSupport
import Testing

/// `replay stats`, `unlocked`, `rebuild` and `bench replay` through the real binary, checked
/// against the same folds run in-process on a generated log.
@Suite(.timeLimit(.minutes(5))) struct ReplayViewCommandTests {
    typealias Run = ProcessOutput

    static func run(_ arguments: [String], in dir: String) async throws -> Run {
        try await ImportExportTests.run(arguments, in: dir)
    }

    static func json(_ run: Run) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8))
        return try #require(object as? [String: Any], "not a JSON object: \(run.stdout) \(run.stderr)")
    }

    static func searches(_ object: [String: Any]) -> Int? {
        ((object["stats"] as? [String: Any])?["searches"] as? [String: Any])?["total"] as? Int
    }

    @Test func statsUnlockedRebuildAndBenchAnswerLikeTheFolds() async throws {
        try await ImportExportTests.withDirectory { dir in
            let log = dir + "/log"
            let generated = try await Self.run(["generate", "--log", log, "--events", "20000", "--seed", "5"], in: dir)
            try #require(generated.status == 0, "\(generated.stderr)")

            let store = try FileLog(directory: log, options: .init(readOnly: true))
            let full = try await SystemStatsProjection.rebuild(from: store).projection.makeView()
            let half = try await SystemStatsProjection.rebuild(from: store, until: 10_000).projection.makeView()
            let unlocked = try await UnlockedProfilesProjection.rebuild(from: store).projection.makeView()
            // A time in the middle of the log, and the stats of exactly the events recorded by then.
            var times: [Int64] = []
            var asOf = SystemStatsProjection()
            for try await event in store.read(from: 1) { times.append(event.recordedAt) }
            let cut = times.sorted()[times.count / 3]
            var lastAtOrBefore: LogPosition = 0
            var before = SystemStatsProjection()
            var lastBefore: LogPosition = 0
            for try await event in store.read(from: 1) where event.recordedAt <= cut {
                asOf.apply(event)
                lastAtOrBefore = event.position
                if event.recordedAt < cut {
                    before.apply(event)
                    lastBefore = event.position
                }
            }
            // A window of times and positions, the same vocabulary as export's.
            let since = times.sorted()[times.count / 5]
            var window = SystemStatsProjection()
            var lastInWindow: LogPosition = 0
            for try await event in store.read(from: 1) where event.position >= 2_000 && event.recordedAt >= since && event.recordedAt < cut {
                window.apply(event)
                lastInWindow = event.position
            }
            var someUser: String?
            for try await event in store.read(from: 1) {
                if case .profileUnlocked(let e)? = event.domainEvent { someUser = e.user }
            }
            try await store.close()

            let stats = try Self.json(try await Self.run(["stats", "--log", log], in: dir))
            #expect(stats["position"] as? Int == 20_000)
            #expect(Self.searches(stats) == Int(full.searches.total))
            let halfStats = try Self.json(try await Self.run(["stats", "--log", log, "--until-position", "10000"], in: dir))
            #expect(halfStats["position"] as? Int == 10_000)
            #expect(Self.searches(halfStats) == Int(half.searches.total))
            #expect(half.searches.total < full.searches.total)
            // --until-time (the older, inclusive spelling): the position is the last event folded, not the head.
            let timed = try Self.json(try await Self.run(["stats", "--log", log, "--until-time", EventTime.iso8601(micros: cut)], in: dir))
            #expect(Self.searches(timed) == Int(asOf.makeView().searches.total))
            #expect(timed["position"] as? Int == Int(lastAtOrBefore) && lastAtOrBefore < 20_000, "\(timed["position"] ?? "nil")")
            let until = try Self.json(try await Self.run(["stats", "--log", log, "--until", EventTime.iso8601(micros: cut)], in: dir))
            #expect(Self.searches(until) == Int(before.makeView().searches.total))
            #expect(until["position"] as? Int == Int(lastBefore))
            let windowArguments = ["--since", EventTime.iso8601(micros: since), "--until", EventTime.iso8601(micros: cut), "--from-position", "2000"]
            let windowed = try Self.json(try await Self.run(["stats", "--log", log] + windowArguments, in: dir))
            #expect(Self.searches(windowed) == Int(window.makeView().searches.total))
            #expect(windowed["position"] as? Int == Int(lastInWindow))
            // export selects exactly the events stats folded for the same range.
            let exported = try await Self.run(["export", "--log", log] + windowArguments, in: dir)
            let lines = exported.stdout.split(separator: "\n")
            #expect(exported.status == 0 && lines.last?.hasPrefix("{\"position\":\(lastInWindow),") == true, "\(exported.stderr)")
            #expect(lines.filter { $0.contains("\"type\":\"CreatorSearched\"") }.count == Int(window.makeView().searches.total))
            let table = try await Self.run(["stats", "--log", log, "--format", "table"], in: dir)
            #expect(table.status == 0 && table.stdout.contains("searches.total") && table.stdout.contains("\(full.searches.total)"))

            let user = try #require(someUser, "the generated log holds no unlock")
            let page = try Self.json(try await Self.run(["unlocked", "--log", log, "--user", user], in: dir))
            let profiles = try #require(page["profiles"] as? [[String: Any]])
            let expected = unlocked.unlocked(user: user, limit: 100).profiles
            #expect(profiles.compactMap { $0["username"] as? String } == expected.map(\.username))
            // Times as the API prints them: ISO 8601 under unlocked_at.
            #expect(profiles.compactMap { $0["unlocked_at"] as? String } == expected.map { EventTime.iso8601(micros: $0.unlockedAt) })
            #expect(profiles.allSatisfy { $0["unlocked_at_us"] == nil })
            #expect(page["position"] as? Int == 20_000)
            let earlier = try Self.json(try await Self.run(["unlocked", "--log", log, "--user", user, "--until-position", "10000"], in: dir))
            #expect(earlier["position"] as? Int == 10_000)
            #expect((earlier["total"] as? Int ?? .max) <= (page["total"] as? Int ?? 0))

            let snapshots = dir + "/snapshots"
            let rebuilt = try Self.json(try await Self.run(["rebuild", "--log", log, "--snapshots", snapshots], in: dir))
            #expect(rebuilt["events"] as? Int == 20_000)
            let reopened = try FileLog(directory: log, options: .init(fsync: .never))
            let loaded = Mutex<LogPosition?>(nil)
            let runner = ProjectionRunner<SystemStatsProjection, FileLog>(store: reopened, snapshots: SnapshotStore(directory: snapshots)) { event in
                if case .snapshotLoaded(_, let position) = event { loaded.withLock { $0 = position } }
            }
            let task = Task { try await runner.run() }
            #expect(await runner.waitForPosition(20_000, timeout: .seconds(10)))
            #expect(loaded.withLock { $0 } == 20_000, "the runner did not start from the rebuilt snapshot")
            #expect(runner.current.view == full)
            task.cancel()
            try await task.value
            try await reopened.close()

            let bench = try Self.json(try await Self.run(["bench", "replay", "--log", log], in: dir))
            #expect(bench["events"] as? Int == 20_000)
            #expect((bench["peak_rss_mib"] as? Double ?? 0) > 0)
        }
    }

    @Test func badInputGetsClearExitCodes() async throws {
        try await ImportExportTests.withDirectory { dir in
            let missing = try await Self.run(["stats", "--log", dir + "/nothing-here"], in: dir)
            #expect(missing.status == 2, "\(missing)")
            let badTime = try await Self.run(["stats", "--log", dir, "--until-time", "yesterday"], in: dir)
            #expect(badTime.status == 64 && badTime.stderr.contains("ISO 8601"), "\(badTime)")
            let both = try await Self.run(["stats", "--log", dir, "--until-time", "2026-01-01", "--until-position", "3"], in: dir)
            #expect(both.status == 64, "\(both)")
            let badLimit = try await Self.run(["unlocked", "--log", dir, "--user", "u", "--limit", "0"], in: dir)
            #expect(badLimit.status == 64, "\(badLimit)")
            let untilBoth = try await Self.run(["stats", "--log", dir, "--until", "2026-01-01", "--until-position", "3"], in: dir)
            #expect(untilBoth.status == 64, "\(untilBoth)")
        }
    }

    /// A directory that holds no log is an error for every command that only reads, not an
    /// empty log; the commands that create a log still create one there.
    @Test func aDirectoryWithoutALogIsRefused() async throws {
        try await ImportExportTests.withDirectory { dir in
            let empty = dir + "/empty"
            try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
            let readers: [[String]] = [
                ["stats"], ["unlocked", "--user", "u"], ["inspect"], ["export"], ["export", "--format", "csv"],
                ["verify"], ["digest"], ["bench", "read"], ["bench", "replay"], ["rebuild", "--snapshots", dir + "/snapshots"],
            ]
            for command in readers {
                let run = try await Self.run(command + ["--log", empty], in: dir)
                #expect(run.status == 2 && run.stdout.isEmpty, "\(command): \(run)")
                #expect(run.stderr.contains("holds no log"), "\(command): \(run.stderr)")
            }
            #expect(try await Self.run(["stats", "--log", dir + "/nothing-here"], in: dir).status == 2)
            let generated = try await Self.run(["generate", "--log", empty, "--events", "10", "--seed", "1"], in: dir)
            #expect(generated.status == 0, "\(generated)")
            let stats = try Self.json(try await Self.run(["stats", "--log", empty], in: dir))
            #expect(stats["position"] as? Int == 10)
        }
    }
}
