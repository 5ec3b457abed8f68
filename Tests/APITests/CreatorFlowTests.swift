import API
import Foundation
import Hummingbird
import HummingbirdTesting
import TallyTestSupport
import Testing

@Suite("Creator flow: credits, search, unlock, unlocked list", .timeLimit(.minutes(5)))
struct CreatorFlowTests {
    /// Grants `amount` to `user` as the admin; returns the grant's position.
    static func grant(_ fixture: APIFixture, _ client: any TestClientProtocol, _ user: String, _ amount: Int,
                      key: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) async throws -> Int {
        let response = try await send(client, .post, "/api/v1/credits/grant", token: fixture.adminToken,
                                      body: ["user": user, "amount": amount, "reason": "test grant"],
                                      key.map { [.idempotencyKey: $0] } ?? [:])
        #expect(response.status == .ok, "\(String(buffer: response.body))", sourceLocation: sourceLocation)
        return try #require(int(try json(response), "position"), sourceLocation: sourceLocation)
    }

    static func unlock(_ client: any TestClientProtocol, _ token: String, _ username: String,
                       key: String? = nil) async throws -> TestResponse {
        try await send(client, .post, "/api/v1/creator/unlock/\(username)", token: token, body: nil, key.map { [.idempotencyKey: $0] } ?? [:])
    }

    @Test("grant, search, unlock, then the unlocked list shows it with its freshness")
    func happyPath() async throws {
        try await withAPI { fixture, client in
            let granted = try await Self.grant(fixture, client, APIFixture.alice, 3)
            #expect(granted > 0)

            let search = try await send(client, .post, "/api/v1/creator/search/NatGeo", token: fixture.aliceToken,
                                        body: ["served_from": "cache", "duration_ms": 12, "found": true])
            #expect(search.status == .ok, "\(String(buffer: search.body))")
            let searched = try expectFreshness(search)
            #expect(searched["username"] as? String == "natgeo")
            #expect(searched["unlocked"] as? Bool == false)
            let searchPosition = try #require(int(searched, "position"))
            #expect(searchPosition > granted)

            let unlock = try await Self.unlock(client, fixture.aliceToken, "NatGeo")
            #expect(unlock.status == .ok, "\(String(buffer: unlock.body))")
            let unlocked = try json(unlock)
            #expect(unlocked["username"] as? String == "natgeo")
            #expect(int(unlocked, "charged") == 1)
            #expect(int(unlocked, "balance") == 2)
            #expect(unlocked["already_unlocked"] as? Bool == false)
            #expect(unlocked["replayed"] as? Bool == false)
            let unlockPosition = try #require(int(unlocked, "position"))
            #expect(unlockPosition > searchPosition)
            #expect(fixture.head == UInt64(unlockPosition))

            for path in ["/api/v1/creator/unlocked", "/api/v1/simple/creator/unlocked"] {
                let list = try await send(client, .get, path, token: fixture.aliceToken, [.tallyAfter: String(unlockPosition)])
                #expect(list.status == .ok)
                let body = try expectFreshness(list)
                #expect(body["stale"] as? Bool == false)
                let freshness = body["freshness"] as? [String: Any]
                #expect(int(freshness, "position").map { $0 >= unlockPosition } == true, "\(body)")
                #expect(int(freshness, "head") == unlockPosition)
                #expect(int(freshness, "lag_events") == 0)
                #expect(int(body, "total") == 1)
                let profiles = try #require(body["profiles"] as? [[String: Any]])
                #expect(profiles.map { $0["username"] as? String } == ["natgeo"])
                #expect(int(profiles.first, "position") == unlockPosition)
                #expect(int(profiles.first, "credits_spent") == 1)
            }

            // The search now says the caller has unlocked it.
            let again = try await send(client, .post, "/api/v1/creator/search/natgeo", token: fixture.aliceToken,
                                       [.tallyAfter: String(unlockPosition)])
            let searchedAgain = try json(again)
            #expect(searchedAgain["unlocked"] as? Bool == true)

            let balance = try json(try await send(client, .get, "/api/v1/credits/balance", token: fixture.aliceToken, [.tallyAfter: String(fixture.head)]))
            #expect(balance["user"] as? String == APIFixture.alice)
            #expect(int(balance, "balance") == 2)
            #expect(int(balance, "total_granted") == 3)
            #expect(int(balance, "total_spent") == 1)
            #expect(int(balance, "unlocked") == 1)
        }
    }

