import Dispatch
import Synchronization

/// A few reader connections, each owned by its own thread, serving queries from a shared
/// queue. libpq blocks; these threads do the blocking so that async callers only suspend.
/// A connection that breaks is dropped after its query fails and the next query reconnects.
final class PGConnectionPool: Sendable {
    private struct Job: Sendable {
        /// Runs with a connection, or with the reason there is none.
        var run: @Sendable (Result<PGConnection, any Error>) -> Void
    }

    private struct Queue {
        var jobs: [Job] = []
        var closing = false
    }

    private let url: String
    private let queue = Mutex(Queue())
    /// One worker per connection, all woken through one semaphore: a job wakes one of them.
    private let workers: [WorkerThread]

    init(url: String, size: Int) {
        self.url = url
        let work = DispatchSemaphore(value: 0)
        workers = (0..<size).map { _ in WorkerThread(wakeup: work) }
        for worker in workers {
            var connection: PGConnection?
            worker.start { [self] in serve(&connection) }
        }
    }

    /// Runs `body` on a pooled connection.
    func run<T: Sendable>(_ body: @escaping @Sendable (PGConnection) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let job = Job { connection in
                continuation.resume(with: Result { try body(connection.get()) })
            }
            let accepted = queue.withLock { q in
                if q.closing { return false }
                q.jobs.append(job)
                return true
            }
            if accepted { workers[0].wake() } else { job.run(.failure(closedError)) }
        }
    }

    private var closedError: EventLogError {
        EventLogError(.closed, "the PostgreSQL log at \(PostgresURL.redacted(url)) is closed")
    }

    func close() {
        let orphans = queue.withLock { q in
            q.closing = true
            let jobs = q.jobs
            q.jobs = []
            return jobs
        }
        for job in orphans { job.run(.failure(closedError)) }
        for worker in workers { worker.wake() }
    }

    /// One turn of a reader thread: run the oldest job on this thread's connection
    /// (reconnecting if it broke), or stop when closing, or sleep.
    private func serve(_ connection: inout PGConnection?) -> WorkerThread.Next {
        let (job, closing) = queue.withLock { q -> (Job?, Bool) in
            if q.jobs.isEmpty { return (nil, q.closing) }
            return (q.jobs.removeFirst(), q.closing)
        }
        guard let job else { return closing ? .stop : .sleep }
        if connection == nil || connection!.isBroken {
            connection = nil
            do {
                connection = try PGConnection(url: url)
            } catch {
                job.run(.failure(error))
                return .proceed
            }
        }
        job.run(.success(connection!))
        if connection?.isBroken == true { connection = nil }
        return .proceed
    }
}
