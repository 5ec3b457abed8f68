import API
import Commands
import EventLog
import Events
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import TallyTestSupport
import Testing

/// One server never conflicts with itself: commands on the same user take turns. A conflict
/// that still reaches a client comes from another writer and is a retryable 409.
@Suite("Per-stream lanes through the router", .timeLimit(.minutes(5)))
struct StreamLaneRouteTests {
    @Test("64 concurrent tasks over 4 users: unlocks, searches and grants end with zero 409 and exact balances")
    func concurrentCommandsOnFewUsers() async throws {
        try await withTallyFixture(label: "lanes", configure: { $0.consistencyWait = .milliseconds(200) }) { fixture in
            let users = try await (0..<4).asyncMap { index in ("lane_user_\(index)", try await fixture.token(.user, "lane_user_\(index)")) }
            try await fixture.makeApplication().test(.router) { client in
                for (user, _) in users {
                    let seeded = try await send(client, .post, "/api/v1/credits/grant", token: fixture.adminToken,
                                                body: ["user": user, "amount": 100, "reason": "seed"])
                    #expect(seeded.status == .ok)
                }
                let statuses = try await withThrowingTaskGroup(of: [Int].self) { group in
                    for task in 0..<64 {
                        let (user, token) = users[task % 4]
                        group.addTask {
                            let unlock = try await send(client, .post, "/api/v1/creator/unlock/creator_\(task)", token: token)
                            let search = try await send(client, .post, "/api/v1/creator/search/creator_\(task)", token: token)
                            let grant = try await send(client, .post, "/api/v1/credits/grant", token: fixture.adminToken,
                                                       body: ["user": user, "amount": 2, "reason": "drip"])
                            return [unlock, search, grant].map { Int($0.status.code) }
                        }
                    }
                    return try await group.reduce(into: [Int]()) { $0 += $1 }
                }
                #expect(statuses.filter { $0 == 409 }.isEmpty, "\(statuses.filter { $0 != 200 })")
                #expect(statuses.allSatisfy { $0 == 200 }, "\(statuses.filter { $0 != 200 })")
                for (_, token) in users {
                    let balance = try json(try await send(client, .get, "/api/v1/credits/balance", token: token))
                    #expect(int(balance, "balance") == 100 - 16 + 32, "\(balance)")
                    #expect(int(balance, "unlocked") == 16)
                }
                #expect(fixture.commands.lanesInUse == 0)
            }
        }
    }

    @Test("a stream another writer keeps moving is 409 with Retry-After after the bounded retries, and nothing is written")
    func otherWriterConflictIsRetryable() async throws {
        try await withTallyFixture(label: "overtaken", store: {
            FaultInjectingStore(base: try FileLog(directory: $0 + "/log", options: .init(fsync: .never)))
        }) { fixture in
            try await fixture.makeApplication().test(.router) { client in
                let granted = try await send(client, .post, "/api/v1/credits/grant", token: fixture.adminToken,
                                             body: ["user": TallyFixture<FileLog>.alice, "amount": 5, "reason": "seed"])
                #expect(granted.status == .ok)
                // Another server searches in alice's stream just before each of this server's appends.
                fixture.store.mode = .overtaken { stream in
                    DomainEvent.creatorSearched(CreatorSearched(user: TallyFixture<FileLog>.alice, username: "elsewhere", servedFrom: .fresh,
                                                                durationMs: 1, found: true))
                        .proposed(actor: "user:alice", correlationID: "other-server", causationID: "", recordedAt: nil)
                }
                let unlock = try await send(client, .post, "/api/v1/creator/unlock/nasa", token: fixture.aliceToken)
                let problem = try expectProblem(unlock, .conflict, code: "conflict")
                #expect(unlock.headers[.retryAfter] == "1", "\(unlock.headers)")
                #expect((problem["detail"] as? String)?.contains("attempts conflicted") == true, "\(problem)")
                fixture.store.mode = .normal
                let events = try await fixture.store.base.readStream(WalletState.stream(of: TallyFixture<FileLog>.alice))
                #expect(!events.contains { $0.type == "ProfileUnlocked" })
                #expect(events.filter { $0.type == "CreatorSearched" }.count == 8)
                let balance = try json(try await send(client, .get, "/api/v1/credits/balance", token: fixture.aliceToken))
                #expect(int(balance, "balance") == 5)
            }
        }
    }

    /// A command that is still waiting for its stream's lane when its deadline passes is
    /// answered 503 and leaves the queue: it never writes, not even once the command ahead of
    /// it lands. Before, it kept its place and unlocked after the client had been told 503.
    @Test("a command still waiting for its lane at the deadline is 503 and never writes; its retry with the same key writes once")
    func abandonedWaiterNeverWrites() async throws {
        try await withTallyFixture(label: "abandoned", configure: { $0.commandTimeout = .milliseconds(300); $0.breakerFailureThreshold = 100 }, store: {
            FaultInjectingStore(base: try FileLog(directory: $0 + "/log", options: .init(fsync: .never)))
        }) { fixture in
            let alice = TallyFixture<FileLog>.alice
            let unlocked = { @Sendable () async throws -> [String] in
                try await fixture.store.base.readStream(WalletState.stream(of: alice)).compactMap { event -> String? in
                    if case .profileUnlocked(let unlock)? = event.domainEvent { return unlock.username }
                    return nil
                }
            }
            try await fixture.makeApplication().test(.router) { client in
                let granted = try await send(client, .post, "/api/v1/credits/grant", token: fixture.adminToken,
                                             body: ["user": alice, "amount": 5, "reason": "seed"])
                #expect(granted.status == .ok)
                // The first unlock's append sleeps in the store for 2 s, past its deadline, holding alice's lane.
                fixture.store.mode = .slowAppends(.seconds(2))
                let first = Task { try await send(client, .post, "/api/v1/creator/unlock/first_in_line", token: fixture.aliceToken, [.idempotencyKey: "u-1"]) }
                try await waitUntil("the first unlock's append is in the store") { fixture.store.inFlight == 1 }
                let second = try await send(client, .post, "/api/v1/creator/unlock/second_in_line", token: fixture.aliceToken, [.idempotencyKey: "u-2"])
                _ = try expectProblem(second, .serviceUnavailable, code: "store_unavailable")
                _ = try expectProblem(try await first.value, .serviceUnavailable, code: "store_unavailable")
                fixture.store.mode = .normal
                // The first append was already in the store: it lands, durably. The second never reached it.
                try await waitUntil("the first append landed and every lane is free") {
                    fixture.store.inFlight == 0 && fixture.commands.lanesInUse == 0
                }
                let afterFirst = try await unlocked()
                #expect(afterFirst == ["first_in_line"])
                // The client retries the second with its key: written once, and once only.
                for _ in 0..<2 {
                    let retried = try await send(client, .post, "/api/v1/creator/unlock/second_in_line", token: fixture.aliceToken, [.idempotencyKey: "u-2"])
                    #expect(retried.status == .ok)
                }
                let afterRetries = try await unlocked()
                #expect(afterRetries == ["first_in_line", "second_in_line"])
            }
        }
    }
}

extension Sequence {
    fileprivate func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
