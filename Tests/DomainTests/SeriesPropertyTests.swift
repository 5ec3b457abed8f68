import API
import EventLog
import Events
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Projections
import TallyTestSupport
import Testing

/// The series endpoints against separate as-of answers, on random logs whose event time
/// mostly moves forward, sometimes jumps hours and sometimes steps back: each stats row is
/// the stats view folded as of its interval's end, and each metrics bucket holds what the
/// stats as of its end minus the stats as of its start count (two views, one truth).
@Suite(.timeLimit(.minutes(5))) struct SeriesPropertyTests {
    @Test(arguments: [5, 17, 29] as [UInt64])
    func seriesRowsEqualSeparateAsOfAnswers(seed: UInt64) async throws {
        try await withTallyFixture { fixture in
            let events = RandomEvents.make(count: 240, seed: seed)
            for timed in events { _ = try await fixture.log.append(to: timed.stream, events: [timed.proposed]) }
            let head = LogPosition(events.count)
            #expect(await fixture.hub.stats.waitForPosition(head, timeout: .seconds(60)))
            #expect(await fixture.hub.metrics.waitForPosition(head, timeout: .seconds(60)))
            let times = events.map(\.at)
            let hour: Int64 = 3_600_000_000
            let from = (times.min()! / hour) * hour - hour
            let until = (times.max()! / hour + 2) * hour
            let (fromText, untilText) = (EventTime.iso8601(micros: from), EventTime.iso8601(micros: until))
            let admin = fixture.adminToken
            try await fixture.makeApplication().test(.router) { client in
                // Stats every 3 hours (the last interval cut at `until`).
                let uri = "/api/v1/system/stats/series?every=3h&from=\(fromText)&until=\(untilText)"
                let response = try await client.execute(uri: uri, method: .get, headers: [.authorization: "Bearer \(admin)"])
                #expect(response.status == .ok, "\(String(buffer: response.body))")
                let rows = try JSONDecoder().decode(StatsRows.self, from: Data(response.body.readableBytesView)).rows
                #expect(rows.count == Int((until - from + 3 * hour - 1) / (3 * hour)))
                for row in rows {
                    let end = try EventTime.parseISO8601(row.until)
                    let answer = try await AsOf.fold(SystemStatsProjection.self, from: fixture.log, checkpoints: nil, at: .before(end))
                    #expect(row.stats == answer.projection.makeView(), "row until \(row.until)")
                    #expect(row.position == answer.position)
                }
                // Hourly metrics buckets against the stats as of each bucket's bounds.
                let metrics = try await Self.get(client, "/api/v1/system/metrics/series?resolution=hour&from=\(fromText)&until=\(untilText)", admin)
                let buckets = try #require(metrics["buckets"] as? [[String: Any]])
                // Every hour from `from` to the newest event's hour; none past it.
                #expect(buckets.count == Int(((times.max()! / hour + 1) * hour - from) / hour))
                var before = try await AsOf.fold(SystemStatsProjection.self, from: fixture.log, checkpoints: nil, at: .before(from)).projection.makeView()
                for bucket in buckets {
                    let start = try EventTime.parseISO8601(try #require(bucket["start"] as? String))
                    let after = try await AsOf.fold(SystemStatsProjection.self, from: fixture.log, checkpoints: nil, at: .before(start + hour))
                        .projection.makeView()
                    let label = EventTime.iso8601(micros: start)
                    #expect((bucket["searches"] as? Int) == Int(after.searches.total - before.searches.total), "\(label)")
                    #expect((bucket["cache_hits"] as? Int) == Int(after.searches.cacheHits - before.searches.cacheHits), "\(label)")
                    #expect((bucket["unlocks"] as? Int) == Int(after.unlocks.total - before.unlocks.total), "\(label)")
                    #expect((bucket["credits_spent"] as? Int) == Int(after.credits.spent - before.credits.spent), "\(label)")
                    let cdn = try #require(bucket["cdn"] as? [String: [String: Int]])
                    for priority in CdnPriority.allCases {
                        let (a, b) = (after.cdn.byPriority[priority.rawValue], before.cdn.byPriority[priority.rawValue])
                        #expect(cdn[priority.rawValue]?["queued"] == Int((a?.queued ?? 0) - (b?.queued ?? 0)), "\(label) \(priority)")
                        #expect(cdn[priority.rawValue]?["failed"] == Int((a?.failed ?? 0) - (b?.failed ?? 0)), "\(label) \(priority)")
                    }
                    before = after
                }
            }
        }
    }

    struct StatsRows: Decodable {
        struct Row: Decodable {
            var until: String
            var position: LogPosition
            var stats: SystemStats
        }
        var rows: [Row]
    }

    static func get(_ client: any TestClientProtocol, _ uri: String, _ token: String) async throws -> [String: Any] {
        let response = try await client.execute(uri: uri, method: .get, headers: [.authorization: "Bearer \(token)"])
        #expect(response.status == .ok, "\(uri): \(String(buffer: response.body))")
        return try #require(try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])
    }
}