    @Test("unlocking again charges nothing and writes nothing")
    func unlockAgain() async throws {
        try await withAPI { fixture, client in
            _ = try await Self.grant(fixture, client, APIFixture.alice, 2)
            let first = try json(try await Self.unlock(client, fixture.aliceToken, "nasa"))
            let head = fixture.head
            let second = try await Self.unlock(client, fixture.aliceToken, "NASA")
            #expect(second.status == .ok)
            let body = try json(second)
            #expect(body["already_unlocked"] as? Bool == true)
            #expect(int(body, "charged") == 0)
            #expect(int(body, "balance") == 1)
            #expect(int(body, "position") == int(first, "position"))
            #expect(fixture.head == head)
        }
    }

    @Test("repeating an unlock with its Idempotency-Key returns the same outcome, marked replayed")
    func idempotentUnlock() async throws {
        try await withAPI { fixture, client in
            _ = try await Self.grant(fixture, client, APIFixture.alice, 5)
            let first = try await Self.unlock(client, fixture.aliceToken, "nasa", key: "unlock-nasa-1")
            #expect(first.status == .ok)
            let original = try json(first)
            #expect(original["replayed"] as? Bool == false)
            let head = fixture.head

            let repeated = try await Self.unlock(client, fixture.aliceToken, "nasa", key: "unlock-nasa-1")
            #expect(repeated.status == .ok)
            let replay = try json(repeated)
            #expect(replay["replayed"] as? Bool == true)
            for key in ["username", "position", "charged", "already_unlocked", "balance"] {
                #expect((replay[key] as? NSObject) == (original[key] as? NSObject), "\(key): \(replay) vs \(original)")
            }
            #expect(fixture.head == head)
            let balance = try json(try await send(client, .get, "/api/v1/credits/balance", token: fixture.aliceToken, [.tallyAfter: String(fixture.head)]))
            #expect(int(balance, "balance") == 4)
        }
    }

    @Test("repeating a grant with its Idempotency-Key credits once")
    func idempotentGrant() async throws {
        try await withAPI { fixture, client in
            let first = try await Self.grant(fixture, client, APIFixture.bob, 7, key: "grant-bob-1")
            let second = try await Self.grant(fixture, client, APIFixture.bob, 7, key: "grant-bob-1")
            #expect(first == second)
            #expect(fixture.head == UInt64(first))
            let balance = try json(try await send(client, .get, "/api/v1/credits/balance", token: fixture.bobToken, [.tallyAfter: String(fixture.head)]))
            #expect(int(balance, "balance") == 7)
        }
    }

    @Test("402 insufficient_credits writes nothing")
    func insufficientCredits() async throws {
        try await withAPI { fixture, client in
            _ = try await send(client, .post, "/api/v1/creator/search/nasa", token: fixture.bobToken)
            let head = fixture.head
            #expect(head > 0)
            let response = try await Self.unlock(client, fixture.bobToken, "nasa", key: "bob-unlock-1")
            let body = try expectProblem(response, .init(code: 402), code: "insufficient_credits")
            #expect(int(body, "balance") == 0)
            #expect(int(body, "cost") == 1)
            #expect(fixture.head == head)
            let list = try json(try await send(client, .get, "/api/v1/creator/unlocked", token: fixture.bobToken,
                                               [.tallyAfter: String(head)]))
            #expect(int(list, "total") == 0)
        }
    }

