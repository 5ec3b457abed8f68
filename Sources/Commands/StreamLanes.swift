import Synchronization

/// One lane per stream: commands of this process that decide on the same stream take
/// their turn instead of racing to append and conflicting with each other, so only another
/// server's write can make a decision stale. A lane exists only while a command holds it
/// or waits for it, so memory grows with the commands in flight, never with the streams
/// ever seen. The lane passes from one command to the next in arrival order.
final class StreamLanes: Sendable {
    private struct Lane {
        /// Commands waiting for the lane, first come first served.
        var waiting: [(id: UInt64, continuation: CheckedContinuation<Bool, Never>)] = []
    }

    private let lanes = Mutex<(byStream: [String: Lane], nextID: UInt64)>(([:], 0))

    /// Lanes held or waited for right now (tests check that idle lanes are dropped).
    var count: Int { lanes.withLock { $0.byStream.count } }

    /// Runs `body` holding the lanes of every stream in `streams`. Lanes are taken in one
    /// order (sorted by name), so two commands over overlapping streams never wait for each
    /// other in a cycle. A command cancelled while it waits (its deadline passed: the client
    /// was answered 503) leaves the queue and never runs, so a stalled append does not
    /// leave a queue of abandoned commands behind it to write once the store is back.
    func run<Result>(_ streams: some Sequence<String>, _ body: () async throws(CommandError) -> Result) async throws(CommandError) -> Result {
        let ordered = Set(streams).sorted()
        var held: [String] = []
        defer { for stream in held.reversed() { release(stream) } }
        for stream in ordered {
            guard await acquire(stream) else {
                throw CommandError.abandoned("while it waited for its turn on \(stream)")
            }
            held.append(stream)
        }
        return try await body()
    }

    /// Takes the lane of `stream`, waiting for its turn; false when the task was cancelled
    /// before its turn came (the lane is then not held).
    private func acquire(_ stream: String) async -> Bool {
        let (free, id) = lanes.withLock { state -> (Bool, UInt64) in
            if state.byStream[stream] == nil {
                state.byStream[stream] = Lane()
                return (true, 0)
            }
            state.nextID += 1
            return (false, state.nextID)
        }
        if free { return true }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let now: Bool? = lanes.withLock { state in
                    // Released between the two locks: take it now.
                    guard state.byStream[stream] != nil else {
                        state.byStream[stream] = Lane()
                        return true
                    }
                    // Cancelled before it queued: the handler found nothing to take out.
                    if Task.isCancelled { return false }
                    state.byStream[stream]?.waiting.append((id, continuation))
                    return nil
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            let abandoned = lanes.withLock { state -> CheckedContinuation<Bool, Never>? in
                guard let at = state.byStream[stream]?.waiting.firstIndex(where: { $0.id == id }) else { return nil }
                return state.byStream[stream]?.waiting.remove(at: at).continuation
            }
            abandoned?.resume(returning: false)
        }
    }

    /// Hands the lane to the next waiter, or drops it when nobody waits.
    private func release(_ stream: String) {
        let next: CheckedContinuation<Bool, Never>? = lanes.withLock { state in
            guard var lane = state.byStream[stream] else { return nil }
            guard !lane.waiting.isEmpty else {
                state.byStream[stream] = nil
                return nil
            }
            let next = lane.waiting.removeFirst()
            state.byStream[stream] = lane
            return next.continuation
        }
        next?.resume(returning: true)
    }
}
