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

/// The dashboard in a real browser: Debian's headless Chromium, driven over the DevTools
/// protocol by scripts/dashboard-browser.py (the venv's python with websocket-client),
/// against a live server with a workload of every kind. The script reports what the page
/// showed; this test compares it with the JSON API. Without Chromium or the venv this
/// fails with the way to get them; it never skips. Screenshots land in .build/dashboard/.
@Suite(.timeLimit(.minutes(5)))
struct DashboardBrowserTests {
    typealias Fixture = TallyFixture<OutageStore<FileLog>>

    @Test func theDashboardShowsTheAPIsNumbersFollowsNewEventsAndSaysStaleInAnOutage() async throws {
        let chromium = try ExternalTools.chromium()
        let python = try ExternalTools.python()
        let screenshots = ExternalTools.repositoryRoot + "/.build/dashboard"
        try await withTallyFixture(store: { directory in OutageStore(base: try FileLog(directory: directory + "/log", options: .init(fsync: .never))) }) {
            (fixture: Fixture) in
            try await fixture.makeApplication().test(.live) { client in
                let base = "http://127.0.0.1:\(try #require(client.port))"
                let head = try await Self.seed(fixture, client)
                let stats = try await Self.get(client, "/api/v1/system/stats", fixture.adminToken, after: head)
                let balance = try await Self.get(client, "/api/v1/credits/balance", fixture.aliceToken, after: head)
                try await withTemporaryDirectory { directory in
                    let tokens = directory.sub("tokens.json")
                    try JSONSerialization.data(withJSONObject: ["admin": fixture.adminToken, "user": fixture.aliceToken,
                                                                "auditor": fixture.auditorToken, "stream": "user-alice"])
                        .write(to: URL(fileURLWithPath: tokens))
                    let driver = [ExternalTools.repositoryRoot + "/scripts/dashboard-browser.py", "--chromium", chromium, "--base", base,
                                  "--tokens", tokens, "--out", screenshots]
                    let main = try await Self.run(python, driver + ["--phase", "main"], directory)
                    try await Self.checkMain(main, stats: stats, balance: balance, fixture: fixture, client: client)

                    // The store goes away: a tail notices at its next batch (one appended
                    // behind the server's back wakes it), the views report it and stay.
                    fixture.store.down = true
                    let wake = DomainEvent.creditsGranted(.init(user: "alice", amount: 1, reason: "wake"))
                    _ = try await fixture.store.base.append(to: wake.stream, events: [wake.proposed(actor: "test")])
                    try await waitUntil("the views report the store unavailable") {
                        fixture.hub.stats.state == .storeUnavailable && fixture.hub.metrics.state == .storeUnavailable
                    }
                    let before = try await Self.get(client, "/api/v1/system/stats", fixture.adminToken)
                    let outage = try await Self.run(python, driver + ["--phase", "outage"], directory)
                    #expect(outage["status"] as? String == "stale", "\(outage)")
                    #expect((outage["banner"] as? String)?.hasPrefix("Stale") == true, "\(outage)")
                    #expect((outage["projection_states"] as? [String])?.contains("storeUnavailable") == true, "\(outage)")
                    // The last values are still there, and they are the API's.
                    Self.expectSameNumbers(outage["stats"] as? [String: [String]], before, "during the outage")
                    Self.expectNoErrors(outage, allowingFailedLoads: true)
                    fixture.store.down = false
                }
            }
        }
    }

