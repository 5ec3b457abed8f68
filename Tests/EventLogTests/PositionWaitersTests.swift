import EventLog
import Testing

@Suite(.timeLimit(.minutes(5)))
struct PositionWaitersTests {
    @Test func aReachedTargetReturnsAtOnce() async {
        let waiters = PositionWaiters(position: 5)
        #expect(await waiters.wait(until: 5))
        #expect(await waiters.wait(until: 1))
        #expect(waiters.count == 0)
    }

    @Test func advanceResumesOnlyTheWaitersItReaches() async throws {
        let waiters = PositionWaiters()
        let near = Task { await waiters.wait(until: 3) }
        let far = Task { await waiters.wait(until: 10) }
        while waiters.count < 2 { await Task.yield() }
        waiters.advance(to: 4)
        #expect(await near.value)
        #expect(waiters.count == 1)
        waiters.advance(to: 2)  // never moves back
        #expect(waiters.position == 4)
        waiters.advance(to: 10)
        #expect(await far.value)
        #expect(waiters.count == 0)
    }

    @Test func closeResumesEveryWaiterWithFalseAndLaterWaitsReturnAtOnce() async {
        let waiters = PositionWaiters()
        let waiting = Task { await waiters.wait(until: 1) }
        while waiters.count < 1 { await Task.yield() }
        #expect(!waiters.isClosed)
        waiters.close()
        #expect(waiters.isClosed)
        #expect(await waiting.value == false)
        #expect(await waiters.wait(until: 1) == false)
        #expect(waiters.count == 0)
    }

    @Test func cancellationReturnsFalseAndLeavesNothingBehind() async {
        let waiters = PositionWaiters()
        let waiting = Task { await waiters.wait(until: 1) }
        while waiters.count < 1 { await Task.yield() }
        waiting.cancel()
        #expect(await waiting.value == false)
        #expect(waiters.count == 0)
        // Cancelled before it could register: still false, still nothing left.
        let early = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await waiters.wait(until: 1)
        }
        #expect(await early.value == false)
        #expect(waiters.count == 0)
    }

    @Test func pollerResumesWaitersOlderThanItsInterval() async {
        let waiters = PositionWaiters()
        let waiting = Task { await waiters.wait(until: 100) }
        while waiters.count < 1 { await Task.yield() }
        waiters.resume(waitingLongerThan: 0)
        #expect(await waiting.value)
        #expect(waiters.count == 0)
    }
}
