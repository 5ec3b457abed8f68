#if canImport(Glibc)
import Glibc
#endif

private final class ThreadBody {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

/// Starts a detached OS thread: the writer and syncer block in write(2) and fdatasync(2),
/// which must not happen on the cooperative pool's few threads.
func startThread(_ body: @escaping () -> Void) {
    let box = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    var thread = pthread_t()
    let rc = pthread_create(&thread, nil, { argument in
        let body = Unmanaged<ThreadBody>.fromOpaque(argument!).takeRetainedValue()
        body.body()
        return nil
    }, box)
    precondition(rc == 0, "cannot start a log thread: \(systemErrorMessage(rc))")
    pthread_detach(thread)
}
