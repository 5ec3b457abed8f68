@testable import API
import EventLog
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import TallyTestSupport
import Testing

/// The dashboard's routes through the real router: the page and its files (types, ETags,
/// the Content-Security-Policy), the series endpoints (roles, bounds, freshness, every
/// bucket of the range), and the live stream (its feed without I/O, then over a socket).
@Suite(.timeLimit(.minutes(5)))
struct DashboardRouteTests {
    static let files = [
        ("/", "text/html; charset=utf-8"), ("/dashboard", "text/html; charset=utf-8"), ("/dashboard/app.js", "text/javascript; charset=utf-8"),
        ("/dashboard/charts.js", "text/javascript; charset=utf-8"), ("/dashboard/app.css", "text/css; charset=utf-8"),
    ]

    @Test func thePageAndItsFilesComeWithTheirTypeAnETagAndAStrictPolicy() async throws {
        try await withAPI { _, client in
            for (path, type) in Self.files {
                let response = try await client.execute(uri: path, method: .get)
                #expect(response.status == .ok, "\(path)")
                #expect(response.headers[.contentType] == type, "\(path)")
                let policy = response.headers[.contentSecurityPolicy] ?? ""
                #expect(policy.contains("default-src 'none'") && policy.contains("script-src 'self'") && policy.contains("connect-src 'self'"), "\(policy)")
                #expect(!policy.contains("unsafe") && !policy.contains("http"), "\(policy)")
                #expect(response.headers[HTTPField.Name("X-Content-Type-Options")!] == "nosniff")
                let etag = try #require(response.headers[.eTag], "\(path)")
                #expect(response.body.readableBytes > 100)
                let again = try await client.execute(uri: path, method: .get, headers: [.ifNoneMatch: etag])
                #expect(again.status == .notModified && again.body.readableBytes == 0, "\(path)")
                let other = try await client.execute(uri: path, method: .get, headers: [.ifNoneMatch: "\"0\""])
                #expect(other.status == .ok)
            }
            // Nothing inline and nothing from elsewhere: every script and sheet is one of ours.
            let page = String(buffer: try await client.execute(uri: "/", method: .get).body)
            #expect(!page.contains("<script>") && !page.contains("style=") && !page.contains("http"))
            for reference in ["/dashboard/app.js", "/dashboard/charts.js", "/dashboard/app.css"] { #expect(page.contains("\"\(reference)\"")) }
        }
    }

    @Test func metricsSeriesAnswersEveryBucketOfItsRangeWithFreshness() async throws {
        try await withAPI { fixture, client in
            let position = try await Self.searchTwice(fixture, client)
            for (resolution, count) in [("hour", 24), ("minute", 60)] {
                let response = try await send(client, .get, "/api/v1/system/metrics/series?resolution=\(resolution)", token: fixture.adminToken,
                                              [.tallyAfter: "\(position)"])
                #expect(response.status == .ok, "\(String(buffer: response.body))")
                let body = try expectFreshness(response)
                let buckets = try #require(body["buckets"] as? [[String: Any]])
                // Every bucket of the default range, the empty ones as zeros, oldest first.
                #expect(buckets.count == count, "\(resolution): \(buckets.count)")
                #expect(buckets.map { int($0, "searches") ?? -1 }.reduce(0, +) == 2)
                #expect(int(buckets.last, "searches") == 2 && int(buckets.last, "cache_hits") == 1)
                let starts = buckets.compactMap { $0["start"] as? String }
                #expect(starts == starts.sorted() && Set(starts).count == count)
                #expect((buckets.last?["cdn"] as? [String: Any])?.keys.sorted() == ["critical", "high", "low", "medium"])
                #expect(resolution == "minute" || (buckets.last?["latency_ms"] as? [String: Any])?["search"] != nil)
            }
        }
    }

    @Test func statsSeriesRowsAreTheStatsAsOfEachIntervalsEnd() async throws {
        try await withAPI { fixture, client in
            let position = try await Self.searchTwice(fixture, client)
            let response = try await send(client, .get, "/api/v1/system/stats/series?every=1h", token: fixture.aliceToken, [.tallyAfter: "\(position)"])
            #expect(response.status == .ok, "\(String(buffer: response.body))")
            let rows = try #require(try expectFreshness(response)["rows"] as? [[String: Any]])
            #expect(rows.count == 24)
            let last = try #require(rows.last)
            #expect(int(last, "position") == position)
            #expect(int((last["stats"] as? [String: Any])?["searches"] as? [String: Any], "total") == 2)
            #expect(int((rows.first?["stats"] as? [String: Any])?["searches"] as? [String: Any], "total") == 0)
        }
    }

    @Test func seriesRefuseRangesOverTheirLimitAndMalformedParameters() async throws {
        try await withAPI { fixture, client in
            let refusals: [(String, String)] = [
                ("/api/v1/system/metrics/series?resolution=minute&from=2026-01-01&until=2026-01-03", "from"),
                ("/api/v1/system/metrics/series?resolution=hour&from=2026-01-01&until=2026-02-01", "from"),
                ("/api/v1/system/metrics/series?resolution=second", "resolution"),
                ("/api/v1/system/metrics/series?from=yesterday", "from"),
                ("/api/v1/system/metrics/series?from=2026-01-02&until=2026-01-01", "until"),
                ("/api/v1/system/stats/series?every=1m&from=2026-01-01&until=2026-01-03", "from"),
                ("/api/v1/system/stats/series?every=0h", "every"),
                ("/api/v1/system/stats/series?every=1w", "every"),
                ("/api/v1/system/stats/series?every=h", "every"),
                ("/api/v1/system/stats/series?until=2026-13-01", "until"),
            ]
            for (uri, field) in refusals {
                let response = try await send(client, .get, uri, token: fixture.adminToken)
                let problem = try expectProblem(response, .badRequest, code: "invalid_input")
                #expect(problem["field"] as? String == field, "\(uri): \(problem)")
            }
            // The largest ranges still answer.
            let widest = try await send(client, .get, "/api/v1/system/metrics/series?resolution=minute&from=2026-01-01&until=2026-01-02", token: fixture.adminToken)
            #expect(widest.status == .ok)
        }
    }

    @Test func seriesAndTheLiveStreamHaveTheRolesOfTheirNeighbours() async throws {
        try await withAPI { fixture, client in
            let cases: [(String, [String: HTTPResponse.Status])] = [
                ("/api/v1/system/metrics/series", ["user": .forbidden, "admin": .ok, "auditor": .forbidden, "service": .forbidden]),
                ("/api/v1/system/stats/series", ["user": .ok, "admin": .ok, "auditor": .forbidden, "service": .forbidden]),
            ]
            let tokens = ["user": fixture.aliceToken, "admin": fixture.adminToken, "auditor": fixture.auditorToken, "service": fixture.serviceToken]
            for (path, expected) in cases {
                for (role, status) in expected {
                    let response = try await send(client, .get, path, token: tokens[role])
                    #expect(response.status == status, "\(path) as \(role): \(String(buffer: response.body))")
                }
                #expect(try await send(client, .get, path, token: nil).status == .unauthorized)
            }
            #expect(try await send(client, .get, "/api/v1/live", token: fixture.serviceToken).status == .forbidden)
            #expect(try await send(client, .get, "/api/v1/live", token: nil).status == .unauthorized)
        }
    }

    // MARK: - The live stream

    @Test func theFeedHandsTheNewestFrameToABoundedNumberOfSubscribersAndFinishesThem() async throws {
        let feed = LiveFeed(maximum: 2)
        feed.publish(ByteBuffer(string: "one"))
        let a = try #require(feed.subscribe())
        let b = try #require(feed.subscribe())
        #expect(feed.subscribe() == nil ? true : false)
        #expect(feed.subscriberCount == 2)
        feed.publish(ByteBuffer(string: "two"))
        feed.finish()
        var seen: [[String]] = []
        for subscription in [a, b] {
            var frames: [String] = []
            for await frame in subscription.frames { frames.append(String(buffer: frame)) }
            seen.append(frames)
        }
        // The frame published before subscribing comes first; the streams end at finish().
        #expect(seen == [["one", "two"], ["one", "two"]])
        #expect(feed.subscribe() == nil ? true : false)
        #expect(feed.subscriberCount == 0)
    }

    @Test func theLiveStreamSendsPositionsAndRefusesPastItsLimit() async throws {
        try await withAPI(.live, configure: { $0.maxLiveStreams = 1 }) { fixture, client in
            let position = try await Self.searchTwice(fixture, client)
            let port = try #require(client.port)
            let request = "GET /api/v1/live HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(fixture.adminToken)\r\n\r\n"
            let first = try await RawConnection.open(port: port)
            try await first.send(request)
            let (answer, found) = try await first.readUntil("\"position\":\(position)")
            #expect(found, "\(answer)")
            #expect(answer.hasPrefix("HTTP/1.1 200") && answer.lowercased().contains("content-type: text/event-stream"), "\(answer)")
            #expect(answer.contains("event: positions\ndata: {") && answer.contains("\"name\":\"system-stats\""), "\(answer)")
            let refused = try await rawHTTPExchange(port: port, request)
            #expect(refused.hasPrefix("HTTP/1.1 503") && refused.contains("\"code\":\"busy\""), "\(refused)")
            // A closed stream frees its place (at the next frame's write).
            first.close()
            try await waitUntil("the closed stream's place is free") { fixture.api.live.subscriberCount == 0 }
            let again = try await RawConnection.open(port: port)
            defer { again.close() }
            try await again.send(request)
            #expect(try await again.readUntil("event: positions").found)
        }
    }

    /// Two searches (one from the cache); the position of the second.
    static func searchTwice(_ fixture: APIFixture, _ client: any TestClientProtocol) async throws -> Int {
        var position = 0
        for servedFrom in ["cache", "fresh"] {
            let response = try await send(client, .post, "/api/v1/creator/search/natgeo", token: fixture.aliceToken,
                                          body: ["served_from": servedFrom, "duration_ms": 12, "found": true])
            #expect(response.status == .ok, "\(String(buffer: response.body))")
            position = try #require(int(try json(response), "position"))
        }
        return position
    }
}
