@testable import API
import Commands
import EventLog
import Events
import Foundation
import Hummingbird
import HummingbirdTesting
import Projections
import TallyTestSupport
import Testing

/// The `/api/v1/simple/` paths against fixtures written from the seed backend's own
/// responses (issue 13, quoted verbatim): every key the seed frontend reads is there with
/// the seed's JSON type, and Tally's freshness rides along.
@Suite("Seed frontend contract on /simple/", .timeLimit(.minutes(5)))
struct SeedContractTests {
    /// The seed backend's stats fallback, verbatim from the issue ("..." stands for its text).
    static let seedStats = """
        {"success": true,
         "stats": {"profiles": {"total": 0, "with_ai_analysis": 0, "ai_completion_rate": "0%"},
                   "posts": {"total": 0, "with_ai_analysis": 0, "ai_completion_rate": "0%"},
                   "system": {"status": "fallback", "ai_system": "unavailable"}},
         "message": "System statistics (fallback mode)",
         "error": "Primary endpoint failed: ..."}
        """
    /// The seed backend's unlocked answer when its database was unavailable, verbatim.
    static let seedUnlockedFailure = """
        {"success": false, "profiles": [], "error": "Database connectivity issues",
         "message": "Unable to retrieve unlocked profiles - database connection issues"}
        """

    static func object(_ text: String) throws -> JSONValue.Object {
        try #require(try JSONParser.parse(text, maxBytes: 1 << 20).objectValue)
    }

    /// The response body, parsed by the project's strict parser (it keeps booleans, integers
    /// and fractions apart, as a browser's `typeof` does not need to).
    static func object(_ response: TestResponse) throws -> JSONValue.Object {
        try #require(try JSONParser.parse(Array(response.body.readableBytesView), maxBytes: 1 << 20).objectValue)
    }

    /// The seed frontend's view of a value's type: `typeof`, with arrays and null apart.
    static func kind(_ value: JSONValue) -> String {
        switch value {
        case .null: "null"
        case .bool: "boolean"
        case .integer, .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    /// Every key path of `fixture` (minus `except`) is in `actual` with the same JSON type.
    static func expectShape(_ actual: JSONValue.Object, matches fixture: JSONValue.Object, except: Set<String> = [], path: String = "",
                            sourceLocation: SourceLocation = #_sourceLocation) {
        for member in fixture where !except.contains(path + member.key) {
            guard let value = actual[member.key] else {
                Issue.record("missing \(path + member.key) in \(actual.keys)", sourceLocation: sourceLocation)
                continue
            }
            #expect(kind(value) == kind(member.value), "\(path + member.key) is \(kind(value)), the seed sent \(kind(member.value))",
                    sourceLocation: sourceLocation)
            if let inner = member.value.objectValue, let actualInner = value.objectValue {
                expectShape(actualInner, matches: inner, except: except, path: path + member.key + ".", sourceLocation: sourceLocation)
            }
        }
    }

    /// Two analysed posts of natgeo, one failed post of esa, a refreshed nasa: 3 profiles,
    /// 1 with an analysis; 3 posts, 2 analysed.
    static func report(_ fixture: APIFixture, _ client: any TestClientProtocol) async throws -> Int {
        let body: [String: Any] = ["events": [analysisCompleted("natgeo", post: "p1"), analysisCompleted("natgeo", post: "p2"),
                                              analysisFailed("esa", post: "p3")]]
        let analysis = try await send(client, .post, "/api/v1/events/analysis", token: fixture.serviceToken, body: body)
        #expect(analysis.status == .created, "\(String(buffer: analysis.body))")
        let profiles = try await send(client, .post, "/api/v1/events/profiles", token: fixture.serviceToken, body: ["events": [profileRefreshed("nasa")]])
        #expect(profiles.status == .created)
        return try #require(int(try json(profiles), "position"))
    }

    @Test("stats speak the seed's envelope: success, stats.profiles/posts with percent strings, stats.system, message")
    func statsEnvelope() async throws {
        try await withAPI { fixture, client in
            let position = try await Self.report(fixture, client)
            let response = try await send(client, .get, "/api/v1/simple/creator/system/stats", token: fixture.aliceToken,
                                          [.tallyAfter: String(position)])
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "application/json")
            let body = try expectFreshness(response)
            // `error` is the seed's fallback text; a success carries none.
            Self.expectShape(try Self.object(response), matches: try Self.object(Self.seedStats), except: ["error"])
            #expect(body["error"] == nil)
            #expect(body["success"] as? Bool == true)
            #expect(body["stale"] as? Bool == false)
            #expect((body["message"] as? String)?.isEmpty == false)
            let stats = try #require(body["stats"] as? [String: Any])
            let profiles = try #require(stats["profiles"] as? [String: Any])
            #expect(int(profiles, "total") == 3 && int(profiles, "with_ai_analysis") == 1)
            #expect(profiles["ai_completion_rate"] as? String == "33.3%")
            let posts = try #require(stats["posts"] as? [String: Any])
            #expect(int(posts, "total") == 3 && int(posts, "with_ai_analysis") == 2)
            #expect(posts["ai_completion_rate"] as? String == "66.7%")
            let system = try #require(stats["system"] as? [String: Any])
            #expect(system["status"] as? String == "unknown" && system["ai_system"] as? String == "unknown")

            // The native path keeps Tally's own shape: fractions, no envelope.
            let native = try json(try await send(client, .get, "/api/v1/system/stats", token: fixture.aliceToken, [.tallyAfter: String(position)]))
            #expect(native["success"] == nil && native["stats"] == nil)
            #expect((native["profiles"] as? [String: Any])?["ai_completion_rate"] is Double)
        }
    }