    @Test("a user sees only their own unlocks and wallet")
    func ownDataOnly() async throws {
        try await withAPI { fixture, client in
            _ = try await Self.grant(fixture, client, APIFixture.alice, 4)
            let unlock = try json(try await Self.unlock(client, fixture.aliceToken, "natgeo"))
            let position = try #require(int(unlock, "position"))

            for uri in ["/api/v1/creator/unlocked", "/api/v1/creator/unlocked?user=alice"] {
                let list = try json(try await send(client, .get, uri, token: fixture.bobToken, [.tallyAfter: String(position)]))
                #expect(int(list, "total") == 0, "\(uri): \(list)")
                #expect((list["profiles"] as? [Any])?.isEmpty == true, "\(uri): \(list)")
            }
            for uri in ["/api/v1/credits/balance", "/api/v1/credits/balance?user=alice"] {
                let wallet = try json(try await send(client, .get, uri, token: fixture.bobToken, [.tallyAfter: String(fixture.head)]))
                #expect(wallet["user"] as? String == APIFixture.bob)
                #expect(int(wallet, "balance") == 0)
                #expect(int(wallet, "unlocked") == 0)
                #expect((wallet["recent"] as? [Any])?.isEmpty == true)
            }
            let search = try json(try await send(client, .post, "/api/v1/creator/search/natgeo", token: fixture.bobToken,
                                                 [.tallyAfter: String(position)]))
            #expect(search["unlocked"] as? Bool == false)
            let alice = try json(try await send(client, .get, "/api/v1/credits/balance", token: fixture.aliceToken, [.tallyAfter: String(fixture.head)]))
            #expect(int(alice, "balance") == 3)
        }
    }

    @Test("the unlocked list pages newest first with limit and cursor")
    func pagination() async throws {
        try await withAPI { fixture, client in
            _ = try await Self.grant(fixture, client, APIFixture.alice, 10)
            var last = 0
            for name in ["p1", "p2", "p3", "p4", "p5"] {
                last = try #require(int(try json(try await Self.unlock(client, fixture.aliceToken, name)), "position"))
            }
            var seen: [String] = []
            var cursor: String?
            var pages = 0
            repeat {
                let uri = "/api/v1/creator/unlocked?limit=2" + (cursor.map { "&cursor=\($0)" } ?? "")
                let response = try await send(client, .get, uri, token: fixture.aliceToken, [.tallyAfter: String(last)])
                #expect(response.status == .ok)
                let body = try expectFreshness(response)
                #expect(int(body, "total") == 5)
                let profiles = try #require(body["profiles"] as? [[String: Any]])
                #expect(profiles.count == (pages < 2 ? 2 : 1))
                seen += profiles.compactMap { $0["username"] as? String }
                cursor = body["next_cursor"] as? String
                pages += 1
            } while cursor != nil && pages < 10
            #expect(pages == 3)
            #expect(seen == ["p5", "p4", "p3", "p2", "p1"])

            let all = try json(try await send(client, .get, "/api/v1/simple/creator/unlocked?limit=100", token: fixture.aliceToken,
                                              [.tallyAfter: String(last)]))
            #expect((all["profiles"] as? [Any])?.count == 5)
            #expect(all["next_cursor"] == nil || all["next_cursor"] is NSNull)
        }
    }

    @Test("limit out of 1...100 or not a number is 400", arguments: ["0", "101", "-1", "abc", "2.5", ""])
    func badLimit(limit: String) async throws {
        try await withAPI { fixture, client in
            let response = try await send(client, .get, "/api/v1/creator/unlocked?limit=\(limit)", token: fixture.aliceToken)
            try expectProblem(response, .badRequest, code: "invalid_input")
        }
    }

