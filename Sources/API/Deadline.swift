import Synchronization

/// `withDeadline`'s failure: the body did not finish in time (it may still finish later).
struct DeadlineExceeded: Error {}

/// `body`'s result, or `DeadlineExceeded` once `deadline` passes, whichever comes first.
///
/// Returns without waiting for `body`: a store call cannot be taken back, so the body runs
/// on in its own task and its late result is dropped. (A task group would wait for it,
/// which is why this races two unstructured tasks for one continuation.) At the deadline the
/// body's task is cancelled: what has not reached the store yet (a command waiting for its
/// stream's lane, or about to retry a conflict) stops and writes nothing; an append already
/// handed to the store finishes, durably, as the 503's "retry with the same key" allows.
func withDeadline<T: Sendable>(_ deadline: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let race = FirstResult<T>()
    return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        race.start(continuation)
        race.track(body: Task {
            let result: Result<T, any Error>
            do { result = .success(try await body()) } catch { result = .failure(error) }
            race.finish(result, byBody: true)
        })
        race.track(timer: Task {
            // Cancelled: the body finished first.
            guard (try? await Task.sleep(for: deadline)) != nil else { return }
            race.finish(.failure(DeadlineExceeded()), byBody: false)
        })
    }
}

/// One continuation resumed by whichever of the body and the timer finishes first; the
/// later one is dropped. The loser's task is cancelled: a timer that lost stops sleeping,
/// a body that lost stops before what it has not started.
private final class FirstResult<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var body: Task<Void, Never>?
        var timer: Task<Void, Never>?
        /// Which finished first, once one has: true for the body.
        var bodyWon: Bool?
    }

    private let state = Mutex(State())

    func start(_ continuation: CheckedContinuation<T, any Error>) {
        state.withLock { $0.continuation = continuation }
    }

    func track(body task: Task<Void, Never>) {
        let cancel = state.withLock { s -> Bool in
            s.body = task
            return s.bodyWon == false
        }
        if cancel { task.cancel() }
    }

    func track(timer task: Task<Void, Never>) {
        let cancel = state.withLock { s -> Bool in
            s.timer = task
            return s.bodyWon == true
        }
        if cancel { task.cancel() }
    }

    func finish(_ result: Result<T, any Error>, byBody: Bool) {
        let (continuation, loser) = state.withLock { s -> (CheckedContinuation<T, any Error>?, Task<Void, Never>?) in
            guard s.bodyWon == nil, let continuation = s.continuation.take() else { return (nil, nil) }
            s.bodyWon = byBody
            return (continuation, byBody ? s.timer : s.body)
        }
        continuation?.resume(with: result)
        loser?.cancel()
    }
}
