import API
@testable import EventLog
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import TallyTestSupport
import Testing

/// Idempotency keys are scoped by principal and route; a key reused for a different request
/// is 422 `idempotency_key_reused` and writes nothing; a true replay says `replayed: true`
/// with the first response's positions.
@Suite("Idempotency keys: scoped by principal and route", .timeLimit(.minutes(5)))
struct IdempotencyScopeTests {
    static func grant(_ fixture: APIFixture, _ client: any TestClientProtocol, _ user: String, _ amount: Int) async throws {
        let response = try await send(client, .post, "/api/v1/credits/grant", token: fixture.adminToken,
                                      body: ["user": user, "amount": amount, "reason": "test grant"])
        #expect(response.status == .ok, "\(String(buffer: response.body))")
    }

    static func unlock(_ client: any TestClientProtocol, _ token: String, _ username: String, key: String) async throws -> TestResponse {
        try await send(client, .post, "/api/v1/creator/unlock/\(username)", token: token, [.idempotencyKey: key])
    }

    static func search(_ client: any TestClientProtocol, _ token: String, _ username: String, key: String) async throws -> TestResponse {
        try await send(client, .post, "/api/v1/creator/search/\(username)", token: token, [.idempotencyKey: key])
    }

    @Test("bob's key never meets alice's: the same key unlocks for each of them")
    func keysAreScopedByPrincipal() async throws {
        try await withAPI { fixture, client in
            try await Self.grant(fixture, client, APIFixture.alice, 2)
            try await Self.grant(fixture, client, APIFixture.bob, 2)
            let bobFirst = try json(try await Self.unlock(client, fixture.bobToken, "nasa", key: "shared-key"))
            #expect(bobFirst["replayed"] as? Bool == false && int(bobFirst, "charged") == 1, "\(bobFirst)")
            // Alice's unlock with bob's key, of another profile, is hers: written, not refused.
            let alice = try await Self.unlock(client, fixture.aliceToken, "natgeo", key: "shared-key")
            #expect(alice.status == .ok, "\(String(buffer: alice.body))")
            let aliceBody = try json(alice)
            #expect(aliceBody["replayed"] as? Bool == false && int(aliceBody, "charged") == 1 && aliceBody["username"] as? String == "natgeo")
            #expect(int(aliceBody, "position") != int(bobFirst, "position"))
            // Each repeat answers its own principal's first response.
            let bobAgain = try json(try await Self.unlock(client, fixture.bobToken, "nasa", key: "shared-key"))
            #expect(bobAgain["replayed"] as? Bool == true && int(bobAgain, "position") == int(bobFirst, "position"))
            let head = fixture.head
            let aliceAgain = try json(try await Self.unlock(client, fixture.aliceToken, "natgeo", key: "shared-key"))
            #expect(aliceAgain["replayed"] as? Bool == true && int(aliceAgain, "position") == int(aliceBody, "position"))
            #expect(int(aliceAgain, "balance") == 1)
            #expect(fixture.head == head)
        }
    }

    @Test("a key used on unlock is a different key on search")
    func keysAreScopedByRoute() async throws {
        try await withAPI { fixture, client in
            try await Self.grant(fixture, client, APIFixture.alice, 2)
            let unlocked = try json(try await Self.unlock(client, fixture.aliceToken, "nasa", key: "key-1"))
            let before = fixture.head
            let searched = try await Self.search(client, fixture.aliceToken, "nasa", key: "key-1")
            #expect(searched.status == .ok, "\(String(buffer: searched.body))")
            let body = try json(searched)
            #expect(body["replayed"] as? Bool == false)
            #expect(int(body, "position") == Int(before) + 1 && int(body, "position") != int(unlocked, "position"))
            #expect(fixture.head == before + 1)
        }
    }

