import Commands
import EventLog
import Events
import Foundation
import Hummingbird
import HummingbirdTesting
import Synchronization
import TallyTestSupport
import Testing
@testable import API

extension BreakerStateMachine {
    /// The queued transitions as one append would take them, taken as appended.
    mutating func takeUnrecorded() -> [CircuitBreakerChanged] {
        guard let batch = beginRecording() else { return [] }
        endRecording(appended: true)
        return batch.transitions
    }
}

/// Breaker transitions are durable: queued until an append of them succeeds, in order,
/// exactly once; bounded, the oldest dropped and counted.
@Suite(.timeLimit(.minutes(5))) struct BreakerTransitionRecordingTests {
    typealias Machine = BreakerStateMachine<ManualClock>

    /// A machine that went open → half-open → closed.
    static func cycled(_ machine: inout Machine, _ clock: ManualClock) {
        machine.failed(reason: "disk gone")
        clock.advance(by: .seconds(5))
        _ = machine.admit()
        machine.succeeded()
    }

    @Test func aFailedAppendKeepsTheBatchAndTheSameBatchComesAgain() {
        let clock = ManualClock()
        var machine = Machine(failureThreshold: 1, openDuration: .seconds(5), clock: clock)
        Self.cycled(&machine, clock)
        let firstBatch = machine.beginRecording()
        let first = try! #require(firstBatch)
        #expect(first.transitions.map(\.state) == [.open, .halfOpen, .closed])
        #expect(machine.beginRecording() == nil, "one append of the transitions at a time")
        // More transitions while the append runs; then it fails.
        Self.cycled(&machine, clock)
        machine.endRecording(appended: false)
        #expect(machine.pendingTransitions == 6)
        // The same batch again (same first sequence and count: the same idempotency key).
        let retryBatch = machine.beginRecording()
        let retry = try! #require(retryBatch)
        #expect(retry == first)
        machine.endRecording(appended: true)
        let nextBatch = machine.beginRecording()
        let next = try! #require(nextBatch)
        #expect(next.firstSequence == 3 && next.transitions.map(\.state) == [.open, .halfOpen, .closed])
        machine.endRecording(appended: true)
        #expect(machine.beginRecording() == nil && machine.pendingTransitions == 0)
    }

    @Test func theQueueIsBoundedAndDropsTheOldestNotInFlight() {
        let clock = ManualClock()
        var machine = Machine(failureThreshold: 1, openDuration: .seconds(5), clock: clock)
        machine.failed(reason: "first")
        // Open ↔ half-open, a failed trial every time: two transitions per round, never closed.
        let capacity = Machine.unrecordedCapacity
        for i in 0..<capacity {
            clock.advance(by: .seconds(5))
            #expect(machine.admit() == .trial)
            machine.failed(reason: "round \(i)")
        }
        #expect(machine.pendingTransitions == capacity)
        #expect(machine.droppedTransitions == capacity + 1)
        clock.advance(by: .seconds(5))
        _ = machine.admit()
        machine.succeeded()
        let batchBatch = machine.beginRecording()
        let batch = try! #require(batchBatch)
        #expect(batch.transitions.count == capacity)
        #expect(batch.transitions.last?.state == .closed, "the newest are kept")
        #expect(!batch.transitions.contains { $0.reason.hasSuffix("last: first") }, "the oldest were dropped")
        #expect(batch.firstSequence == UInt64(machine.droppedTransitions))
        // While this batch is being appended, transitions past the bound drop the oldest
        // queued after it, never the batch itself.
        let dropsBefore = machine.droppedTransitions
        machine.failed(reason: "again")
        for i in 0..<capacity {
            clock.advance(by: .seconds(5))
            #expect(machine.admit() == .trial)
            machine.failed(reason: "again \(i)")
        }
        #expect(machine.pendingTransitions == 2 * capacity)
        #expect(machine.droppedTransitions == dropsBefore + capacity + 1)
        machine.endRecording(appended: true)
        #expect(machine.pendingTransitions == capacity)
    }

    @Test func storeBreakerRetriesAFailedRecordingAfterTheNextSuccess() async throws {
        let breaker = StoreBreaker(failureThreshold: 1, openDuration: .milliseconds(1))
        await #expect(throws: CommandError.self) {
            try await breaker.run { () async throws -> Int in throw CommandError(.storeUnavailable, "down") }
        }
        try await waitUntil("the half-open trial closed the breaker") { (try? await breaker.run { 1 }) == 1 }
        #expect(breaker.current == .closed)
        let recorded = Mutex<[[BreakerState]]>([])
        let keys = Mutex<[String]>([])
        // The first append of the transitions fails; they are kept.
        _ = try await breaker.run({ 2 }, recording: { transitions, key in
            keys.withLock { $0.append(key) }
            return false
        })
        #expect(breaker.pendingTransitions == 3)
        // The next successful command appends them, with the same key.
        _ = try await breaker.run({ 3 }, recording: { transitions, key in
            keys.withLock { $0.append(key) }
            recorded.withLock { $0.append(transitions.map(\.state)) }
            return true
        })
        _ = try await breaker.run({ 4 }, recording: { transitions, _ in
            recorded.withLock { $0.append(transitions.map(\.state)) }
            return true
        })
        #expect(recorded.withLock { $0 } == [[.open, .halfOpen, .closed]], "in order, exactly once")
        let sent = keys.withLock { $0 }
        #expect(sent.count == 2 && sent[0] == sent[1] && sent[0].hasPrefix("breaker-"))
        #expect(breaker.pendingTransitions == 0)
    }

    @Test func throughTheRouterAFailedAppendOfTheTransitionsLosesNothing() async throws {
        try await withTallyFixture(configure: { configuration in
            configuration.breakerFailureThreshold = 2
            configuration.breakerOpenDuration = .seconds(600)
        }, store: { directory in FaultInjectingStore(base: try FileLog(directory: directory + "/log", options: .init(fsync: .never))) }) { fixture in
            let (store, log, breaker) = (fixture.store, fixture.store.base, fixture.api.breaker)
            let admin: HTTPFields = [.authorization: "Bearer " + fixture.adminToken, .contentType: "application/json"]
            let grant = ByteBuffer(string: #"{"user":"alice","amount":1,"reason":"t"}"#)
            @Sendable func states() async throws -> [BreakerState] {
                try await log.readStream("health-store").compactMap { event -> BreakerState? in
                    if case .circuitBreakerChanged(let change)? = event.domainEvent { return change.state }
                    return nil
                }
            }
            try await fixture.makeApplication().test(.router) { client in
                for round in 0..<2 {
                    store.mode = .failing
                    for _ in 0..<2 {
                        try await client.execute(uri: "/api/v1/credits/grant", method: .post, headers: admin, body: grant) {
                            #expect($0.status == .serviceUnavailable)
                        }
                    }
                    #expect(breaker.current == .open)
                    // The store is back for commands but fails the transitions' own append.
                    store.mode = .normal
                    store.failingStreams = ["health-store"]
                    try await client.execute(uri: "/api/v1/system/recovery/database", method: .post, headers: admin) { #expect($0.status == .ok) }
                    try await client.execute(uri: "/api/v1/credits/grant", method: .post, headers: admin, body: grant) { #expect($0.status == .ok) }
                    #expect(breaker.current == .closed)
                    #expect(breaker.pendingTransitions == 3)
                    let written = try await states().count
                    #expect(written == 3 * round, "nothing written while that append fails")
                    // The next successful command writes them; later ones write nothing again.
                    store.failingStreams = []
                    for _ in 0..<2 {
                        try await client.execute(uri: "/api/v1/credits/grant", method: .post, headers: admin, body: grant) { #expect($0.status == .ok) }
                    }
                    #expect(breaker.pendingTransitions == 0)
                }
            }
            let all = try await states()
            #expect(all == [.open, .halfOpen, .closed, .open, .halfOpen, .closed])
            #expect(breaker.droppedTransitions == 0)
        }
    }
}
