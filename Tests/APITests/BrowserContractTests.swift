import API
import EventLog
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import TallyTestSupport
import Testing

/// CORS: the policy as a pure function, then every error status the API produces through
/// the real router, with an allowed Origin, a foreign one and none: the status and problem
/// code never change, and the CORS headers are there exactly when the origin is allowed.
@Suite(.timeLimit(.minutes(5)))
struct BrowserContractTests {
    static let allowed = "https://app.example"
    static let foreign = "https://evil.example"

    // MARK: - The policy, without I/O

    @Test func policyEchoesOnlyListedOrigins() throws {
        let policy = try #require(CORSPolicy(origins: [Self.allowed, "http://localhost:3000"]))
        guard case .forward(let fields) = policy.action(method: .get, headers: [.origin: Self.allowed]) else {
            Issue.record("a GET is forwarded")
            return
        }
        #expect(fields[.accessControlAllowOrigin] == Self.allowed)
        #expect(fields[.vary] == "Origin")
        let exposed = fields[.accessControlExposeHeaders] ?? ""
        for name in ["Tally-Position", "Tally-Lag-Events", "Retry-After", "Request-Id", "X-Correlation-Id"] {
            #expect(exposed.contains(name), "\(name) not exposed: \(exposed)")
        }
        for origin in [Self.foreign, "null", "https://app.example.evil", "HTTPS://APP.EXAMPLE"] {
            guard case .forward(let other) = policy.action(method: .post, headers: [.origin: origin]) else {
                Issue.record("a POST is forwarded")
                continue
            }
            #expect(other[.accessControlAllowOrigin] == nil && other[.accessControlExposeHeaders] == nil, "\(origin): \(other)")
            #expect(other[.vary] == "Origin")
        }
        // No Origin: still Vary, for caches.
        #expect(policy.action(method: .get, headers: [:]) == .forward(adding: [.vary: "Origin"]))
        #expect(CORSPolicy(origins: []) == nil)
    }