    @Test("a search resent with the same key: the same username replays, another username is 422")
    func searchReplayAndReuse() async throws {
        try await withAPI { fixture, client in
            let first = try json(try await Self.search(client, fixture.aliceToken, "nasa", key: "search-1"))
            #expect(first["replayed"] as? Bool == false)
            let head = fixture.head
            let again = try json(try await Self.search(client, fixture.aliceToken, "nasa", key: "search-1"))
            #expect(again["replayed"] as? Bool == true && int(again, "position") == int(first, "position"), "\(again)")
            #expect(again["username"] as? String == "nasa")
            let other = try await Self.search(client, fixture.aliceToken, "natgeo", key: "search-1")
            let problem = try expectProblem(other, .unprocessableContent, code: "idempotency_key_reused")
            #expect((problem["detail"] as? String)?.contains("search-1") == true, "\(problem)")
            // A different body on the same path is a different request too.
            let otherBody = try await send(client, .post, "/api/v1/creator/search/nasa", token: fixture.aliceToken,
                                           body: #"{"served_from":"cache"}"#, [.idempotencyKey: "search-1"])
            _ = try expectProblem(otherBody, .unprocessableContent, code: "idempotency_key_reused")
            #expect(fixture.head == head)
        }
    }

    @Test("an event batch resent with the same key: the same payload replays, another payload is 422 and is not dropped silently")
    func batchReplayAndReuse() async throws {
        try await withAPI { fixture, client in
            let batch = ["events": [profileRefreshed("nasa"), profileRefreshed("natgeo")]]
            let first = try await send(client, .post, "/api/v1/events/profiles", token: fixture.serviceToken, body: batch, [.idempotencyKey: "batch-1"])
            #expect(first.status == .created, "\(String(buffer: first.body))")
            let firstBody = try json(first)
            let head = fixture.head
            let again = try await send(client, .post, "/api/v1/events/profiles", token: fixture.serviceToken, body: batch, [.idempotencyKey: "batch-1"])
            #expect(again.status == .ok)
            let againBody = try json(again)
            #expect(againBody["replayed"] as? Bool == true)
            #expect(ints(againBody["positions"]) == ints(firstBody["positions"]) && ints(firstBody["positions"])?.count == 2)

            var changed = profileRefreshed("natgeo")
            changed["data"] = ["username": "natgeo", "followers": 9999, "following": 80, "posts_count": 42, "verified": false, "category": "travel"]
            let different = try await send(client, .post, "/api/v1/events/profiles", token: fixture.serviceToken,
                                            body: ["events": [profileRefreshed("nasa"), changed]], [.idempotencyKey: "batch-1"])
            _ = try expectProblem(different, .unprocessableContent, code: "idempotency_key_reused")
            let fewer = try await send(client, .post, "/api/v1/events/profiles", token: fixture.serviceToken,
                                       body: ["events": [profileRefreshed("nasa")]], [.idempotencyKey: "batch-1"])
            _ = try expectProblem(fewer, .unprocessableContent, code: "idempotency_key_reused")
            // The same key on another report route is another key: written.
            let cdn = try await send(client, .post, "/api/v1/events/cdn", token: fixture.serviceToken,
                                     body: ["events": [cdnQueued("job-1")]], [.idempotencyKey: "batch-1"])
            #expect(cdn.status == .created, "\(String(buffer: cdn.body))")
            #expect(fixture.head == head + 1)
        }
    }

    @Test("an unlock key reused for another profile is 422 even when that profile is already unlocked or credits are short")
    func unlockKeyReusedForAnotherProfile() async throws {
        try await withAPI { fixture, client in
            try await Self.grant(fixture, client, APIFixture.alice, 2)
            let plain = try await send(client, .post, "/api/v1/creator/unlock/natgeo", token: fixture.aliceToken)
            #expect(plain.status == .ok, "\(String(buffer: plain.body))")
            let keyed = try json(try await Self.unlock(client, fixture.aliceToken, "nasa", key: "u-1"))
            #expect(keyed["replayed"] as? Bool == false && int(keyed, "balance") == 0, "\(keyed)")
            let head = fixture.head
            // natgeo is already unlocked (without the key): still another request under u-1.
            _ = try expectProblem(try await Self.unlock(client, fixture.aliceToken, "natgeo", key: "u-1"), .unprocessableContent,
                                  code: "idempotency_key_reused")
            // spacex would be a 402 (balance 0): the reused key is refused first.
            _ = try expectProblem(try await Self.unlock(client, fixture.aliceToken, "spacex", key: "u-1"), .unprocessableContent,
                                  code: "idempotency_key_reused")
            // The same request under the key still replays.
            let again = try json(try await Self.unlock(client, fixture.aliceToken, "nasa", key: "u-1"))
            #expect(again["replayed"] as? Bool == true && int(again, "position") == int(keyed, "position"))
            #expect(fixture.head == head)
        }
    }

    @Test("a grant resent with the same key and another reason or amount is 422")
    func grantReuse() async throws {
        try await withAPI { fixture, client in
            let body: [String: Any] = ["user": APIFixture.alice, "amount": 5, "reason": "signup"]
            let first = try json(try await send(client, .post, "/api/v1/credits/grant", token: fixture.adminToken, body: body, [.idempotencyKey: "g-1"]))
            let head = fixture.head
            let again = try json(try await send(client, .post, "/api/v1/credits/grant", token: fixture.adminToken, body: body, [.idempotencyKey: "g-1"]))
            #expect(int(again, "position") == int(first, "position") && int(again, "balance") == 5)
            let otherReason = try await send(client, .post, "/api/v1/credits/grant", token: fixture.adminToken,
                                             body: ["user": APIFixture.alice, "amount": 5, "reason": "promo"], [.idempotencyKey: "g-1"])
            _ = try expectProblem(otherReason, .unprocessableContent, code: "idempotency_key_reused")
            #expect(fixture.head == head)
        }
    }
}

/// The same scoping on the shared PostgreSQL log: the stored key and the replay check use
/// only what every store keeps (the key's first result and the events it wrote).
@Suite("Idempotency keys on the PostgreSQL log", .serialized, .timeLimit(.minutes(5)))
struct PostgresIdempotencyScopeTests {
    @Test("scoped by principal and route, replayed when the same, 422 when different")
    func scopedOnPostgres() async throws {
        let base = try PostgresServerTests.environment("TALLY_TEST_POSTGRES_URL")
        let (url, database) = try PostgresServerTests.freshDatabase(base, "idempotency")
        defer { try? PGConnection(url: base).execute("DROP DATABASE IF EXISTS \(database) WITH (FORCE)") }
        try await withTallyFixture(label: "pg-idempotency", store: { _ in try PostgresLog(url: url, options: .init(fsync: .never)) }) { fixture in
            try await fixture.makeApplication().test(.router) { client in
                for user in [TallyFixture<PostgresLog>.alice, TallyFixture<PostgresLog>.bob] {
                    let grant = try await send(client, .post, "/api/v1/credits/grant", token: fixture.adminToken,
                                               body: ["user": user, "amount": 3, "reason": "seed"])
                    #expect(grant.status == .ok)
                }
                let bob = try json(try await IdempotencyScopeTests.unlock(client, fixture.bobToken, "nasa", key: "k"))
                let alice = try json(try await IdempotencyScopeTests.unlock(client, fixture.aliceToken, "nasa", key: "k"))
                #expect(bob["replayed"] as? Bool == false && alice["replayed"] as? Bool == false)
                #expect(int(alice, "position") != int(bob, "position"))
                let head = try await fixture.store.head().position
                let again = try json(try await IdempotencyScopeTests.unlock(client, fixture.aliceToken, "nasa", key: "k"))
                #expect(again["replayed"] as? Bool == true && int(again, "position") == int(alice, "position"))
                let other = try await IdempotencyScopeTests.unlock(client, fixture.aliceToken, "natgeo", key: "k")
                _ = try expectProblem(other, .unprocessableContent, code: "idempotency_key_reused")
                // The same key on search is another key: written.
                let search = try await IdempotencyScopeTests.search(client, fixture.aliceToken, "nasa", key: "k")
                #expect(search.status == .ok)
                #expect(try await fixture.store.head().position == head + 1)

                let batch = ["events": [profileRefreshed("nasa")]]
                let first = try json(try await send(client, .post, "/api/v1/events/profiles", token: fixture.serviceToken, body: batch, [.idempotencyKey: "b"]))
                let replay = try json(try await send(client, .post, "/api/v1/events/profiles", token: fixture.serviceToken, body: batch, [.idempotencyKey: "b"]))
                #expect(replay["replayed"] as? Bool == true && ints(replay["positions"]) == ints(first["positions"]))
                let changed = try await send(client, .post, "/api/v1/events/profiles", token: fixture.serviceToken,
                                             body: ["events": [profileRefreshed("natgeo")]], [.idempotencyKey: "b"])
                _ = try expectProblem(changed, .unprocessableContent, code: "idempotency_key_reused")
                #expect(try await fixture.store.head().position == head + 2)
            }
        }
    }
}
