import API
import Commands
import EventLog
import Foundation
import Hummingbird
import HummingbirdTesting
import Synchronization
import TallyTestSupport
import Testing

/// A wall clock the test moves by hand: health samples are aged against it, never slept for.
final class ManualWallClock: Sendable {
    private let now: Mutex<Int64>
    init(_ micros: Int64) { now = Mutex(micros) }
    func set(_ micros: Int64) { now.withLock { $0 = micros } }
    var wallClock: WallClock { WallClock { [self] in now.withLock { $0 } } }
}

func healthSample(_ component: String, _ status: String, memory: Double = 10) -> [String: Any] {
    ["type": "HealthSampled",
     "data": ["component": component, "status": status, "memory_pct": memory, "cpu_pct": 5, "disk_pct": 20, "latency_ms": 2]]
}

func breakerChanged(_ component: String, _ state: String, _ reason: String) -> [String: Any] {
    ["type": "CircuitBreakerChanged", "data": ["component": component, "state": state, "reason": reason]]
}

func cdnFinished(_ job: String, _ outcome: String) -> [String: Any] {
    var data: [String: Any] = ["job_id": job, "priority": "high", "kind": "avatar", "duration_ms": 40]
    if outcome == "CdnJobFailed" { data["error"] = "origin timeout" }
    return ["type": outcome, "data": data]
}

/// The seed's monitoring routes, each from events the test appends, with its freshness, its
/// roles, and the staleness bound applied at the edge with an injected clock.
@Suite("Monitoring routes from the views", .timeLimit(.minutes(5)))
struct MonitoringRouteTests {
    static let routes = ["/api/v1/system/health/comprehensive", "/api/v1/system/performance/report?hours=2", "/api/v1/system/monitoring/status",
                         "/api/v1/system/recovery/history", "/api/v1/cdn/health", "/api/v1/cdn/statistics"]

    /// Health of db (memory at 90 %: an emergency alert), a degraded ai-worker and an ok
    /// cdn-worker; db's breaker opened then closed; three CDN jobs, one succeeded, one failed.
    static func report(_ fixture: APIFixture, _ client: any TestClientProtocol) async throws -> Int {
        let health: [String: Any] = ["events": [healthSample("db", "ok", memory: 90), healthSample("ai-worker", "degraded"),
                                                healthSample("cdn-worker", "ok"), breakerChanged("db", "open", "3 failures"),
                                                breakerChanged("db", "closed", "trial succeeded")]]
        let written = try await send(client, .post, "/api/v1/events/health", token: fixture.serviceToken, body: health)
        #expect(written.status == .created, "\(String(buffer: written.body))")
        let cdn: [String: Any] = ["events": [cdnQueued("j1"), cdnQueued("j2"), cdnQueued("j3"), cdnFinished("j1", "CdnJobSucceeded"),
                                             cdnFinished("j2", "CdnJobFailed")]]
        let jobs = try await send(client, .post, "/api/v1/events/cdn", token: fixture.serviceToken, body: cdn)
        #expect(jobs.status == .created, "\(String(buffer: jobs.body))")
        return try #require(int(try json(jobs), "position"))
    }

    static func get(_ client: any TestClientProtocol, _ fixture: APIFixture, _ path: String, after: Int,
                    sourceLocation: SourceLocation = #_sourceLocation) async throws -> [String: Any] {
        let response = try await send(client, .get, path, token: fixture.adminToken, [.tallyAfter: String(after)])
        #expect(response.status == .ok, "\(path): \(String(buffer: response.body))", sourceLocation: sourceLocation)
        let body = try expectFreshness(response, sourceLocation: sourceLocation)
        #expect(body["stale"] as? Bool == false, sourceLocation: sourceLocation)
        return body
    }

