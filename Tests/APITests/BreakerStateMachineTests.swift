import Events
import Synchronization
import TallyTestSupport
import Testing
@testable import API

/// A clock that moves only when told: the breaker's timing without waiting.
final class ManualClock: Clock, Sendable {
    struct Instant: InstantProtocol {
        var offset: Duration
        func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
        func duration(to other: Instant) -> Duration { other.offset - offset }
        static func < (a: Instant, b: Instant) -> Bool { a.offset < b.offset }
    }

    private let time = Mutex(Instant(offset: .zero))
    var now: Instant { time.withLock { $0 } }
    var minimumResolution: Duration { .nanoseconds(1) }

    func advance(by duration: Duration) { time.withLock { $0 = $0.advanced(by: duration) } }

    func sleep(until deadline: Instant, tolerance: Duration?) async throws {
        // Not used by the breaker; polls so a test could use it without hanging forever.
        while now < deadline { try await Task.sleep(for: .milliseconds(1)) }
    }
}

/// The breaker's decisions with a hand-moved clock: no store, no tasks, no waiting.
@Suite struct BreakerStateMachineTests {
    typealias Machine = BreakerStateMachine<ManualClock>

    static func opened(threshold: Int = 3, openFor: Duration = .seconds(5)) -> (Machine, ManualClock) {
        let clock = ManualClock()
        var machine = Machine(failureThreshold: threshold, openDuration: openFor, clock: clock)
        for _ in 0..<threshold {
            #expect(machine.admit() == .allow)
            machine.failed(reason: "disk gone")
        }
        return (machine, clock)
    }

    @Test func closedAllowsAndOpensOnlyAfterTheThresholdOfConsecutiveFailures() {
        var machine = Machine(failureThreshold: 3, openDuration: .seconds(5), clock: ManualClock())
        machine.failed(reason: "a")
        machine.failed(reason: "b")
        machine.succeeded()
        #expect(machine.failures == 0, "a success resets the count: failures must be consecutive")
        machine.failed(reason: "c")
        machine.failed(reason: "d")
        #expect(machine.state == .closed)
        #expect(machine.admit() == .allow)
        machine.failed(reason: "e")
        #expect(machine.state == .open)
    }

    @Test func refusalsOfTheRequestDoNotCount() {
        var machine = Machine(failureThreshold: 1, openDuration: .seconds(5), clock: ManualClock())
        for _ in 0..<10 {
            #expect(machine.admit() == .allow)
            machine.refused()
        }
        #expect(machine.state == .closed && machine.failures == 0)
    }

    @Test func openRejectsWithTheTimeLeftThenHalfOpensForOneTrial() {
        let (opened, clock) = Self.opened(openFor: .seconds(5))
        var machine = opened
        #expect(machine.admit() == .reject(retryAfter: .seconds(5), state: .open))
        clock.advance(by: .milliseconds(3_500))
        #expect(machine.admit() == .reject(retryAfter: .milliseconds(1_500), state: .open))
        clock.advance(by: .milliseconds(1_500))
        #expect(machine.admit() == .trial)
        #expect(machine.state == .halfOpen)
        // One trial at a time.
        #expect(machine.admit() == .reject(retryAfter: .seconds(1), state: .halfOpen))
        machine.succeeded()
        #expect(machine.state == .closed)
        #expect(machine.admit() == .allow)
    }

    @Test func aFailedTrialOpensAgainForTheWholeDuration() {
        let (opened, clock) = Self.opened(openFor: .seconds(2))
        var machine = opened
        clock.advance(by: .seconds(2))
        #expect(machine.admit() == .trial)
        machine.failed(reason: "still gone")
        #expect(machine.state == .open)
        #expect(machine.admit() == .reject(retryAfter: .seconds(2), state: .open))
        clock.advance(by: .seconds(2))
        #expect(machine.admit() == .trial)
    }

    @Test func aRefusedTrialLetsTheNextCommandTry() {
        let (opened, clock) = Self.opened()
        var machine = opened
        clock.advance(by: .seconds(5))
        #expect(machine.admit() == .trial)
        machine.refused()
        #expect(machine.state == .halfOpen)
        #expect(machine.admit() == .trial)
    }

    @Test func resetHalfOpensAtOnceAndIsANoOpWhenClosed() {
        var machine = Self.opened().0
        machine.reset(reason: "operator")
        #expect(machine.state == .halfOpen)
        #expect(machine.admit() == .trial)
        machine.succeeded()
        machine.reset(reason: "operator again")
        #expect(machine.state == .closed)
        #expect(machine.takeUnrecorded().map(\.state) == [.open, .halfOpen, .closed])
    }

    @Test func transitionsAreHandedOutOnceAndOnlyWhenClosed() {
        let (opened, clock) = Self.opened(threshold: 2)
        var machine = opened
        #expect(machine.takeUnrecorded().isEmpty, "the store does not take writes while open")
        clock.advance(by: .seconds(5))
        #expect(machine.admit() == .trial)
        #expect(machine.takeUnrecorded().isEmpty)
        machine.succeeded()
        let transitions = machine.takeUnrecorded()
        #expect(transitions.map(\.state) == [.open, .halfOpen, .closed])
        #expect(transitions.allSatisfy { $0.component == "store" })
        #expect(transitions[0].reason.contains("2 consecutive store failures; last: disk gone"))
        #expect(machine.takeUnrecorded().isEmpty)
    }

    @Test func theReasonIsBoundedAndTheThresholdAtLeastOne() {
        var machine = Machine(failureThreshold: 0, openDuration: .seconds(1), clock: ManualClock())
        #expect(machine.failureThreshold == 1)
        machine.failed(reason: String(repeating: "x", count: 5_000))
        #expect(machine.state == .open)
        machine.reset(reason: "r")
        _ = machine.admit()
        machine.succeeded()
        #expect(machine.takeUnrecorded().allSatisfy { $0.reason.count <= 1_000 })
    }
}