    @Test("an invalid grant is 400 and writes nothing",
          arguments: [#"{"user":"alice","amount":0,"reason":"x"}"#, #"{"user":"alice","amount":-5,"reason":"x"}"#,
                      #"{"user":"alice","amount":5}"#, #"{"user":"","amount":5,"reason":"x"}"#,
                      #"{"user":"alice","amount":"5","reason":"x"}"#, #"{"user":"alice","#, ""])
    func invalidGrant(body: String) async throws {
        try await withAPI { fixture, client in
            let response = try await send(client, .post, "/api/v1/credits/grant", token: fixture.adminToken, body: body)
            #expect(response.status == .badRequest, "\(body): \(response.status) \(String(buffer: response.body))")
            #expect(response.headers[.contentType] == "application/problem+json")
            #expect(fixture.head == 0)
        }
    }

    @Test("an invalid search is 400 and writes nothing",
          arguments: [("/api/v1/creator/search/bad%20name", ""), ("/api/v1/creator/search/natgeo", #"{"served_from":"disk"}"#),
                      ("/api/v1/creator/search/natgeo", #"{"duration_ms":-1}"#), ("/api/v1/creator/search/natgeo", "{not json")])
    func invalidSearch(uri: String, body: String) async throws {
        try await withAPI { fixture, client in
            let response = try await send(client, .post, uri, token: fixture.aliceToken, body: body.isEmpty ? nil : body)
            #expect(response.status == .badRequest, "\(uri) \(body): \(response.status) \(String(buffer: response.body))")
            #expect(response.headers[.contentType] == "application/problem+json")
            #expect(fixture.head == 0)
        }
    }

    @Test("an Idempotency-Key reused for a different command is refused and writes nothing")
    func keyReusedElsewhere() async throws {
        try await withAPI { fixture, client in
            _ = try await Self.grant(fixture, client, APIFixture.alice, 5, key: "grant-alice-1")
            #expect(try await Self.unlock(client, fixture.aliceToken, "nasa", key: "alice-key-1").status == .ok)
            let head = fixture.head
            let other = try await Self.unlock(client, fixture.aliceToken, "natgeo", key: "alice-key-1")
            let otherBody = try expectProblem(other, .unprocessableContent, code: "idempotency_key_reused")
            #expect(otherBody["field"] as? String == "idempotency_key", "\(otherBody)")
            let regrant = try await send(client, .post, "/api/v1/credits/grant", token: fixture.adminToken,
                                         body: ["user": APIFixture.alice, "amount": 500, "reason": "test grant"],
                                         [.idempotencyKey: "grant-alice-1"])
            let regrantBody = try expectProblem(regrant, .unprocessableContent, code: "idempotency_key_reused")
            #expect(regrantBody["field"] as? String == "idempotency_key", "\(regrantBody)")
            #expect(fixture.head == head)
            let balance = try json(try await send(client, .get, "/api/v1/credits/balance", token: fixture.aliceToken, [.tallyAfter: String(fixture.head)]))
            #expect(int(balance, "balance") == 4)
            #expect(int(balance, "unlocked") == 1)
        }
    }

    @Test("concurrent unlocks never spend the same credit twice")
    func concurrentUnlocks() async throws {
        try await withAPI { fixture, client in
            _ = try await Self.grant(fixture, client, APIFixture.alice, 3)
            let names = (0..<8).map { "creator_\($0)" }
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for name in names {
                    group.addTask { Int(try await Self.unlock(client, fixture.aliceToken, name).status.code) }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == 200 }.count == 3, "\(statuses.sorted())")
            #expect(statuses.filter { $0 == 402 }.count == 5, "\(statuses.sorted())")
            let balance = try json(try await send(client, .get, "/api/v1/credits/balance", token: fixture.aliceToken, [.tallyAfter: String(fixture.head)]))
            #expect(int(balance, "balance") == 0)
            #expect(int(balance, "total_spent") == 3)
            let list = try json(try await send(client, .get, "/api/v1/creator/unlocked", token: fixture.aliceToken,
                                               [.tallyAfter: String(fixture.head)]))
            #expect(int(list, "total") == 3)
        }
    }

    @Test("an unlock of an invalid username is 400 and writes nothing",
          arguments: ["bad%20name", "bad-name", String(repeating: "a", count: 200)])
    func invalidUnlock(username: String) async throws {
        try await withAPI { fixture, client in
            _ = try await Self.grant(fixture, client, APIFixture.alice, 5)
            let head = fixture.head
            let response = try await Self.unlock(client, fixture.aliceToken, username)
            #expect(response.status == .badRequest, "\(response.status) \(String(buffer: response.body))")
            #expect(response.headers[.contentType] == "application/problem+json")
            #expect(fixture.head == head)
        }
    }
}
