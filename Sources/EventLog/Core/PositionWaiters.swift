import Synchronization

/// Tasks suspended until a position is reached: readers tailing a log, requests waiting for
/// a view to include their write. One registry for every such wait, so cancellation, closing
/// and "already there" are handled once.
///
/// `wait(until:)` returns true once `advance(to:)` has reached the target, false when the
/// registry closes or the waiting task is cancelled first. A cancelled or closed wait leaves
/// nothing behind (`count` returns to 0).
public final class PositionWaiters: Sendable {
    private struct Waiter {
        var target: LogPosition
        /// Monotonic nanoseconds at registration, for `resume(waitingLongerThan:)`.
        var since: UInt64
        var continuation: CheckedContinuation<Bool, Never>
    }

    private struct State {
        var position: LogPosition
        var closed = false
        var nextID: UInt64 = 0
        var waiters: [UInt64: Waiter] = [:]
        /// Cancelled before their continuation registered.
        var cancelled: Set<UInt64> = []
    }

    private let state: Mutex<State>

    public init(position: LogPosition = 0) {
        state = Mutex(State(position: position))
    }

    /// The highest position `advance(to:)` has reached.
    public var position: LogPosition { state.withLock { $0.position } }

    /// True once `close()` was called.
    public var isClosed: Bool { state.withLock { $0.closed } }

    /// Waiters not yet resumed (tests check that none is left behind).
    public var count: Int { state.withLock { $0.waiters.count } }

    /// Suspends until the position reaches `target` (true), or the registry closes or the
    /// task is cancelled (false).
    public func wait(until target: LogPosition) async -> Bool {
        let id: UInt64? = state.withLock { s in
            if s.closed || s.position >= target { return nil }
            s.nextID += 1
            return s.nextID
        }
        guard let id else { return position >= target }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let immediate: Bool? = state.withLock { s in
                    if s.cancelled.remove(id) != nil || s.closed { return false }
                    if s.position >= target { return true }
                    s.waiters[id] = Waiter(target: target, since: monotonicNanoseconds(), continuation: continuation)
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            let continuation: CheckedContinuation<Bool, Never>? = state.withLock { s in
                if let waiter = s.waiters.removeValue(forKey: id) { return waiter.continuation }
                s.cancelled.insert(id)
                return nil
            }
            continuation?.resume(returning: false)
        }
    }

    /// Moves the position forward (never back) and resumes every waiter it reaches.
    public func advance(to position: LogPosition) {
        let ready = state.withLock { s -> [CheckedContinuation<Bool, Never>] in
            guard position > s.position else { return [] }
            s.position = position
            return Self.take(from: &s) { $0.target <= position }
        }
        for continuation in ready { continuation.resume(returning: true) }
    }

    /// Resumes (true) the waiters registered more than `nanoseconds` ago, reached or not:
    /// for a poller that wants waiters to look again even when no wake-up came.
    public func resume(waitingLongerThan nanoseconds: UInt64) {
        let now = monotonicNanoseconds()
        let ready = state.withLock { s in Self.take(from: &s) { now &- $0.since >= nanoseconds } }
        for continuation in ready { continuation.resume(returning: true) }
    }

    /// Resumes every waiter with false; later waits return at once (true only if reached).
    public func close() {
        let all = state.withLock { s -> [CheckedContinuation<Bool, Never>] in
            s.closed = true
            return Self.take(from: &s) { _ in true }
        }
        for continuation in all { continuation.resume(returning: false) }
    }

    private static func take(from s: inout State, where matches: (Waiter) -> Bool) -> [CheckedContinuation<Bool, Never>] {
        var ready: [CheckedContinuation<Bool, Never>] = []
        for (id, waiter) in s.waiters where matches(waiter) {
            ready.append(waiter.continuation)
            s.waiters[id] = nil
        }
        return ready
    }
}
