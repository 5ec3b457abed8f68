import API
import Crypto
import Foundation
import Hummingbird
import HummingbirdTesting
import JWTKit
import TallyTestSupport
import Testing

/// Claims as an attacker or a misconfigured issuer might sign them, with the right secret.
struct LooseClaims: JWTPayload {
    var sub: SubjectClaim?
    var role: String?
    var exp: ExpirationClaim?

    func verify(using _: some JWTAlgorithm) async throws {}
}

/// One request of each protected route family, with a body each route accepts.
struct ProtectedRoute: Sendable, CustomTestStringConvertible {
    var method: HTTPRequest.Method
    var uri: String
    var body: String?
    /// Roles the route serves; every other role gets 403.
    var roles: Set<Role>

    var testDescription: String { "\(method) \(uri)" }

    static let all: [ProtectedRoute] = [
        .init(method: .post, uri: "/api/v1/creator/search/natgeo", body: nil, roles: [.user]),
        .init(method: .post, uri: "/api/v1/creator/unlock/natgeo", body: nil, roles: [.user]),
        .init(method: .get, uri: "/api/v1/creator/unlocked", body: nil, roles: [.user]),
        .init(method: .get, uri: "/api/v1/simple/creator/unlocked", body: nil, roles: [.user]),
        .init(method: .get, uri: "/api/v1/credits/balance", body: nil, roles: [.user]),
        .init(method: .post, uri: "/api/v1/credits/grant", body: #"{"user":"alice","amount":5,"reason":"test"}"#, roles: [.admin]),
        .init(method: .get, uri: "/api/v1/system/stats", body: nil, roles: [.user, .admin]),
        .init(method: .get, uri: "/api/v1/simple/creator/system/stats", body: nil, roles: [.user, .admin]),
        .init(method: .post, uri: "/api/v1/events/profiles", body: #"{"events":[{"type":"ProfileRefreshed","data":{"username":"natgeo","followers":1,"following":2,"posts_count":3,"verified":true,"category":"nature"}}]}"#, roles: [.service]),
        .init(method: .post, uri: "/api/v1/events/analysis", body: #"{"events":[{"type":"PostAnalysisFailed","data":{"username":"natgeo","post_id":"p1","error":"x","duration_ms":1}}]}"#, roles: [.service]),
        .init(method: .post, uri: "/api/v1/events/cdn", body: #"{"events":[{"type":"CdnJobQueued","data":{"job_id":"j1","priority":"low","kind":"avatar"}}]}"#, roles: [.service]),
        .init(method: .post, uri: "/api/v1/events/health", body: #"{"events":[{"type":"HealthSampled","data":{"component":"api","status":"ok","memory_pct":1,"cpu_pct":1,"disk_pct":1,"latency_ms":1}}]}"#, roles: [.service]),
    ]

    var buffer: ByteBuffer? { body.map { ByteBuffer(string: $0) } }
}

@Suite("Authentication and roles", .timeLimit(.minutes(5)))
struct AuthTests {
    @Test("health needs no token")
    func healthIsPublic() async throws {
        try await withAPI { _, client in
            try await client.execute(uri: "/api/health", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.requestID]?.isEmpty == false)
                let body = try json(response)
                #expect(body["status"] as? String == "ok")
            }
        }
    }

    @Test("a missing token is 401 unauthenticated and writes nothing", arguments: ProtectedRoute.all)
    func missingToken(route: ProtectedRoute) async throws {
        try await withAPI { fixture, client in
            try await client.execute(uri: route.uri, method: route.method, headers: headers(nil), body: route.buffer) { response in
                try expectProblem(response, .unauthorized, code: "unauthenticated")
            }
            #expect(fixture.head == 0)
        }
    }

    @Test("a malformed Authorization header is 401",
          arguments: ["Basic YWxpY2U6c2VjcmV0", "Bearer", "Bearer ", "bearer x.y.z", "Bearer not-a-jwt", "Bearer a.b.c", "Token abc"])
    func malformedHeader(header: String) async throws {
        try await withAPI { fixture, client in
            var fields = headers(nil)
            fields[.authorization] = header
            try await client.execute(uri: "/api/v1/credits/balance", method: .get, headers: fields) { response in
                try expectProblem(response, .unauthorized, code: "unauthenticated")
            }
            // And on a command: nothing is written for a caller who is not let in.
            try await client.execute(uri: "/api/v1/credits/grant", method: .post, headers: fields,
                                     body: ByteBuffer(string: #"{"user":"alice","amount":5,"reason":"x"}"#)) { response in
                try expectProblem(response, .unauthorized, code: "unauthenticated")
            }
            #expect(fixture.head == 0)
        }
    }

    @Test("a token signed with another secret is 401, for every role it claims")
    func forgedSignature() async throws {
        let forger = try await TokenAuthority.hs256(secret: "another-secret-of-at-least-thirty-two-bytes!!")
        try await withAPI { fixture, client in
            for role in Role.allCases {
                let forged = try await forger.mint(subject: "mallory", role: role)
                for route in ProtectedRoute.all where route.roles.contains(role) {
                    try await client.execute(uri: route.uri, method: route.method, headers: headers(forged), body: route.buffer) { response in
                        try expectProblem(response, .unauthorized, code: "unauthenticated")
                    }
                }
            }
            #expect(fixture.head == 0)
        }
    }

    @Test("a token with a tampered payload (role raised to admin) is 401")
    func tamperedPayload() async throws {
        try await withAPI { fixture, client in
            let parts = fixture.aliceToken.split(separator: ".").map(String.init)
            try #require(parts.count == 3)
            let payload = #"{"sub":"alice","role":"admin","exp":\#(Int(Date().timeIntervalSince1970) + 3600)}"#
            let tampered = [parts[0], base64URL(payload.utf8), parts[2]].joined(separator: ".")
            try await client.execute(uri: "/api/v1/credits/grant", method: .post, headers: headers(tampered),
                                     body: ByteBuffer(string: #"{"user":"alice","amount":5,"reason":"x"}"#)) { response in
                try expectProblem(response, .unauthorized, code: "unauthenticated")
            }
            #expect(fixture.head == 0)
        }
    }

    @Test("a correctly signed token lacking a required claim or with an unknown role is 401", arguments: [
        LooseClaims(sub: nil, role: "admin", exp: .init(value: Date().addingTimeInterval(3_600))),
        LooseClaims(sub: .init(value: "ops"), role: nil, exp: .init(value: Date().addingTimeInterval(3_600))),
        LooseClaims(sub: .init(value: "ops"), role: "admin", exp: nil),
        LooseClaims(sub: .init(value: "ops"), role: "root", exp: .init(value: Date().addingTimeInterval(3_600))),
        LooseClaims(sub: .init(value: ""), role: "admin", exp: .init(value: Date().addingTimeInterval(3_600))),
    ])
    func incompleteClaims(claims: LooseClaims) async throws {
        let keys = await JWTKeyCollection().add(hmac: HMACKey(from: APIFixture.secret), digestAlgorithm: .sha256)
        let token = try await keys.sign(claims)
        try await withAPI { fixture, client in
            let response = try await send(client, .post, "/api/v1/credits/grant", token: token,
                                          body: ["user": "alice", "amount": 5, "reason": "x"])
            try expectProblem(response, .unauthorized, code: "unauthenticated")
            #expect(fixture.head == 0)
        }
    }

    @Test("an unsigned token (alg none) is 401")
    func unsignedToken() async throws {
        try await withAPI { fixture, client in
            let payload = #"{"sub":"ops","role":"admin","exp":\#(Int(Date().timeIntervalSince1970) + 3600)}"#
            for header in [#"{"alg":"none","typ":"JWT"}"#, #"{"alg":"HS256","typ":"JWT"}"#] {
                let token = base64URL(header.utf8) + "." + base64URL(payload.utf8) + "."
                let response = try await send(client, .post, "/api/v1/credits/grant", token: token,
                                              body: ["user": "alice", "amount": 5, "reason": "x"])
                try expectProblem(response, .unauthorized, code: "unauthenticated")
            }
            #expect(fixture.head == 0)
        }
    }

    /// A compact JWS of `header` and `payload` with an HMAC-SHA256 signature by the tests'
    /// secret, whatever `alg` the header names.
    static func signedWithTheSecret(header: String, payload: String) -> String {
        let input = base64URL(header.utf8) + "." + base64URL(payload.utf8)
        let signature = HMAC<SHA256>.authenticationCode(for: Array(input.utf8), using: SymmetricKey(data: Array(APIFixture.secret.utf8)))
        return input + "." + base64URL(signature)
    }

    @Test("a token whose header names another algorithm than the key's is 401, even signed with the key")
    func otherAlgorithmInTheHeader() async throws {
        try await withAPI { fixture, client in
            let payload = #"{"sub":"ops","role":"admin","exp":\#(Int(Date().timeIntervalSince1970) + 3600)}"#
            for alg in ["HS512", "HS384", "RS256", "hs256"] {
                // Signed with the server's own secret by HMAC-SHA256, only the label differs.
                let token = Self.signedWithTheSecret(header: #"{"alg":"\#(alg)","typ":"JWT"}"#, payload: payload)
                let response = try await send(client, .post, "/api/v1/credits/grant", token: token,
                                              body: ["user": "alice", "amount": 5, "reason": "x"])
                try expectProblem(response, .unauthorized, code: "unauthenticated")
            }
            // The same construction labelled HS256 is the server's own kind of token.
            let response = try await send(client, .post, "/api/v1/credits/grant",
                                          token: Self.signedWithTheSecret(header: #"{"alg":"HS256","typ":"JWT"}"#, payload: payload),
                                          body: ["user": "alice", "amount": 5, "reason": "x"])
            #expect(response.status == .ok, "\(String(buffer: response.body))")
        }
    }

    @Test("an expired token is 401 (past the clock skew)")
    func expiredToken() async throws {
        try await withAPI { fixture, client in
            let expired = try await fixture.authority.mint(subject: APIFixture.alice, role: .user, lifetime: 1,
                                                           now: Date().addingTimeInterval(-3_600))
            try await client.execute(uri: "/api/v1/credits/balance", method: .get, headers: headers(expired)) { response in
                let body = try expectProblem(response, .unauthorized, code: "unauthenticated")
                #expect((body["detail"] as? String)?.contains("expired") == true, "detail: \(body)")
            }
            // The same subject with a fresh token gets in: only the expiry was at fault.
            let fresh = try await fixture.authority.mint(subject: APIFixture.alice, role: .user)
            try await client.execute(uri: "/api/v1/credits/balance", method: .get, headers: headers(fresh)) { response in
                #expect(response.status == .ok)
            }
        }
    }

    @Test("a role the route does not serve is 403 forbidden and writes nothing", arguments: ProtectedRoute.all)
    func wrongRole(route: ProtectedRoute) async throws {
        try await withAPI { fixture, client in
            let tokens: [Role: String] = [.user: fixture.aliceToken, .service: fixture.serviceToken,
                                          .admin: fixture.adminToken, .auditor: fixture.auditorToken]
            for role in Role.allCases where !route.roles.contains(role) {
                try await client.execute(uri: route.uri, method: route.method, headers: headers(tokens[role]), body: route.buffer) { response in
                    let body = try expectProblem(response, .forbidden, code: "forbidden")
                    #expect((body["detail"] as? String)?.contains(role.rawValue) == true, "\(role): \(body)")
                }
            }
            #expect(fixture.head == 0)
        }
    }

    @Test("the roles a route serves get past authorization", arguments: ProtectedRoute.all)
    func rightRole(route: ProtectedRoute) async throws {
        try await withAPI { fixture, client in
            let tokens: [Role: String] = [.user: fixture.aliceToken, .service: fixture.serviceToken,
                                          .admin: fixture.adminToken, .auditor: fixture.auditorToken]
            for role in route.roles.sorted(by: { $0.rawValue < $1.rawValue }) {
                try await client.execute(uri: route.uri, method: route.method, headers: headers(tokens[role]), body: route.buffer) { response in
                    #expect(response.status != .unauthorized && response.status != .forbidden,
                            "\(role) on \(route.testDescription): \(response.status) \(String(buffer: response.body))")
                    // Unlock with no credits is 402; everything else succeeds.
                    #expect(response.status.code < 500, "\(String(buffer: response.body))")
                }
            }
        }
    }

    @Test("an unknown route is a problem response with a Request-Id")
    func unknownRoute() async throws {
        try await withAPI { fixture, client in
            try await client.execute(uri: "/api/v1/nothing-here", method: .get, headers: headers(fixture.aliceToken)) { response in
                #expect(response.status == .notFound)
                #expect(response.headers[.requestID]?.isEmpty == false)
            }
        }
    }
}

/// Base64url without padding, as JWTs encode their parts.
private func base64URL(_ bytes: some Sequence<UInt8>) -> String {
    Data(bytes).base64EncodedString()
        .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
}
