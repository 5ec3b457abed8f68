import Commands
import EventLog
import Events
import Foundation
import Hummingbird
import HummingbirdTesting
import TallyTestSupport
import Testing
@testable import API

/// `GET /api/v1/credits/balance` answers from the unlocked-profiles view with its freshness,
/// like every read: while the store is failing and the breaker open it is a 200, not a 503.
@Suite(.timeLimit(.minutes(5))) struct BalanceViewTests {
    @Test func theBalanceAnswersFromTheViewWhileTheStoreIsDown() async throws {
        try await withTallyFixture(configure: { configuration in
            configuration.consistencyWait = .milliseconds(300)
            configuration.breakerFailureThreshold = 2
            configuration.breakerOpenDuration = .seconds(600)
        }, store: { directory in FaultInjectingStore(base: try FileLog(directory: directory + "/log", options: .init(fsync: .never))) }) { fixture in
            let (store, breaker) = (fixture.store, fixture.api.breaker)
            try await fixture.makeApplication().test(.router) { client in
                #expect(try await send(client, .post, "/api/v1/credits/grant", token: fixture.adminToken, body: #"{"user":"alice","amount":5,"reason":"promo"}"#).status == .ok)
                let unlock = try json(try await send(client, .post, "/api/v1/creator/unlock/natgeo", token: fixture.aliceToken))
                let written = try #require(int(unlock, "position"))
                // The store fails: commands open the breaker.
                store.mode = .failing
                for _ in 0..<2 {
                    #expect(try await send(client, .post, "/api/v1/creator/unlock/nasa", token: fixture.aliceToken).status == .serviceUnavailable)
                }
                #expect(breaker.current == .open)
                let response = try await send(client, .get, "/api/v1/credits/balance", token: fixture.aliceToken, [.tallyAfter: String(written)])
                #expect(response.status == .ok, "\(String(buffer: response.body))")
                let body = try expectFreshness(response)
                #expect(body["stale"] as? Bool == false)
                #expect(body["user"] as? String == "alice")
                #expect(int(body, "balance") == 4 && int(body, "total_granted") == 5 && int(body, "total_spent") == 1 && int(body, "unlocked") == 1)
                #expect(int(body, "position") == written)
                let recent = body["recent"] as? [[String: Any]] ?? []
                #expect(recent.map { $0["kind"] as? String } == ["unlock", "grant"])
                #expect(recent.map { $0["detail"] as? String } == ["natgeo", "promo"])
                #expect(recent.map { int($0, "balance_after") } == [4, 5])
                #expect(recent.allSatisfy { ($0["recorded_at"] as? String)?.hasSuffix("Z") == true })
                // A position the view cannot reach answers after the bounded wait, marked stale.
                let ahead = try await send(client, .get, "/api/v1/credits/balance", token: fixture.aliceToken, [.tallyAfter: String(written + 50)])
                #expect(ahead.status == .ok)
                #expect(try json(ahead)["stale"] as? Bool == true)
            }
        }
    }

    @Test func recentMovementsAreTheLastTwentyNewestFirstAndUnknownUsersAreZero() async throws {
        try await withAPI { fixture, client in
            for i in 1...23 {
                _ = try await fixture.commands.grantCredits(user: "alice", amount: Int64(i), reason: "g\(i)", context: CommandContext(actor: "test"))
            }
            let body = try json(try await send(client, .get, "/api/v1/credits/balance", token: fixture.aliceToken, [.tallyAfter: String(fixture.head)]))
            let recent = body["recent"] as? [[String: Any]] ?? []
            #expect(recent.count == 20)
            #expect(recent.first?["detail"] as? String == "g23" && recent.last?["detail"] as? String == "g4")
            #expect(int(body, "balance") == (1...23).reduce(0, +))
            // The view and the commands' own wallet agree.
            let wallet = try await fixture.commands.wallet(user: "alice")
            #expect(int(body, "balance") == Int(wallet.balance) && int(body, "position") == Int(wallet.position))
            #expect(recent.map { int($0, "position") } == wallet.recentMovements.map { Int($0.position) })
            let bob = try json(try await send(client, .get, "/api/v1/credits/balance", token: fixture.bobToken, [.tallyAfter: String(fixture.head)]))
            #expect(int(bob, "balance") == 0 && int(bob, "position") == 0 && (bob["recent"] as? [Any])?.isEmpty == true)
        }
    }
}