    @Test func policyAnswersPreflightsOnly() throws {
        let policy = try #require(CORSPolicy(origins: [Self.allowed]))
        let preflight: HTTPFields = [.origin: Self.allowed, .accessControlRequestMethod: "POST",
                                     .accessControlRequestHeaders: "authorization, idempotency-key, x-correlation-id"]
        guard case .answerPreflight(let fields) = policy.action(method: .options, headers: preflight) else {
            Issue.record("a preflight is answered")
            return
        }
        #expect(fields[.accessControlAllowOrigin] == Self.allowed)
        #expect(fields[.accessControlAllowMethods] == "GET, POST")
        let allowed = (fields[.accessControlAllowHeaders] ?? "").lowercased()
        for name in ["x-correlation-id", "x-causation-id", "x-request-id", "idempotency-key", "tally-after", "authorization", "content-type"] {
            #expect(allowed.contains(name), "\(name) not allowed: \(allowed)")
        }
        #expect(fields[.accessControlMaxAge] == "600")
        // A foreign origin's preflight is answered without any permission.
        guard case .answerPreflight(let refused) = policy.action(method: .options, headers: [.origin: Self.foreign, .accessControlRequestMethod: "POST"]) else {
            Issue.record("a foreign preflight is answered")
            return
        }
        #expect(refused[.accessControlAllowOrigin] == nil && refused[.accessControlAllowMethods] == nil)
        // OPTIONS without Access-Control-Request-Method is no preflight: it goes to the router.
        if case .answerPreflight = policy.action(method: .options, headers: [.origin: Self.allowed]) {
            Issue.record("a plain OPTIONS is not a preflight")
        }
        let any = try #require(CORSPolicy(origins: ["*"]))
        #expect(any.action(method: .get, headers: [.origin: Self.foreign])
            == .forward(adding: [.accessControlAllowOrigin: "*",
                                 .accessControlExposeHeaders: "Tally-Position, Tally-Lag-Events, Retry-After, Request-Id, X-Correlation-Id"]))
    }

    // MARK: - Through the real router

    enum Caller: Sendable { case alice, admin, service }

    /// One request that ends in `status` with problem `code` (nil: a success).
    struct Case: Sendable {
        var name: String
        var method: HTTPRequest.Method
        var uri: String
        var token: Caller?
        var body: String?
        var status: HTTPResponse.Status
        var code: String?
        var mode: FaultInjectingStore<FileLog>.Mode = .normal
    }

    static let cases: [Case] = [
        Case(name: "success", method: .get, uri: "/api/v1/system/stats", token: .admin, status: .ok, code: nil),
        Case(name: "malformed body", method: .post, uri: "/api/v1/credits/grant", token: .admin, body: "{", status: .badRequest, code: "malformed_body"),
        Case(name: "invalid query", method: .get, uri: "/api/v1/creator/unlocked?limit=0", token: .alice, status: .badRequest, code: "invalid_input"),
        Case(name: "no token", method: .get, uri: "/api/v1/system/stats", token: nil, status: .unauthorized, code: "unauthenticated"),
        Case(name: "no credits", method: .post, uri: "/api/v1/creator/unlock/somebody", token: .alice,
             status: .init(code: 402), code: "insufficient_credits"),
        Case(name: "wrong role", method: .get, uri: "/api/v1/system/health", token: .alice, status: .forbidden, code: "forbidden"),
        Case(name: "no route", method: .get, uri: "/api/v1/nowhere", token: .alice, status: .notFound, code: "not_found"),
        Case(name: "conflict", method: .post, uri: "/api/v1/credits/grant", token: .admin,
             body: #"{"user": "alice", "amount": 5, "reason": "welcome"}"#, status: .conflict, code: "conflict", mode: .conflicting),
        Case(name: "body too large", method: .post, uri: "/api/v1/events/profiles", token: .service,
             body: String(repeating: " ", count: TallyRequestContext.maxBodyBytes + 1), status: .contentTooLarge, code: "body_too_large"),
        Case(name: "internal", method: .get, uri: "/test/boom", token: nil, status: .internalServerError, code: "internal"),
        Case(name: "store down", method: .post, uri: "/api/v1/credits/grant", token: .admin,
             body: #"{"user": "alice", "amount": 5, "reason": "welcome"}"#, status: .serviceUnavailable, code: "store_unavailable", mode: .failing),
    ]

    /// Every case, without Origin, with the allowed one and with a foreign one.
    @Test func everyStatusKeepsItsCodeAndGetsCORSHeadersOnlyForAllowedOrigins() async throws {
        try await withCORSRouter(origins: [Self.allowed]) { fixture, client in
            for testCase in Self.cases {
                fixture.store.mode = testCase.mode
                defer { fixture.store.mode = .normal }
                for origin in [nil, Self.allowed, Self.foreign] {
                    let response = try await Self.send(testCase, origin: origin, fixture, client)
                    let label = "\(testCase.name), Origin \(origin ?? "none")"
                    #expect(response.status == testCase.status, "\(label): \(String(buffer: response.body))")
                    if let code = testCase.code {
                        try expectProblem(response, testCase.status, code: code)
                    }
                    #expect(response.headers[.requestID]?.isEmpty == false, "\(label)")
                    #expect(response.headers[.vary] == "Origin", "\(label)")
                    if origin == Self.allowed {
                        #expect(response.headers[.accessControlAllowOrigin] == Self.allowed, "\(label)")
                        let exposed = response.headers[.accessControlExposeHeaders] ?? ""
                        #expect(exposed.contains("Request-Id") && exposed.contains("Retry-After") && exposed.contains("Tally-Position"), "\(label): \(exposed)")
                    } else {
                        #expect(response.headers[.accessControlAllowOrigin] == nil, "\(label)")
                        #expect(response.headers[.accessControlExposeHeaders] == nil, "\(label)")
                    }
                    if testCase.status == .serviceUnavailable { #expect(response.headers[.retryAfter] != nil, "\(label)") }
                }
            }
        }
    }

    @Test func preflightsThroughTheRouter() async throws {
        try await withCORSRouter(origins: [Self.allowed]) { _, client in
            // A route that takes POST, and a path no route takes: a preflight never reaches routing.
            for uri in ["/api/v1/creator/unlock/somebody", "/api/v1/nowhere"] {
                let preflight: HTTPFields = [.origin: Self.allowed, .accessControlRequestMethod: "POST",
                                             .accessControlRequestHeaders: "authorization, x-correlation-id"]
                try await client.execute(uri: uri, method: .options, headers: preflight) { response in
                    #expect(response.status == .noContent)
                    #expect(response.headers[.accessControlAllowOrigin] == Self.allowed)
                    #expect(response.headers[.accessControlAllowHeaders]?.contains("X-Correlation-Id") == true)
                    #expect(response.headers[.accessControlAllowMethods] == "GET, POST")
                    #expect(response.headers[.requestID] != nil)
                }
                try await client.execute(uri: uri, method: .options, headers: [.origin: Self.foreign, .accessControlRequestMethod: "POST"]) { response in
                    #expect(response.status == .noContent)
                    #expect(response.headers[.accessControlAllowOrigin] == nil && response.headers[.accessControlAllowMethods] == nil)
                }
            }
            // Preflights are counted under their own route label.
            let metrics = try await client.execute(uri: "/metrics", method: .get, headers: [:], body: nil)
            #expect(String(buffer: metrics.body).contains(#"tally_http_requests_total{method="OPTIONS",route="CORSPreflight",status="204"} 4"#))
        }
    }

    @Test func anyOriginAndNoCORS() async throws {
        let unlock = Self.cases.first { $0.name == "no credits" }!
        try await withCORSRouter(origins: ["*"]) { fixture, client in
            let response = try await Self.send(unlock, origin: Self.foreign, fixture, client)
            try expectProblem(response, .init(code: 402), code: "insufficient_credits")
            #expect(response.headers[.accessControlAllowOrigin] == "*")
            #expect(response.headers[.vary] == nil)
        }
        // CORS off (the default): no CORS header at all, the status unchanged.
        try await withCORSRouter(origins: []) { fixture, client in
            let response = try await Self.send(unlock, origin: Self.allowed, fixture, client)
            try expectProblem(response, .init(code: 402), code: "insufficient_credits")
            #expect(response.headers[.accessControlAllowOrigin] == nil && response.headers[.vary] == nil)
            try await client.execute(uri: "/api/v1/creator/unlock/x", method: .options,
                                     headers: [.origin: Self.allowed, .accessControlRequestMethod: "POST"]) { response in
                // Without CORS an OPTIONS is a method like any other this route does not take.
                #expect(response.status == .methodNotAllowed && response.headers[.allow] == "POST")
                #expect(response.headers[.accessControlAllowOrigin] == nil)
            }
        }
    }

    // MARK: - Helpers

    static func send(_ testCase: Case, origin: String?, _ fixture: TallyFixture<FaultInjectingStore<FileLog>>,
                     _ client: any TestClientProtocol) async throws -> TestResponse {
        var fields: HTTPFields = [.contentType: "application/json"]
        if let caller = testCase.token {
            let token = switch caller {
            case .alice: fixture.aliceToken
            case .admin: fixture.adminToken
            case .service: fixture.serviceToken
            }
            fields[.authorization] = "Bearer " + token
        }
        if let origin { fields[.origin] = origin }
        return try await client.execute(uri: testCase.uri, method: testCase.method, headers: fields,
                                        body: testCase.body.map { ByteBuffer(string: $0) })
    }

    /// The fixture's router over a fault-injecting file log, with CORS for `origins`, plus a
    /// route that fails with an error no layer knows (a 500).
    func withCORSRouter(origins: [String],
                        _ body: @Sendable (TallyFixture<FaultInjectingStore<FileLog>>, any TestClientProtocol) async throws -> Void) async throws {
        try await withTallyFixture(configure: { configuration in
            opsConfiguration(&configuration)
            configuration.corsOrigins = origins
        }, store: { FaultInjectingStore(base: try FileLog(directory: $0 + "/log", options: .init(fsync: .never))) }) { fixture in
            let router = fixture.api.makeRouter()
            router.get("/test/boom") { _, _ -> Response in throw CancellationError() }
            try await Application(router: router).test(.router) { client in try await body(fixture, client) }
        }
    }
}
