import API
import Foundation
import Hummingbird
import HummingbirdTesting
import TallyTestSupport
import Testing

@Suite("Worker reports: batches, validation, bounds", .timeLimit(.minutes(5)))
struct ReportTests {
    static func report(_ client: any TestClientProtocol, _ fixture: APIFixture, _ endpoint: String, _ items: [[String: Any]],
                       key: String? = nil) async throws -> TestResponse {
        try await send(client, .post, "/api/v1/events/\(endpoint)", token: fixture.serviceToken, body: ["events": items],
                       key.map { [.idempotencyKey: $0] } ?? [:])
    }

    @Test("an analysis batch of 3 writes 3 events and the stats reflect them")
    func analysisBatch() async throws {
        try await withAPI { fixture, client in
            let items = [analysisCompleted("natgeo", post: "p1"), analysisCompleted("natgeo", post: "p2", sentiment: -0.25),
                         analysisFailed("nasa", post: "p9")]
            let response = try await Self.report(client, fixture, "analysis", items)
            #expect(response.status == .created, "\(String(buffer: response.body))")
            let body = try json(response)
            #expect(int(body, "events") == 3)
            #expect(body["replayed"] as? Bool == false)
            let positions = try #require(ints(body["positions"]))
            #expect(positions == [1, 2, 3])
            #expect(int(body, "position") == 3)
            #expect(fixture.head == 3)

            let stats = try await send(client, .get, "/api/v1/system/stats", token: fixture.adminToken, [.tallyAfter: "3"])
            #expect(stats.status == .ok)
            let view = try expectFreshness(stats)
            #expect(view["stale"] as? Bool == false)
            let analyses = view["analyses"] as? [String: Any]
            #expect(int(analyses, "completed") == 2, "\(view)")
            #expect(int(analyses, "failed") == 1, "\(view)")
            let posts = view["posts"] as? [String: Any]
            #expect(int(posts, "total") == 3)
            #expect(int(posts, "failed_unrecovered") == 1)
            let profiles = view["profiles"] as? [String: Any]
            #expect(int(profiles, "total") == 2)
            #expect(int(profiles, "with_ai_analysis") == 1)
        }
    }