    @Test("each monitoring route answers what the appended events say")
    func content() async throws {
        let clock = ManualWallClock(0)
        try await withAPI(configure: { $0.wallClock = clock.wallClock }) { fixture, client in
            // Samples dated after the clock are not stale (another machine's clock ahead).
            let head = try await Self.report(fixture, client)

            let health = try await Self.get(client, fixture, "/api/v1/system/health/comprehensive", after: head)
            #expect(health["status"] as? String == "degraded" && health["ai_system"] as? String == "degraded")
            let components = try #require(health["components"] as? [String: [String: Any]])
            #expect(Set(components.keys) == ["db", "ai-worker", "cdn-worker"])
            #expect(components["db"]?["status"] as? String == "ok" && components["db"]?["breaker"] as? String == "closed")
            #expect(components["ai-worker"]?["status"] as? String == "degraded")
            let counts = health["status_counts"] as? [String: Any]
            #expect(int(counts, "ok") == 2 && int(counts, "degraded") == 1 && int(counts, "stale") == 0 && int(counts, "down") == 0)
            let alerts = health["alerts"] as? [String: Any]
            #expect(int(alerts, "total") == 2 && int(alerts, "emergency") == 1 && int(alerts, "warning") == 1, "\(alerts ?? [:])")
            #expect((health["projections"] as? [Any])?.count == 3)
            #expect(int(health["server"] as? [String: Any], "known_head") == head)
            #expect(int(health, "stale_after_seconds") == 90)

            let report = try await Self.get(client, fixture, "/api/v1/system/performance/report?hours=2", after: head)
            #expect(int(report, "hours") == 2 && int(report, "breaker_transitions") == 2)
            let cdnSummary = (report["summary"] as? [String: Any])?["cdn"] as? [String: Any]
            #expect(int(cdnSummary, "succeeded") == 1 && int(cdnSummary, "failed") == 1 && cdnSummary?["success_rate"] as? Double == 0.5)
            #expect(int((report["latency_ms"] as? [String: Any])?["cdn"] as? [String: Any], "count") == 2)
            #expect(report["from"] is String && report["to"] is String)
            for hours in ["0", "721", "abc", "-1"] {
                let refused = try await send(client, .get, "/api/v1/system/performance/report?hours=\(hours)", token: fixture.adminToken)
                let problem = try expectProblem(refused, .badRequest, code: "invalid_input")
                #expect(problem["field"] as? String == "hours")
            }

            let status = try await Self.get(client, fixture, "/api/v1/system/monitoring/status", after: head)
            #expect(status["status"] as? String == "degraded" && status["breaker"] as? String == "closed")
            #expect(int(status["health_sampling"] as? [String: Any], "components") == 3)
            #expect(int(status["alerts"] as? [String: Any], "total") == 2 && int(status, "breaker_transitions") == 2)

            let history = try await Self.get(client, fixture, "/api/v1/system/recovery/history", after: head)
            let transitions = try #require(history["transitions"] as? [[String: Any]])
            #expect(transitions.map { $0["state"] as? String } == ["closed", "open"], "newest first")
            #expect(transitions.first?["reason"] as? String == "trial succeeded" && transitions.first?["component"] as? String == "db")
            #expect(int(history, "total") == 2 && int(history, "kept") == 100)
            #expect((history["current"] as? [String: Any])?["db"] as? String == "closed")
            let one = try await Self.get(client, fixture, "/api/v1/system/recovery/history?limit=1", after: head)
            #expect((one["transitions"] as? [Any])?.count == 1)
            try expectProblem(try await send(client, .get, "/api/v1/system/recovery/history?limit=101", token: fixture.adminToken),
                              .badRequest, code: "invalid_input")

            let cdnHealth = try await Self.get(client, fixture, "/api/v1/cdn/health", after: head)
            #expect(cdnHealth["status"] as? String == "degraded", "a 50 % success rate: \(cdnHealth)")
            #expect(int(cdnHealth, "pending") == 1)
            let lastHour = cdnHealth["last_hour"] as? [String: Any]
            #expect(int(lastHour, "queued") == 3 && int(lastHour, "succeeded") == 1 && int(lastHour, "failed") == 1)
            #expect((cdnHealth["worker"] as? [String: Any])?["status"] as? String == "ok")

            let statistics = try await Self.get(client, fixture, "/api/v1/cdn/statistics", after: head)
            let allTime = statistics["all_time"] as? [String: Any]
            #expect(int(allTime, "queued") == 3 && int(allTime, "succeeded") == 1 && int(allTime, "failed") == 1)
            #expect(((allTime?["by_priority"] as? [String: Any])?["high"] as? [String: Any]).map { int($0, "queued") } == 3)
            #expect(int(statistics, "pending") == 1 && int(statistics["last_24h"] as? [String: Any], "succeeded") == 1)
            #expect(int(statistics["latency_ms"] as? [String: Any], "count") == 2)
        }
    }

    @Test("only admins read the monitoring routes", arguments: routes)
    func roles(path: String) async throws {
        try await withAPI { fixture, client in
            try expectProblem(try await send(client, .get, path, token: nil), .unauthorized, code: "unauthenticated")
            for token in [fixture.aliceToken, fixture.serviceToken, fixture.auditorToken] {
                try expectProblem(try await send(client, .get, path, token: token), .forbidden, code: "forbidden")
            }
            let ok = try await send(client, .get, path, token: fixture.adminToken)
            #expect(ok.status == .ok, "\(String(buffer: ok.body))")
            try expectFreshness(ok)
        }
    }