    static func checkMain(_ report: [String: Any], stats: [String: Any], balance: [String: Any], fixture: Fixture,
                          client: any TestClientProtocol) async throws {
        Self.expectNoErrors(report, allowingFailedLoads: false)
        let admin = try #require(report["admin"] as? [String: Any], "\(report)")
        Self.expectSameNumbers(admin["stats"] as? [String: [String]], stats, "admin")
        #expect(admin["status"] as? String == "live")
        let charts = try #require(admin["charts"] as? [String: Int])
        for chart in ["chart-searches", "chart-analyses", "chart-cdn", "chart-latency", "chart-health"] {
            #expect((charts[chart] ?? 0) > 0, "\(chart) drew no path: \(charts)")
        }
        #expect(admin["alert_lines"] as? Int == 3)
        #expect((admin["projections"] as? [String])?.sorted() == ["metrics", "system-stats", "unlocked-profiles"])
        #expect((admin["timeline"] as? Int ?? 0) >= 2, "alerts and breaker transitions: \(admin)")
        #expect(admin["reset_visible"] as? Bool == true)
        let searches = try #require(int(stats["searches"] as? [String: Any], "total"))
        #expect(admin["searches_after_append"] as? String == "\(searches + 1)", "the page followed the new search")
        #expect((admin["reset_result"] as? String)?.hasPrefix("reset: the breaker is") == true, "\(admin)")
        let phone = try #require(report["admin_phone"] as? [String: Any])
        #expect((phone["overflow"] as? Int ?? 1) <= 0, "the phone viewport scrolls sideways: \(phone)")
        #expect(((phone["charts"] as? [String: Int])?["chart-searches"] ?? 0) > 0)
        let user = try #require(report["user"] as? [String: Any])
        #expect(user["reset_present"] as? Bool == false && user["charts_visible"] as? Bool == false, "\(user)")
        #expect(user["balance"] as? String == int(balance, "balance").map(String.init), "\(user) \(balance)")
        #expect((user["unlocked"] as? [String])?.first?.hasPrefix("natgeo") == true, "\(user)")
        #expect((user["phone_overflow"] as? Int ?? 1) <= 0)
        let auditor = try #require(report["auditor"] as? [String: Any])
        let digest = try await Self.get(client, "/api/v1/audit/digest", fixture.auditorToken)
        #expect(auditor["digest_position"] as? String == int(digest, "position").map(String.init), "\(auditor) \(digest)")
        #expect(auditor["digest_hash"] as? String == digest["chain_hash"] as? String)
        #expect((auditor["events"] as? Int ?? 0) > 0 && (auditor["event_json"] as? [String: Any])?["type"] != nil, "\(auditor)")
        #expect(auditor["reset_present"] as? Bool == false)
        for file in ["dashboard-admin-1280", "dashboard-admin-390", "dashboard-user-1280", "dashboard-user-390", "dashboard-auditor-1280"] {
            #expect(((report["screenshots"] as? [String]) ?? []).contains { $0.hasSuffix(file + ".png") }, "\(file)")
        }
    }

    /// Every figure the page shows equals the API's (integers exactly, ratios as numbers).
    static func expectSameNumbers(_ page: [String: [String]]?, _ api: [String: Any], _ label: String) {
        guard let page, page.count >= 10 else {
            Issue.record("\(label): the page shows no stats: \(String(describing: page))")
            return
        }
        for (key, shown) in page where key != "system.status" {
            let path = key.split(separator: ".").map(String.init)
            var value: Any? = api
            for part in path { value = (value as? [String: Any])?[part] ?? ((value as? [String: Any])?["by_priority"] as? [String: Any])?[part] }
            guard let expected = (value as? NSNumber)?.doubleValue, let served = Double(shown[0]) else {
                Issue.record("\(label): \(key) is \(shown) on the page and \(String(describing: value)) in the API")
                continue
            }
            #expect(abs(served - expected) < 1e-9, "\(label): \(key) is \(shown) on the page and \(expected) in the API")
        }
        #expect(page["system.status"]?.first == (api["system"] as? [String: Any])?["status"] as? String, "\(label)")
    }

    static func expectNoErrors(_ report: [String: Any], allowingFailedLoads: Bool) {
        let errors = (report["console_errors"] as? [String]) ?? ["no console_errors in \(report)"]
        let counted = allowingFailedLoads ? errors.filter { !$0.hasPrefix("log: Failed to load resource") } : errors
        #expect(counted.isEmpty, "console errors: \(errors)")
    }

