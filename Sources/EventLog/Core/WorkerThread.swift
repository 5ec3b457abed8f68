import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The one loop skeleton of the log's dedicated threads (file writer and syncer, PostgreSQL
/// writer, listener and readers): they block in write(2), fdatasync(2) and libpq, which must
/// not happen on the cooperative pool's few threads.
///
/// `start` runs `step` over and over on a new detached OS thread; each step says what comes
/// next, so the owner's logic stays a plain function and the sleeping is done here once.
final class WorkerThread: Sendable {
    enum Next {
        /// Step again at once.
        case proceed
        /// Sleep until `wake()`.
        case sleep
        /// Sleep until `wake()` or the monotonic clock reaches the deadline (nanoseconds).
        case sleepUntil(UInt64)
        /// End the thread.
        case stop
    }

    private let wakeup: DispatchSemaphore
    private let sleepingUntilWoken = Atomic<Bool>(false)

    /// Several workers may share one `wakeup` (a pool): each `wake()` wakes one of them.
    init(wakeup: DispatchSemaphore = DispatchSemaphore(value: 0)) {
        self.wakeup = wakeup
    }

    /// Wakes the thread (or one thread of a pool) if it sleeps, or makes its next sleep return.
    func wake() {
        wakeup.signal()
    }

    /// True while the thread sleeps with no deadline: it does nothing until woken. Observable,
    /// so that tests wait on it instead of sleeping.
    var isSleepingUntilWoken: Bool { sleepingUntilWoken.load(ordering: .acquiring) }

    /// Starts the thread. `step` and what it captures live until it returns `.stop`.
    func start(_ step: @escaping () -> Next) {
        Self.detach { [self] in
            while true {
                switch step() {
                case .proceed:
                    continue
                case .sleep:
                    sleepingUntilWoken.store(true, ordering: .releasing)
                    wakeup.wait()
                    sleepingUntilWoken.store(false, ordering: .releasing)
                case .sleepUntil(let deadline):
                    let now = monotonicNanoseconds()
                    if deadline > now { _ = wakeup.wait(timeout: .now() + .nanoseconds(Int(deadline - now))) }
                case .stop:
                    return
                }
            }
        }
    }

    private final class Body {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }

    private static func detach(_ body: @escaping () -> Void) {
        let box = Unmanaged.passRetained(Body(body)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { argument in
            let body = Unmanaged<Body>.fromOpaque(argument!).takeRetainedValue()
            body.run()
            return nil
        }, box)
        precondition(rc == 0, "cannot start a log thread: \(systemErrorMessage(rc))")
        pthread_detach(thread)
    }
}