    @Test("a monitoring route over a view never built is 503 view_not_ready, as every view read", arguments: routes)
    func neverBuilt(path: String) async throws {
        try await withAPI(startRunners: false) { fixture, client in
            try await FreshnessTests.seedColdLog(fixture)
            let response = try await send(client, .get, path, token: fixture.adminToken)
            try expectProblem(response, .serviceUnavailable, code: "view_not_ready")
            #expect(response.headers[.retryAfter] != nil)
        }
    }

    /// The sample's event time, as the health route reports it.
    static func sampledAt(_ client: any TestClientProtocol, _ fixture: APIFixture, _ component: String, after: Int) async throws -> Int64 {
        let body = try await get(client, fixture, "/api/v1/system/health/comprehensive", after: after)
        let components = body["components"] as? [String: [String: Any]]
        return Int64(try #require(int(components?[component], "sampled_at_us")))
    }

    @Test("a component whose last sample is older than the bound is stale, not ok; at the bound it is still ok")
    func stalenessBound() async throws {
        let clock = ManualWallClock(0)
        try await withAPI(configure: { $0.wallClock = clock.wallClock; $0.healthStaleAfter = .seconds(60) }) { fixture, client in
            let body: [String: Any] = ["events": [healthSample("db", "ok"), healthSample("cdn-worker", "ok"), healthSample(SystemStatsProbe.ai, "ok")]]
            let written = try await send(client, .post, "/api/v1/events/health", token: fixture.serviceToken, body: body)
            let head = try #require(int(try json(written), "position"))
            let sampled = try await Self.sampledAt(client, fixture, "db", after: head)

            for (offset, stale) in [(Int64(60_000_000), false), (60_000_001, true)] {
                clock.set(sampled + offset)
                let expected = stale ? "stale" : "ok"
                let health = try json(try await send(client, .get, "/api/v1/system/health", token: fixture.adminToken))
                let db = (health["components"] as? [String: [String: Any]])?["db"]
                #expect(db?["status"] as? String == expected && db?["reported_status"] as? String == "ok", "\(db ?? [:])")
                #expect((db?["sample_age_seconds"] as? Double).map { abs($0 - Double(offset) / 1e6) < 1e-6 } == true)
                #expect((health["system"] as? [String: Any])?["status"] as? String == (stale ? "degraded" : "healthy"))

                let comprehensive = try await Self.get(client, fixture, "/api/v1/system/health/comprehensive", after: head)
                #expect(comprehensive["status"] as? String == (stale ? "degraded" : "healthy"))
                #expect(comprehensive["ai_system"] as? String == (stale ? "stale" : "operational"))
                #expect(int(comprehensive["status_counts"] as? [String: Any], "stale") == (stale ? 3 : 0))

                let monitoring = try await Self.get(client, fixture, "/api/v1/system/monitoring/status", after: head)
                #expect(int((monitoring["health_sampling"] as? [String: Any])?["status_counts"] as? [String: Any], "stale") == (stale ? 3 : 0))

                let alerts = try await Self.get(client, fixture, "/api/v1/system/alerts", after: head)
                let ageAlerts = (alerts["alerts"] as? [[String: Any]] ?? []).filter { $0["resource"] as? String == "sample_age" }
                #expect(ageAlerts.count == (stale ? 3 : 0), "\(alerts)")
                #expect(ageAlerts.allSatisfy { $0["level"] as? String == "warning" })

                let cdn = try await Self.get(client, fixture, "/api/v1/cdn/health", after: head)
                #expect(cdn["status"] as? String == (stale ? "degraded" : "unknown"), "no jobs; the worker's sample decides")
                #expect((cdn["worker"] as? [String: Any])?["status"] as? String == expected)

                let seed = try await send(client, .get, "/api/v1/simple/creator/system/stats", token: fixture.aliceToken)
                let system = (try json(seed)["stats"] as? [String: Any])?["system"] as? [String: Any]
                #expect(system?["status"] as? String == (stale ? "degraded" : "healthy"))
                #expect(system?["ai_system"] as? String == (stale ? "stale" : "operational"))
            }
        }
    }
}

enum SystemStatsProbe {
    static let ai = "ai-worker"
}