    @Test("unlocked speaks the seed's envelope: success, profiles, message; the page's fields stay")
    func unlockedEnvelope() async throws {
        try await withAPI { fixture, client in
            _ = try await CreatorFlowTests.grant(fixture, client, APIFixture.alice, 2)
            let unlock = try json(try await CreatorFlowTests.unlock(client, fixture.aliceToken, "natgeo"))
            let position = try #require(int(unlock, "position"))
            let response = try await send(client, .get, "/api/v1/simple/creator/unlocked", token: fixture.aliceToken, [.tallyAfter: String(position)])
            #expect(response.status == .ok)
            let body = try expectFreshness(response)
            Self.expectShape(try Self.object(response), matches: try Self.object(Self.seedUnlockedFailure), except: ["error"])
            #expect(body["success"] as? Bool == true)
            #expect(body["error"] == nil)
            #expect(body["message"] as? String == "Retrieved 1 unlocked profile")
            let profiles = try #require(body["profiles"] as? [[String: Any]])
            #expect(profiles.map { $0["username"] as? String } == ["natgeo"])
            #expect(int(body, "total") == 1)
            #expect(body["next_cursor"] is NSNull)

            // Bob has none: still a success, an empty list.
            let empty = try json(try await send(client, .get, "/api/v1/simple/creator/unlocked", token: fixture.bobToken, [.tallyAfter: String(position)]))
            #expect(empty["success"] as? Bool == true && (empty["profiles"] as? [Any])?.isEmpty == true)
            #expect(empty["message"] as? String == "Retrieved 0 unlocked profiles")
            // Requests the route refuses stay problem+json.
            try expectProblem(try await send(client, .get, "/api/v1/simple/creator/unlocked?cursor=zz", token: fixture.aliceToken), .badRequest, code: "invalid_input")
            try expectProblem(try await send(client, .get, "/api/v1/simple/creator/unlocked", token: fixture.adminToken), .forbidden, code: "forbidden")
            try expectProblem(try await send(client, .get, "/api/v1/simple/creator/system/stats", token: nil), .unauthorized, code: "unauthenticated")
        }
    }

