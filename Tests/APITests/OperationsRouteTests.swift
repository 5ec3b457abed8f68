import Commands
import EventLog
import Events
import Foundation
import Hummingbird
import HummingbirdTesting
import TallyTestSupport
import Testing
@testable import API

/// The operators' and auditors' routes through the real router: what each answers after a
/// few commands and reports, CORS preflight, /metrics and its token.
@Suite(.timeLimit(.minutes(5))) struct OperationsRouteTests {
    static func json(_ buffer: ByteBuffer) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView))) as? [String: Any] ?? [:]
    }

    @Test func adminAndAuditorRoutesAnswerFromTheLogAndViews() async throws {
        try await withTallyFixture(configure: opsConfiguration) { fixture in
            let admin = try await fixture.token(.admin, "ops")
            let auditor = try await fixture.token(.auditor, "audit")
            let service = try await fixture.token(.service, "worker")
            let auth: @Sendable (String) -> HTTPFields = { token in [.authorization: "Bearer " + token] }
            let app = Application(router: fixture.api.makeRouter())
            try await app.test(.router) { client in
                let grant = ByteBuffer(string: #"{"user":"alice","amount":4,"reason":"promo"}"#)
                try await client.execute(uri: "/api/v1/credits/grant", method: .post, headers: auth(admin), body: grant) { #expect($0.status == .ok) }
                let reports = ByteBuffer(string: """
                    {"events":[{"type":"CdnJobQueued","data":{"job_id":"j1","priority":"high","kind":"avatar"}},
                    {"type":"CdnJobSucceeded","data":{"job_id":"j1","priority":"high","kind":"avatar","duration_ms":40}},
                    {"type":"CdnJobQueued","data":{"job_id":"j2","priority":"low","kind":"post"}}]}
                    """)
                try await client.execute(uri: "/api/v1/events/cdn", method: .post, headers: auth(service), body: reports) { #expect($0.status == .created) }
                let health = ByteBuffer(string: #"{"events":[{"type":"HealthSampled","data":{"component":"db","status":"ok","memory_pct":90,"cpu_pct":10,"disk_pct":20,"latency_ms":2}}]}"#)
                try await client.execute(uri: "/api/v1/events/health", method: .post, headers: auth(service), body: health) { #expect($0.status == .created) }
                var after = auth(admin)
                after[.tallyAfter] = "5"

                try await client.execute(uri: "/api/v1/cdn/metrics", method: .get, headers: after) { response in
                    let body = Self.json(response.body)
                    #expect(body["queued"] as? Int == 2 && body["succeeded"] as? Int == 1)
                    #expect(((body["by_priority"] as? [String: Any])?["high"] as? [String: Any])?["success_rate"] as? Double == 1)
                }
                try await client.execute(uri: "/api/v1/cdn/queue/status", method: .get, headers: after) { response in
                    let body = Self.json(response.body)
                    #expect(body["pending"] as? Int == 1)
                    #expect(((body["by_priority"] as? [String: Any])?["low"] as? [String: Any])?["pending"] as? Int == 1)
                }
                try await client.execute(uri: "/api/v1/system/alerts", method: .get, headers: after) { response in
                    let alerts = Self.json(response.body)["alerts"] as? [[String: Any]] ?? []
                    #expect(alerts.contains { $0["component"] as? String == "db" && $0["resource"] as? String == "memory" && $0["level"] as? String == "emergency" })
                }
                try await client.execute(uri: "/api/v1/system/monitoring/performance?hours=2", method: .get, headers: after) { response in
                    let body = Self.json(response.body)
                    #expect(body["hours"] as? Int == 2)
                    #expect(((body["latency_ms"] as? [String: Any])?["cdn"] as? [String: Any])?["count"] as? Int == 1)
                }
                try await client.execute(uri: "/api/v1/system/monitoring/performance?hours=721", method: .get, headers: auth(admin)) { #expect($0.status == .badRequest) }
                try await client.execute(uri: "/api/v1/system/health", method: .get, headers: auth(admin)) { response in
                    let body = Self.json(response.body)
                    #expect((body["store"] as? [String: Any])?["head_position"] as? Int == 5)
                    #expect((body["projections"] as? [[String: Any]])?.count == 3)
                    #expect((body["components"] as? [String: Any])?["db"] != nil)
                }

                try await client.execute(uri: "/api/v1/audit/events?limit=2", method: .get, headers: auth(auditor)) { response in
                    let body = Self.json(response.body)
                    let events = body["events"] as? [[String: Any]] ?? []
                    #expect(events.map { $0["position"] as? Int } == [1, 2])
                    #expect(events.first?["type"] as? String == "CreditsGranted")
                    #expect(body["next_from_position"] as? Int == 3)
                }
                try await client.execute(uri: "/api/v1/audit/events?type=CdnJobQueued", method: .get, headers: auth(auditor)) { response in
                    let events = Self.json(response.body)["events"] as? [[String: Any]] ?? []
                    #expect(events.count == 2 && events.allSatisfy { $0["type"] as? String == "CdnJobQueued" })
                }
                try await client.execute(uri: "/api/v1/audit/streams/user-alice", method: .get, headers: auth(auditor)) { response in
                    let events = Self.json(response.body)["events"] as? [[String: Any]] ?? []
                    #expect(events.count == 1 && (events.first?["data"] as? [String: Any])?["amount"] as? Int == 4)
                }
                try await client.execute(uri: "/api/v1/audit/digest", method: .get, headers: auth(auditor)) { response in
                    let body = Self.json(response.body)
                    #expect(body["position"] as? Int == 5)
                    #expect(body["chain_hash"] as? String == fixture.log.currentHead().chainHashHex)
                }
                try await client.execute(uri: "/api/v1/system/recovery/database", method: .post, headers: auth(admin)) { response in
                    #expect(Self.json(response.body)["breaker"] as? String == "closed")
                }
                try await client.execute(uri: "/metrics", method: .get) { response in
                    let text = String(buffer: response.body)
                    #expect(text.contains("tally_log_head_position 5"))
                    #expect(text.contains(#"tally_projection_state{projection="system-stats",state="live"} 1"#))
                }
                try await client.execute(uri: "/openapi.json", method: .get) { response in
                    #expect(Self.json(response.body)["openapi"] as? String == "3.1.0")
                }
            }
        }
    }

    @Test func corsPreflightAndTheMetricsToken() async throws {
        try await withTallyFixture(configure: opsConfiguration) { fixture in
            let api = TallyAPI(hub: fixture.hub, commands: fixture.api.commands, authority: fixture.api.authority,
                               corsOrigins: ["https://app.example"], metrics: TallyMetrics(token: "scrape-me"))
            let app = Application(router: api.makeRouter())
            try await app.test(.router) { client in
                let preflight: HTTPFields = [.origin: "https://app.example", .accessControlRequestMethod: "POST"]
                try await client.execute(uri: "/api/v1/creator/unlock/somebody", method: .options, headers: preflight) { response in
                    #expect(response.status == .noContent)
                    #expect(response.headers[.accessControlAllowOrigin] == "https://app.example")
                }
                try await client.execute(uri: "/metrics", method: .get) { #expect($0.status == .unauthorized) }
                try await client.execute(uri: "/metrics", method: .get, headers: [.authorization: "Bearer scrape-me"]) { #expect($0.status == .ok) }
                // A bad token does not make liveness fail.
                try await client.execute(uri: "/api/health", method: .get, headers: [.authorization: "Bearer nonsense"]) { #expect($0.status == .ok) }
            }
        }
    }
}
