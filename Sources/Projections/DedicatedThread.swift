#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs blocking work (decoding a snapshot of hundreds of megabytes, writing one, fsync) on
/// an OS thread of its own and resumes the awaiting task with the result. The cooperative
/// pool has one thread per core: a runner that decoded its snapshot there would hold one of
/// them for seconds, and three runners would hold them all, so the HTTP server could not
/// even start listening.
///
/// The caller awaits the result, so whatever it does next (publish, subscribe, the final
/// snapshot at shutdown) still happens after the work, in the same order as if it had run
/// inline.
package enum DedicatedThread {
    /// `body`'s result, computed on a new thread. If no thread can be started (the process
    /// is out of threads), `body` runs on the caller's thread instead: slower to start
    /// listening, never wrong.
    package static func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
            let work = Work { continuation.resume(returning: body()) }
            if !start(work) { work.run() }
        }
    }

    private final class Work: @unchecked Sendable {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }

    /// Starts a detached thread running `work`; false when none could be started.
    private static func start(_ work: Work) -> Bool {
        let box = Unmanaged.passRetained(work).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { argument in
            guard let argument else { return nil }
            Unmanaged<Work>.fromOpaque(argument).takeRetainedValue().run()
            return nil
        }, box)
        guard rc == 0 else {
            Unmanaged<Work>.fromOpaque(box).release()
            return false
        }
        pthread_detach(thread)
        return true
    }
}