    @Test("each endpoint takes its own types", arguments: [
        ("profiles", #"{"type":"ProfileRefreshed","data":{"username":"natgeo","followers":1,"following":2,"posts_count":3,"verified":true,"category":"nature"}}"#),
        ("analysis", #"{"type":"PostAnalysisCompleted","data":{"username":"natgeo","post_id":"p1","sentiment":0.1,"language":"en","category":"x","duration_ms":5}}"#),
        ("cdn", #"{"type":"CdnJobSucceeded","data":{"job_id":"j1","priority":"critical","kind":"avatar","duration_ms":40,"bytes":2048}}"#),
        ("health", #"{"type":"HealthSampled","data":{"component":"ai-worker","status":"degraded","memory_pct":50,"cpu_pct":20,"disk_pct":10,"latency_ms":3.5}}"#),
        ("health", #"{"type":"CircuitBreakerChanged","data":{"component":"store","state":"open","reason":"timeouts"}}"#),
    ])
    func endpointTypes(endpoint: String, item: String) async throws {
        try await withAPI { fixture, client in
            let response = try await send(client, .post, "/api/v1/events/\(endpoint)", token: fixture.serviceToken,
                                          body: #"{"events":[\#(item)]}"#)
            #expect(response.status == .created, "\(String(buffer: response.body))")
            let body = try json(response)
            #expect(int(body, "events") == 1)
            #expect(fixture.head == 1)
        }
    }

    @Test("a batch with one invalid item is 400 naming the item, and nothing is written")
    func invalidItem() async throws {
        try await withAPI { fixture, client in
            var bad = analysisCompleted("natgeo", post: "p2")
            bad["data"] = ["username": "natgeo", "post_id": "p2", "sentiment": 2.0, "language": "en", "category": "x", "duration_ms": 1]
            let items = [analysisCompleted("natgeo", post: "p1"), bad, analysisCompleted("natgeo", post: "p3")]
            let response = try await Self.report(client, fixture, "analysis", items)
            let body = try expectProblem(response, .badRequest, code: "invalid_input")
            #expect(int(body, "item") == 1, "\(body)")
            #expect(body["field"] as? String == "sentiment", "\(body)")
            #expect(fixture.head == 0)

            var missing = profileRefreshed("nasa")
            missing["data"] = ["username": "nasa"]
            let second = try await Self.report(client, fixture, "profiles", [profileRefreshed("natgeo"), profileRefreshed("esa"), missing])
            let secondBody = try expectProblem(second, .badRequest, code: "invalid_input")
            #expect(int(secondBody, "item") == 2, "\(secondBody)")
            #expect(fixture.head == 0)
        }
    }

    static let ownItem: [String: String] = [
        "profiles": #"{"type":"ProfileRefreshed","data":{"username":"natgeo","followers":1,"following":2,"posts_count":3,"verified":true,"category":"nature"}}"#,
        "analysis": #"{"type":"PostAnalysisFailed","data":{"username":"natgeo","post_id":"p1","error":"x","duration_ms":1}}"#,
        "cdn": #"{"type":"CdnJobQueued","data":{"job_id":"j1","priority":"low","kind":"avatar"}}"#,
        "health": #"{"type":"HealthSampled","data":{"component":"api","status":"ok","memory_pct":1,"cpu_pct":1,"disk_pct":1,"latency_ms":1}}"#,
    ]

    @Test("a type another endpoint owns (or no endpoint) is 400 unknown_type and nothing is written", arguments: [
        ("analysis", #"{"type":"CdnJobQueued","data":{"job_id":"j1","priority":"low","kind":"avatar"}}"#),
        ("cdn", #"{"type":"PostAnalysisFailed","data":{"username":"natgeo","post_id":"p1","error":"x","duration_ms":1}}"#),
        ("profiles", #"{"type":"CreditsGranted","data":{"user":"mallory","amount":1000000,"reason":"free"}}"#),
        ("health", #"{"type":"ProfileUnlocked","data":{"user":"mallory","username":"natgeo","credits_spent":0}}"#),
        ("analysis", #"{"type":"NoSuchType","data":{}}"#),
    ])
    func foreignType(endpoint: String, item: String) async throws {
        try await withAPI { fixture, client in
            // A valid item of the endpoint's own first: the batch is refused as a whole.
            let own = try #require(Self.ownItem[endpoint])
            let response = try await send(client, .post, "/api/v1/events/\(endpoint)", token: fixture.serviceToken,
                                          body: #"{"events":[\#(own),\#(item)]}"#)
            let body = try expectProblem(response, .badRequest, code: "unknown_type")
            #expect(int(body, "item") == 1, "\(body)")
            #expect(fixture.head == 0)
        }
    }

    @Test("1,001 items is 400 batch_too_large and nothing is written; 1,000 is accepted")
    func batchBounds() async throws {
        try await withAPI { fixture, client in
            let tooMany = (0..<1_001).map { cdnQueued("job-\($0)") }
            let refused = try await Self.report(client, fixture, "cdn", tooMany)
            try expectProblem(refused, .badRequest, code: "batch_too_large")
            #expect(fixture.head == 0)

            let accepted = try await Self.report(client, fixture, "cdn", Array(tooMany.prefix(1_000)))
            #expect(accepted.status == .created, "\(String(buffer: accepted.body).prefix(300))")
            let acceptedBody = try json(accepted)
            #expect(int(acceptedBody, "events") == 1_000)
            #expect(fixture.head == 1_000)
        }
    }

    @Test("a malformed body is 400 and writes nothing", arguments: [
        "{", #"{"events": [}"#, "[]", #"{"events": {}}"#, #"{"events": [], "extra": 1}"#, #"{"items": []}"#,
        #"{"events": [{"type": "CdnJobQueued"}]}"#, #"{"events": [{"type": "CdnJobQueued", "data": []}]}"#,
        #"{"events": [1]}"#, #"{"events": [{"type":"CdnJobQueued","data":{"job_id":"j","priority":"low","kind":"a"}},]}"#,
        "", #"{"events": []}"#, "null",
    ])
    func malformedBody(body: String) async throws {
        try await withAPI { fixture, client in
            let response = try await send(client, .post, "/api/v1/events/cdn", token: fixture.serviceToken, body: body)
            #expect(response.status == .badRequest, "\(body): \(response.status) \(String(buffer: response.body))")
            #expect(response.headers[.contentType] == "application/problem+json")
            #expect(fixture.head == 0)
        }
    }

    @Test("a body over 1 MiB is 413 body_too_large and writes nothing", arguments: [
        "/api/v1/events/analysis", "/api/v1/credits/grant", "/api/v1/creator/search/natgeo",
    ])
    func bodyTooLarge(uri: String) async throws {
        try await withAPI { fixture, client in
            let token = uri.contains("events") ? fixture.serviceToken : uri.contains("grant") ? fixture.adminToken : fixture.aliceToken
            let json = uri.contains("events") ? #"{"events":[]}"# : uri.contains("grant") ? #"{"user":"a","amount":1,"reason":"x"}"# : "{}"
            let oversized = json + String(repeating: " ", count: (1 << 20) + 1 - json.utf8.count + 1)
            #expect(oversized.utf8.count > 1 << 20)
            let response = try await send(client, .post, uri, token: token, body: oversized)
            try expectProblem(response, .contentTooLarge, code: "body_too_large")
            #expect(fixture.head == 0)
        }
    }

    @Test("a body of exactly 1 MiB is within the bound")
    func bodyAtBound() async throws {
        try await withAPI { fixture, client in
            let json = #"{"events":[{"type":"CdnJobQueued","data":{"job_id":"j1","priority":"low","kind":"avatar"}}]}"#
            let body = json + String(repeating: " ", count: (1 << 20) - json.utf8.count)
            #expect(body.utf8.count == 1 << 20)
            let response = try await send(client, .post, "/api/v1/events/cdn", token: fixture.serviceToken, body: body)
            #expect(response.status == .created, "\(String(buffer: response.body))")
            #expect(fixture.head == 1)
        }
    }

    @Test("repeating a report with its Idempotency-Key writes once and answers replayed")
    func idempotentReport() async throws {
        try await withAPI { fixture, client in
            let items = [cdnQueued("j1"), cdnQueued("j2")]
            let first = try await Self.report(client, fixture, "cdn", items, key: "cdn-batch-1")
            #expect(first.status == .created)
            let original = try json(first)
            let again = try await Self.report(client, fixture, "cdn", items, key: "cdn-batch-1")
            #expect(again.status == .ok)
            let replay = try json(again)
            #expect(replay["replayed"] as? Bool == true)
            #expect(ints(replay["positions"]) == ints(original["positions"]))
            #expect(ints(replay["positions"]) == [1, 2])
            #expect(fixture.head == 2)
        }
    }
}
