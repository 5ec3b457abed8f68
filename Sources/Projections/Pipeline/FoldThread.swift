#if canImport(Glibc)
import Glibc
#endif

/// A mutex with one condition variable, for fold lanes that sleep until the reader hands
/// them a batch. Lanes are dedicated OS threads, so they may block here; the reader side
/// (on the cooperative pool) only ever holds the lock briefly and never waits on it.
final class ConditionLock: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    func withLock<Result>(_ body: () throws -> Result) rethrows -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Sleeps until `broadcast`; only inside `withLock`, on a dedicated thread.
    func wait() {
        pthread_cond_wait(condition, mutex)
    }

    func broadcast() {
        pthread_cond_broadcast(condition)
    }
}

/// Starts `body` on a new detached OS thread: a fold lane runs for the whole fold, CPU-bound,
/// and must not occupy one of the cooperative pool's few threads.
func startFoldThread(_ body: @escaping @Sendable () -> Void) throws {
    final class Box {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    var thread = pthread_t()
    let rc = pthread_create(&thread, nil, { argument in
        Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue().run()
        return nil
    }, box)
    guard rc == 0 else {
        Unmanaged<Box>.fromOpaque(box).release()
        throw ProjectionError(.io, "cannot start a fold thread (pthread_create returned \(rc)); fold with fewer lanes or free threads")
    }
    pthread_detach(thread)
}
