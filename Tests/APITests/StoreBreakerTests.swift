import Commands
import EventLog
import Events
import Hummingbird
import HummingbirdTesting
import Synchronization
import TallyTestSupport
import Testing
@testable import API

/// The breaker in front of the store: opens after consecutive store failures, refuses fast
/// while open, half-opens after its delay, closes on a success; request refusals do not count.
@Suite(.timeLimit(.minutes(5))) struct StoreBreakerTests {
    struct Down: Error {}

    static func storeFailure() -> CommandError { CommandError(.storeUnavailable, "the store is closed") }

    @Test func opensRefusesHalfOpensAndCloses() async throws {
        let breaker = StoreBreaker(failureThreshold: 3, openDuration: .milliseconds(200))
        let calls = Mutex(0)
        for _ in 0..<3 {
            await #expect(throws: CommandError.self) {
                try await breaker.run { () async throws -> Int in
                    calls.withLock { $0 += 1 }
                    throw Self.storeFailure()
                }
            }
        }
        #expect(breaker.current == .open)
        // Open: refused without calling the store, with a 503 and Retry-After.
        do {
            _ = try await breaker.run { () async throws -> Int in
                calls.withLock { $0 += 1 }
                return 1
            }
            Issue.record("an open breaker let a command through")
        } catch let refusal as BreakerOpen {
            // The breaker says why, in no HTTP terms; the one mapping makes it a 503.
            #expect(refusal.state == .open)
            let problem = Problem(refusal)
            #expect(problem.status == .serviceUnavailable && problem.code.rawValue == "store_unavailable")
            #expect((problem.retryAfter ?? 0) >= 1)
        }
        #expect(calls.withLock { $0 } == 3)
        #expect(breaker.takeUnrecorded().isEmpty, "transitions are written only once the store is back")

        try await Task.sleep(for: .milliseconds(250))
        // Half-open: one trial; its success closes the breaker.
        #expect(try await breaker.run { () async throws -> Int in 7 } == 7)
        #expect(breaker.current == .closed)
        let transitions = breaker.takeUnrecorded().map(\.state)
        #expect(transitions == [.open, .halfOpen, .closed])
        #expect(breaker.takeUnrecorded().isEmpty)
    }

    @Test func aFailedTrialOpensAgainAndRefusalsDoNotCount() async throws {
        let breaker = StoreBreaker(failureThreshold: 2, openDuration: .milliseconds(100))
        // Invalid input and insufficient credits say nothing about the store.
        for code in [CommandError.Code.invalidInput, .insufficientCredits, .conflict] {
            await #expect(throws: CommandError.self) {
                try await breaker.run { () async throws -> Int in throw CommandError(code, "refused") }
            }
        }
        #expect(breaker.current == .closed)
        for _ in 0..<2 {
            await #expect(throws: CommandError.self) { try await breaker.run { () async throws -> Int in throw Self.storeFailure() } }
        }
        #expect(breaker.current == .open)
        try await Task.sleep(for: .milliseconds(150))
        await #expect(throws: CommandError.self) { try await breaker.run { () async throws -> Int in throw Self.storeFailure() } }
        #expect(breaker.current == .open)
        // The operator's reset half-opens at once.
        breaker.reset(reason: "test")
        #expect(breaker.current == .halfOpen)
        #expect(try await breaker.run { () async throws -> Int in 1 } == 1)
        #expect(breaker.current == .closed)
    }

    /// Against a real log that closes: commands get 503s, the breaker opens, reads still answer.
    @Test func aClosedStoreOpensTheBreakerWhileViewsStillAnswer() async throws {
        try await withTallyFixture(configure: opsConfiguration) { fixture in
            let user = try await fixture.token(.user, "alice")
            let app = Application(router: fixture.api.makeRouter())
            try await app.test(.router) { client in
                try await client.execute(uri: "/api/v1/creator/search/somebody", method: .post, headers: [.authorization: "Bearer " + user]) { response in
                    #expect(response.status == .ok)
                }
                try await fixture.log.close()
                var statuses: [Int] = []
                for _ in 0..<7 {
                    try await client.execute(uri: "/api/v1/creator/search/somebody", method: .post, headers: [.authorization: "Bearer " + user]) { response in
                        statuses.append(response.status.code)
                        #expect(response.headers[.retryAfter] != nil)
                    }
                }
                #expect(statuses.allSatisfy { $0 == 503 })
                #expect(fixture.api.breaker.current == .open)
                try await client.execute(uri: "/api/v1/system/stats", method: .get, headers: [.authorization: "Bearer " + user]) { response in
                    #expect(response.status == .ok, "reads keep answering from the last views")
                }
            }
        }
    }
}
