import EventLog
import Events
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Projections
import TallyTestSupport
import Testing
@testable import API

/// While the store is down, the stats series still answers the rows the stats runner keeps
/// (hour ends, the view itself), marked stale, the same rows as before the outage; a series
/// that needs a fold is refused with `store_unavailable`, not answered from guesses.
@Suite(.timeLimit(.minutes(5))) struct StatsSeriesOutageTests {
    typealias Fixture = TallyFixture<OutageStore<FileLog>>
    static let hour: Int64 = 3_600_000_000

    @Test func theRunnersHourlyRowsAnswerWhileTheStoreIsDownAndAFoldIsRefused() async throws {
        try await withTallyFixture(store: { directory in OutageStore(base: try FileLog(directory: directory + "/log", options: .init(fsync: .never))) }) {
            (fixture: Fixture) in
            let start = try EventTime.parseISO8601("2026-10-01T00:00:00Z")
            for i in 0..<30 {
                let event = DomainEvent.creditsGranted(.init(user: "u\(i % 3)", amount: Int64(i + 1), reason: "t"))
                _ = try await fixture.store.append(to: event.stream, events: [event.proposed(recordedAt: start + Int64(i) * Self.hour / 3)])
            }
            #expect(await fixture.hub.stats.waitForPosition(30, timeout: .seconds(60)))
            let admin: HTTPFields = [.authorization: "Bearer " + fixture.adminToken]
            let hourly = "/api/v1/system/stats/series?every=1h&from=2026-10-01&until=2026-10-01T10:00:00Z"
            try await fixture.makeApplication().test(.router) { client in
                let before = try await client.execute(uri: hourly, method: .get, headers: admin)
                #expect(before.status == .ok)
                let rowsBefore = try Self.rows(before)
                #expect(rowsBefore.count == 10)

                fixture.store.down = true
                // The runner's tail notices at its next batch.
                let wake = DomainEvent.creditsGranted(.init(user: "u1", amount: 1, reason: "wake"))
                _ = try await fixture.store.base.append(to: wake.stream, events: [wake.proposed(actor: "test")])
                try await waitUntil("the stats view reports the store unavailable") { fixture.hub.stats.state == .storeUnavailable }
                let during = try await client.execute(uri: hourly, method: .get, headers: admin)
                #expect(during.status == .ok, "\(String(buffer: during.body))")
                #expect(try Self.rows(during) == rowsBefore)
                #expect(String(buffer: during.body).hasSuffix(#""stale":true}"#))
                // Quarter hours are not kept: they would need the log.
                let quarter = try await client.execute(uri: hourly.replacingOccurrences(of: "1h", with: "15m"), method: .get, headers: admin)
                #expect(quarter.status == .serviceUnavailable, "\(String(buffer: quarter.body))")
                #expect(String(buffer: quarter.body).contains("store_unavailable"))
                fixture.store.down = false
            }
        }
    }

    /// The response's rows, each as its JSON text.
    static func rows(_ response: TestResponse) throws -> [String] {
        let object = try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]
        let rows = try #require(object?["rows"] as? [[String: Any]])
        return try rows.map { String(decoding: try JSONSerialization.data(withJSONObject: $0, options: .sortedKeys), as: UTF8.self) }
    }
}
