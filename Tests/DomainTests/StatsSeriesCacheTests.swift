@testable import API
import EventLog
import Events
import Projections
import Testing

/// Kept stats series rows: reused while nothing recorded before their end is appended, folded
/// again when something is, and always equal to a separate as-of answer; two requests at once
/// fold the rows once.
@Suite(.timeLimit(.minutes(5))) struct StatsSeriesCacheTests {
    static let hour: Int64 = 3_600_000_000

    static func check(_ answer: StatsSeriesCache.Answer, _ ends: [Int64], _ log: FileLog) async throws {
        #expect(answer.rows.count == ends.count)
        for (row, end) in zip(answer.rows, ends) {
            let fresh = try await AsOf.fold(SystemStatsProjection.self, from: log, checkpoints: nil, at: .before(end))
            #expect(row.until == end)
            #expect(row.view == fresh.projection.makeView(), "until \(end)")
            #expect(row.position == fresh.position, "until \(end)")
        }
    }

    @Test func keptRowsAreReusedUntilAnEventRecordedBeforeTheirEndArrives() async throws {
        try await withViewFixture { fixture in
            let events = RandomEvents.make(count: 300, seed: 41)
            try await fixture.append(events, chunk: 9)
            let times = events.map(\.at)
            let first = times.min()! / Self.hour * Self.hour
            let ends = (1...Int((times.max()! - first) / Self.hour + 2)).map { first + Int64($0) * Self.hour }
            try #require(ends.count >= 10)
            let cache = StatsSeriesCache()

            let cold = try await cache.rows(ends: ends, store: fixture.log, checkpoints: nil)
            #expect(cold.folded == ends.count)
            try await Self.check(cold, ends, fixture.log)
            let warm = try await cache.rows(ends: ends, store: fixture.log, checkpoints: nil)
            #expect(warm.folded == 0)
            try await Self.check(warm, ends, fixture.log)

            // Recorded after every row's end: nothing to fold again.
            try await fixture.append([TimedEvent(.creditsGranted(.init(user: "u1", amount: 2, reason: "later")), at: ends.last! + 1)], chunk: 1)
            #expect(try await cache.rows(ends: ends, store: fixture.log, checkpoints: nil).folded == 0)

            // Recorded inside the range: the rows ending after it are folded again, the others kept.
            let middle = ends[ends.count / 2] - Self.hour / 2
            try await fixture.append([TimedEvent(.creditsGranted(.init(user: "u1", amount: 5, reason: "late")), at: middle)], chunk: 1)
            let after = try await cache.rows(ends: ends, store: fixture.log, checkpoints: nil)
            #expect(after.folded == ends.filter { $0 > middle }.count)
            try await Self.check(after, ends, fixture.log)

            // A range reaching past the kept rows folds only the new ones.
            let longer = ends + [ends.last! + Self.hour, ends.last! + 2 * Self.hour]
            let extended = try await cache.rows(ends: longer, store: fixture.log, checkpoints: nil)
            #expect(extended.folded == 2)
            try await Self.check(extended, longer, fixture.log)
        }
    }

    @Test func theRunnersHourlyRowsAnswerWithoutAFoldUntilALateEventDropsThem() async throws {
        try await withViewFixture { fixture in
            // Forward only, 7.5 minutes apart: 30 hours, every boundary a row.
            let events = (0..<240).map { i in
                TimedEvent(.creatorSearched(.init(user: "u\(i % 4)", username: "creator.\(i % 9)", servedFrom: i % 3 == 0 ? .cache : .fresh,
                                                   durationMs: i, found: true)), at: RandomEvents.start + Int64(i) * Self.hour / 8)
            }
            try await fixture.append(events, chunk: 11)
            let (runner, task) = IntervalRowsTests.start(fixture.log, nil)
            _ = try await IntervalRowsTests.live(runner, at: 240)
            let first = RandomEvents.start / Self.hour * Self.hour
            let ends = (1...32).map { first + Int64($0) * Self.hour }
            let cache = StatsSeriesCache()
            let log = fixture.log
            let answer = try await cache.rows(ends: ends, store: log, checkpoints: nil, live: { runner.currentWithRows })
            #expect(answer.folded == 0)
            try await Self.check(answer, ends, log)

            // Recorded in the middle, appended last: the rows after it are folded, the rest kept.
            let middle = ends[12] + Self.hour / 3
            try await fixture.append([TimedEvent(.creditsGranted(.init(user: "u1", amount: 5, reason: "late")), at: middle)], chunk: 1)
            _ = try await IntervalRowsTests.live(runner, at: 241)
            let newest = events.last!.at
            let after = try await cache.rows(ends: ends, store: log, checkpoints: nil, live: { runner.currentWithRows })
            // Ends after everything recorded are the runner's whole view: not folded either.
            #expect(after.folded == ends.filter { $0 > middle && $0 <= newest }.count)
            #expect(after.folded > 10)
            try await Self.check(after, ends, log)
            task.cancel()
            try await task.value
        }
    }

    @Test func twoRequestsAtOnceFoldTheRowsOnce() async throws {
        try await withViewFixture { fixture in
            let events = RandomEvents.make(count: 200, seed: 43)
            try await fixture.append(events, chunk: 7)
            let first = events.map(\.at).min()! / Self.hour * Self.hour
            let ends = (1...12).map { first + Int64($0) * Self.hour }
            let cache = StatsSeriesCache()
            let log = fixture.log
            async let a = cache.rows(ends: ends, store: log, checkpoints: nil)
            async let b = cache.rows(ends: ends, store: log, checkpoints: nil)
            let (one, two) = try await (a, b)
            #expect(one.folded + two.folded == ends.count)
            try await Self.check(one, ends, log)
            try await Self.check(two, ends, log)
        }
    }

    @Test func aRowsJSONIsWrittenOnceWhileItIsKept() async throws {
        try await withViewFixture { fixture in
            let events = RandomEvents.make(count: 120, seed: 47)
            try await fixture.append(events, chunk: 8)
            let first = events.map(\.at).min()! / Self.hour * Self.hour
            let ends = (1...6).map { first + Int64($0) * Self.hour }
            let cache = StatsSeriesCache()
            let answer = try await cache.rows(ends: ends, store: fixture.log, checkpoints: nil)
            var writes = 0
            func json(_ answer: StatsSeriesCache.Answer, _ row: Int, from: Int64) -> [UInt8] {
                cache.encoded(id: answer.ids[row], until: ends[row], from: from) {
                    writes += 1
                    return Array("row \(answer.rows[row].position) from \(from)".utf8)
                }
            }
            let once = json(answer, 5, from: ends[4])
            #expect(json(answer, 5, from: ends[4]) == once && writes == 1)
            // Shown from another start (a range cut there): written anew.
            _ = json(answer, 5, from: ends[4] + 1)
            #expect(writes == 2)
            // Folded again after a late event: another id, written anew.
            try await fixture.append([TimedEvent(.creditsGranted(.init(user: "u2", amount: 1, reason: "late")), at: ends[3])], chunk: 1)
            let again = try await cache.rows(ends: ends, store: fixture.log, checkpoints: nil)
            #expect(again.ids[5] != answer.ids[5] && again.ids[2] == answer.ids[2])
            _ = json(again, 5, from: ends[4] + 1)
            #expect(writes == 3)
        }
    }
}
