/// Appends waiting for a writer thread, in arrival order; shared by both backends' writers.
struct PendingQueue {
    var items: [PendingAppend] = []
    var closing = false

    /// Queues `pending`: nil when the writer is closing, otherwise whether the queue was empty
    /// (the writer may be asleep and must be woken).
    mutating func enqueue(_ pending: PendingAppend) -> Bool? {
        if closing { return nil }
        items.append(pending)
        return items.count == 1
    }

    /// The oldest appends up to the bounds (always at least one when any is queued).
    mutating func take(maxBytes: Int, maxEvents: Int) -> [PendingAppend] {
        var bytes = 0
        var events = 0
        var taken = 0
        for item in items {
            if taken > 0 && (bytes + item.estimatedBytes > maxBytes || events + item.eventCount > maxEvents) { break }
            bytes += item.estimatedBytes
            events += item.eventCount
            taken += 1
        }
        let group = Array(items[0..<taken])
        items.removeFirst(taken)
        return group
    }
}

/// Hands `pending` to a writer through `enqueue` (run under the writer's lock) and waits for
/// its result; `closed` is the error when the writer no longer takes appends.
func submitPending(
    _ pending: PendingAppend, worker: WorkerThread, closed: @autoclosure () -> EventLogError,
    enqueue: (PendingAppend) -> Bool?
) async throws -> AppendResult {
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<AppendResult, any Error>) in
        var pending = pending
        pending.continuation = continuation
        switch enqueue(pending) {
        case nil: continuation.resume(throwing: closed())
        case true?: worker.wake()
        case false?: break
        }
    }
}