    @Test("a stale view answers success with stale: true", arguments: ["/api/v1/simple/creator/system/stats", "/api/v1/simple/creator/unlocked"])
    func staleIsSuccess(path: String) async throws {
        try await withAPI(consistencyWait: .milliseconds(100)) { fixture, client in
            let position = try await CreatorFlowTests.grant(fixture, client, APIFixture.alice, 1)
            // Built but behind: a view never built answers the seed's fallback instead.
            try await waitUntil("the views folded the grant") {
                fixture.hub.stats.current.position == UInt64(position) && fixture.hub.unlocked.current.position == UInt64(position)
            }
            let response = try await send(client, .get, path, token: fixture.aliceToken, [.tallyAfter: "1000"])
            #expect(response.status == .ok)
            let body = try expectFreshness(response)
            #expect(body["success"] as? Bool == true)
            #expect(body["stale"] as? Bool == true)
        }
    }

    @Test("a view never built answers the seed's fallback: 503, Retry-After, success false, empty data, error, message")
    func neverBuilt() async throws {
        try await withAPI(startRunners: false) { fixture, client in
            try await FreshnessTests.seedColdLog(fixture)
            let stats = try await send(client, .get, "/api/v1/simple/creator/system/stats", token: fixture.aliceToken)
            #expect(stats.status == .serviceUnavailable)
            #expect(stats.headers[.contentType] == "application/json")
            #expect(stats.headers[.retryAfter] == "1")
            #expect(stats.headers[.tallyPosition] == "0")
            let statsBody = try json(stats)
            Self.expectShape(try Self.object(stats), matches: try Self.object(Self.seedStats))
            #expect(statsBody["success"] as? Bool == false)
            #expect(statsBody["message"] as? String == "System statistics (fallback mode)")
            #expect((statsBody["error"] as? String)?.contains("still being built") == true)
            #expect(statsBody["code"] as? String == "view_not_ready")
            let system = (statsBody["stats"] as? [String: Any])?["system"] as? [String: Any]
            #expect(system?["status"] as? String == "fallback" && system?["ai_system"] as? String == "unavailable")
            let profiles = (statsBody["stats"] as? [String: Any])?["profiles"] as? [String: Any]
            #expect(int(profiles, "total") == 0 && profiles?["ai_completion_rate"] as? String == "0%")
            #expect(int(statsBody["freshness"] as? [String: Any], "head") == 2)

            let unlocked = try await send(client, .get, "/api/v1/simple/creator/unlocked", token: fixture.aliceToken)
            #expect(unlocked.status == .serviceUnavailable)
            #expect(unlocked.headers[.retryAfter] == "1")
            let unlockedBody = try json(unlocked)
            Self.expectShape(try Self.object(unlocked), matches: try Self.object(Self.seedUnlockedFailure))
            #expect(unlockedBody["success"] as? Bool == false)
            #expect((unlockedBody["profiles"] as? [Any])?.isEmpty == true)
            #expect(int(unlockedBody["freshness"] as? [String: Any], "lag_events") == 2)

            // The native paths answer as before.
            try expectProblem(try await send(client, .get, "/api/v1/system/stats", token: fixture.aliceToken), .serviceUnavailable, code: "view_not_ready")
            try expectProblem(try await send(client, .get, "/api/v1/creator/unlocked", token: fixture.aliceToken), .serviceUnavailable, code: "view_not_ready")
        }
    }

    @Test("the percent string: one decimal at most, half up, never 0% or 100% for a partial rate",
          arguments: [(0, 0, "0%"), (0, 7, "0%"), (7, 7, "100%"), (1, 2, "50%"), (1, 3, "33.3%"), (2, 3, "66.7%"),
                      (1, 8, "12.5%"), (1, 16, "6.3%"), (1, 100_000, "0.1%"), (99_999, 100_000, "99.9%"), (9, 10, "90%"),
                      (Int.max / 2, Int.max, "50%")])
    func percent(part: Int, whole: Int, expected: String) {
        #expect(SeedEnvelope.percent(part, of: whole) == expected)
    }
}
