import Synchronization

/// `withDeadline`'s failure: the body did not finish in time (it may still finish later).
struct DeadlineExceeded: Error {}

/// `body`'s result, or `DeadlineExceeded` once `deadline` passes, whichever comes first.
///
/// Returns without waiting for `body`: a store call cannot be taken back, so the body runs
/// on in its own task and its late result is dropped. (A task group would wait for it,
/// which is why this races two unstructured tasks for one continuation.)
func withDeadline<T: Sendable>(_ deadline: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let race = FirstResult<T>()
    return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        race.start(continuation)
        let timer = Task {
            // Cancelled: the body finished first.
            guard (try? await Task.sleep(for: deadline)) != nil else { return }
            race.finish(.failure(DeadlineExceeded()))
        }
        Task {
            let result: Result<T, any Error>
            do { result = .success(try await body()) } catch { result = .failure(error) }
            race.finish(result)
            timer.cancel()
        }
    }
}

/// One continuation resumed by whichever of several finishers comes first; later ones are
/// dropped.
private final class FirstResult<T: Sendable>: Sendable {
    private let pending = Mutex<CheckedContinuation<T, any Error>?>(nil)

    func start(_ continuation: CheckedContinuation<T, any Error>) {
        pending.withLock { $0 = continuation }
    }

    func finish(_ result: Result<T, any Error>) {
        pending.withLock { $0.take() }?.resume(with: result)
    }
}