    static func run(_ python: String, _ arguments: [String], _ directory: TemporaryDirectory) async throws -> [String: Any] {
        let result = try await runProcess(python, arguments, environment: ["PATH": "/usr/bin:/bin", "HOME": directory.sub("home")])
        let line = result.stdout.split(separator: "\n").last.map(String.init) ?? ""
        let report = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
        guard result.status == 0, let report else {
            throw TestFailure("the browser driver failed (exit \(result.status)): \(result.stdout.suffix(4_000)) \(result.stderr.suffix(4_000))")
        }
        return report
    }

    static func get(_ client: any TestClientProtocol, _ uri: String, _ token: String, after: Int? = nil) async throws -> [String: Any] {
        var headers: HTTPFields = [.authorization: "Bearer \(token)"]
        if let after { headers[.tallyAfter] = "\(after)" }
        let response = try await client.execute(uri: uri, method: .get, headers: headers)
        #expect(response.status == .ok, "\(uri): \(String(buffer: response.body))")
        return try json(response)
    }

    /// A workload of every kind through the API: grants, searches, an unlock, analyses, CDN
    /// jobs, health samples over the alert lines and a breaker transition. The last position.
    static func seed(_ fixture: Fixture, _ client: any TestClientProtocol) async throws -> Int {
        var position = 0
        func post(_ uri: String, _ token: String, _ body: Any) async throws {
            let response = try await send(client, .post, uri, token: token, body: body)
            #expect(response.status == .ok || response.status == .created, "\(uri): \(String(buffer: response.body))")
            position = max(position, try int(json(response), "position") ?? 0)
        }
        try await post("/api/v1/credits/grant", fixture.adminToken, ["user": "alice", "amount": 10, "reason": "test"])
        for (name, from) in [("natgeo", "cache"), ("nasa", "fresh"), ("natgeo", "cache")] {
            try await post("/api/v1/creator/search/\(name)", fixture.aliceToken, ["served_from": from, "duration_ms": 40, "found": true])
        }
        try await post("/api/v1/creator/unlock/natgeo", fixture.aliceToken, [String: Any]())
        try await post("/api/v1/events/profiles", fixture.serviceToken, ["events": [profileRefreshed("natgeo"), profileRefreshed("nasa")]])
        try await post("/api/v1/events/analysis", fixture.serviceToken, ["events": [analysisCompleted("natgeo", post: "p1"), analysisFailed("natgeo", post: "p2")]])
        try await post("/api/v1/events/cdn", fixture.serviceToken, ["events": [cdnQueued("j1"),
            ["type": "CdnJobQueued", "data": ["job_id": "j2", "priority": "low", "kind": "post"]],
            ["type": "CdnJobSucceeded", "data": ["job_id": "j1", "priority": "high", "kind": "avatar", "duration_ms": 80]]]])
        try await post("/api/v1/events/health", fixture.serviceToken, ["events": [
            ["type": "HealthSampled", "data": ["component": "ai-worker", "status": "degraded", "memory_pct": 88, "cpu_pct": 70, "disk_pct": 40, "latency_ms": 12]],
            ["type": "HealthSampled", "data": ["component": "database", "status": "ok", "memory_pct": 30, "cpu_pct": 20, "disk_pct": 66, "latency_ms": 2]],
            ["type": "CircuitBreakerChanged", "data": ["component": "database", "state": "open", "reason": "timeouts"]],
        ]])
        return position
    }
}

extension ExternalTools {
    /// Chromium: TALLY_TEST_CHROMIUM, else Debian's /usr/bin/chromium (`make test` installs it).
    static func chromium() throws -> String {
        let environment = ProcessInfo.processInfo.environment
        let path = environment["TALLY_TEST_CHROMIUM"].flatMap { $0.isEmpty ? nil : $0 } ?? "/usr/bin/chromium"
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw TestFailure("chromium not found at \(path): run `make test` (it installs Debian's chromium), or set TALLY_TEST_CHROMIUM")
        }
        return path
    }
}
