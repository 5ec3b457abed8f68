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
    static let pollInterval: UInt64 = 250_000_000
    private let url: String
    /// The highest head heard of, and the readers waiting beyond it.
    private let heads = PositionWaiters()

    init(url: String) {
        self.url = url
        var listener = Listener(url: url)
        let heads = self.heads
        WorkerThread().start { Self.listen(&listener, heads) }
    }

    /// The highest head this process has heard of (its own commits and NOTIFYs).
    var knownHead: LogPosition { heads.position }

    /// True once the log closed: a reader ends instead of querying again.
    var isClosed: Bool { heads.isClosed }

    func committed(_ head: LogHead) { heads.advance(to: head.position) }

    /// Suspends until a head beyond `position` is heard of or the poll interval passes (true),
    /// or the log closes or the task is cancelled (false).
    func wait(beyond position: LogPosition) async -> Bool {
        await heads.wait(until: position + 1) && !heads.isClosed
    }

    func close() {
        heads.close()
    }

    /// One turn of the listener thread: (re)connect and LISTEN, wait up to 100 ms for
    /// notifications, pass the highest head on, and wake the readers that waited a poll
    /// interval.
    private static func listen(_ listener: inout Listener, _ heads: PositionWaiters) -> WorkerThread.Next {
        guard !heads.isClosed else { return .stop }
        if listener.connection == nil || listener.connection!.isBroken, monotonicNanoseconds() >= listener.retryAt {
            listener.connection = nil
            do {
                let fresh = try PGConnection(url: listener.url)
                try fresh.execute("LISTEN tally_log")
                listener.connection = fresh
                listener.backoff = 0
            } catch {
                listener.backoff = min(2_000, max(50, listener.backoff * 2))
                listener.retryAt = monotonicNanoseconds() + listener.backoff * 1_000_000
            }
        }
        if let live = listener.connection, !live.isBroken {
            var descriptor = pollfd(fd: live.socket, events: Int16(POLLIN), revents: 0)
            _ = poll(&descriptor, 1, 100)
            do {
                var highest: LogPosition = 0
                for payload in try live.takeNotifications() { highest = max(highest, UInt64(payload) ?? 0) }
                if highest > 0 { heads.advance(to: highest) }
            } catch {
                listener.connection = nil
            }
        } else {
            usleep(100_000)
        }
        heads.resume(waitingLongerThan: pollInterval)
        return .proceed
    }

    /// The listening connection and its reconnect backoff, owned by the listener thread.
    private struct Listener {
        let url: String
        var connection: PGConnection?
        var backoff: UInt64 = 0
        var retryAt: UInt64 = 0
    }
}
