import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Wakes tailing readers of a `PostgresLog`: a thread LISTENs on `tally_log` (writers in
/// every process NOTIFY with their new head at commit) and this process's own writer
/// reports its commits directly.
///
/// A wake-up is only a hint to query again: correctness never depends on it. A reader that
/// is not woken re-queries after `pollInterval` anyway, so a lost notification, a
/// notification that arrives before the rows are visible to the reader's snapshot, or a
/// listener that is reconnecting delays a reader, never makes it skip or lose an event.
final class PostgresNotifier: Sendable {
    private struct Waiter {
        var continuation: CheckedContinuation<Bool, Never>
        var threshold: LogPosition
        var since: UInt64
    }

    private struct State {
        var knownHead: LogPosition = 0
        var waiters: [Int: Waiter] = [:]
        var cancelled: Set<Int> = []
        var nextID = 0
        var closing = false
    }

    static let pollInterval: UInt64 = 250_000_000
    private let url: String
    private let state = Mutex(State())

    init(url: String) {
        self.url = url
        startThread { [self] in run() }
    }

    /// The highest head this process has heard of (its own commits and NOTIFYs).
    var knownHead: LogPosition { state.withLock { $0.knownHead } }

    func committed(_ head: LogHead) { advance(to: head.position) }

    /// Suspends until a head beyond `position` is heard of or the poll interval passes (true),
    /// or the log closes or the task is cancelled (false).
    func wait(beyond position: LogPosition) async -> Bool {
        let id = state.withLock { s in
            s.nextID += 1
            return s.nextID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let immediate: Bool? = state.withLock { s in
                    if s.cancelled.remove(id) != nil || s.closing { return false }
                    if s.knownHead > position { return true }
                    s.waiters[id] = Waiter(continuation: continuation, threshold: position, since: monotonicNanoseconds())
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            let waiter: CheckedContinuation<Bool, Never>? = state.withLock { s in
                if let waiter = s.waiters.removeValue(forKey: id) { return waiter.continuation }
                s.cancelled.insert(id)
                return nil
            }
            waiter?.resume(returning: false)
        }
    }

    func close() {
        let waiters = state.withLock { s in
            s.closing = true
            let all = s.waiters.values.map(\.continuation)
            s.waiters = [:]
            return all
        }
        for waiter in waiters { waiter.resume(returning: false) }
    }

    private func advance(to position: LogPosition) {
        let ready = state.withLock { s in
            s.knownHead = max(s.knownHead, position)
            return takeReady(&s, now: nil)
        }
        for waiter in ready { waiter.resume(returning: true) }
    }

    /// Waiters whose threshold the known head passed, or (with `now`) that waited a poll interval.
    private func takeReady(_ s: inout State, now: UInt64?) -> [CheckedContinuation<Bool, Never>] {
        var ready: [CheckedContinuation<Bool, Never>] = []
        for (id, waiter) in s.waiters where waiter.threshold < s.knownHead || (now.map { $0 - waiter.since >= Self.pollInterval } ?? false) {
            ready.append(waiter.continuation)
            s.waiters[id] = nil
        }
        return ready
    }

    private func run() {
        var connection: PGConnection?
        var backoff: UInt64 = 0
        var retryAt: UInt64 = 0
        while !state.withLock({ $0.closing }) {
            if connection == nil || connection!.isBroken, monotonicNanoseconds() >= retryAt {
                connection = nil
                do {
                    let fresh = try PGConnection(url: url)
                    try fresh.execute("LISTEN tally_log")
                    connection = fresh
                    backoff = 0
                } catch {
                    backoff = min(2_000, max(50, backoff * 2))
                    retryAt = monotonicNanoseconds() + backoff * 1_000_000
                }
            }
            if let live = connection, !live.isBroken {
                var descriptor = pollfd(fd: live.socket, events: Int16(POLLIN), revents: 0)
                _ = poll(&descriptor, 1, 100)
                do {
                    var highest: LogPosition = 0
                    for payload in try live.takeNotifications() { highest = max(highest, UInt64(payload) ?? 0) }
                    if highest > 0 { advance(to: highest) }
                } catch {
                    connection = nil
                }
            } else {
                usleep(100_000)
            }
            let now = monotonicNanoseconds()
            let due = state.withLock { takeReady(&$0, now: now) }
            for waiter in due { waiter.resume(returning: true) }
        }
    }
}
