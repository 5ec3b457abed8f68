import Commands
import EventLog
import Events
import Foundation
import Hummingbird
import HummingbirdTesting
import Projections
import Synchronization
import TallyTestSupport
import Testing
@testable import API

@Suite(.timeLimit(.minutes(5))) struct DegradationTests {
    @Test func slowAndFailingStoreOpensTheBreakerReadsKeepAnsweringAndRetriesAreSafe() async throws {
        // The breaker opens for far longer than the test: it recovers only through the
        // operator's reset, so no step depends on how fast the machine is.
        try await withTallyFixture(configure: { configuration in
            configuration.consistencyWait = .milliseconds(300)
            configuration.breakerFailureThreshold = 3
            configuration.breakerOpenDuration = .seconds(600)
            configuration.commandTimeout = .milliseconds(200)
        }, store: { directory in FaultInjectingStore(base: try FileLog(directory: directory + "/log", options: .init(fsync: .never))) }) { fixture in
            let (store, log, breaker) = (fixture.store, fixture.store.base, fixture.api.breaker)
            let user: HTTPFields = [.authorization: "Bearer " + fixture.aliceToken]
            let admin: HTTPFields = [.authorization: "Bearer " + fixture.adminToken]
            try await fixture.makeApplication().test(.router) { client in
                try await client.execute(uri: "/api/v1/credits/grant", method: .post, headers: admin,
                                         body: ByteBuffer(string: #"{"user":"alice","amount":10,"reason":"t"}"#)) { #expect($0.status == .ok) }
                try await client.execute(uri: "/api/v1/system/stats", method: .get, headers: user.merging([.tallyAfter: "1"])) {
                    #expect($0.status == .ok)
                }

                // Slow store: each unlock misses the deadline (503, Retry-After); after three the breaker is open.
                store.mode = .slow(.seconds(1))
                for i in 0..<3 {
                    var headers = user
                    headers[.idempotencyKey] = "unlock-\(i)"
                    try await client.execute(uri: "/api/v1/creator/unlock/creator\(i)", method: .post, headers: headers) { response in
                        #expect(response.status == .serviceUnavailable)
                        #expect(response.headers[.retryAfter] != nil)
                    }
                }
                #expect(breaker.current == .open)
                // Failing store: commands are refused at once; reads answer from the last views.
                store.mode = .failing
                try await client.execute(uri: "/api/v1/creator/unlock/other", method: .post, headers: user) { response in
                    #expect(response.status == .serviceUnavailable)
                    #expect(String(buffer: response.body).contains(#""breaker":"open""#), "refused by the open breaker, not by the store")
                }
                try await client.execute(uri: "/api/v1/system/stats", method: .get, headers: user) { response in
                    #expect(response.status == .ok)
                }
                try await client.execute(uri: "/api/v1/creator/unlocked", method: .get, headers: user) { #expect($0.status == .ok) }

                // Back: the operator half-opens the breaker; client retries with their keys are safe.
                // The abandoned slow attempts still hold alice's lane (her commands take turns), so
                // a retry sent while one sleeps in the store would wait behind it past the
                // deadline: the retries go once no store call is still sleeping.
                store.mode = .normal
                try await waitUntil("the slow store calls returned") { store.inFlight == 0 }
                try await client.execute(uri: "/api/v1/system/recovery/database", method: .post, headers: admin) { #expect($0.status == .ok) }
                for i in 0..<3 {
                    var headers = user
                    headers[.idempotencyKey] = "unlock-\(i)"
                    try await client.execute(uri: "/api/v1/creator/unlock/creator\(i)", method: .post, headers: headers) { #expect($0.status == .ok) }
                }
                #expect(breaker.current == .closed)
            }
            // Each unlock exactly once, however many times it was sent: once the slow first
            // attempts have landed (none is in flight), their keys have deduplicated the retries.
            try await waitUntil("the slow appends landed") { store.inFlight == 0 }
            let unlocks = try await log.readStream("user-alice").filter { $0.type == EventType.profileUnlocked.rawValue }
            #expect(unlocks.count == 3)
            let transitions = try await log.readStream("health-store").compactMap { event -> BreakerState? in
                if case .circuitBreakerChanged(let change)? = event.domainEvent { return change.state }
                return nil
            }
            #expect(transitions == [.open, .halfOpen, .closed])
        }
    }
}

extension HTTPFields {
    func merging(_ other: HTTPFields) -> HTTPFields {
        var merged = self
        for field in other { merged[field.name] = field.value }
        return merged
    }
}
