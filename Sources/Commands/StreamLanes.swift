import Synchronization

/// One lane per stream: commands of this process that decide on the same stream take
/// their turn instead of racing to append and conflicting with each other, so only another
/// server's write can make a decision stale. A lane exists only while a command holds it
/// or waits for it, so memory grows with the commands in flight, never with the streams
/// ever seen. The lane passes from one command to the next in arrival order.
final class StreamLanes: Sendable {
    private struct Lane {
        /// Commands waiting for the lane, first come first served.
        var waiting: [CheckedContinuation<Void, Never>] = []
        var next = 0
    }

    private let lanes = Mutex<[String: Lane]>([:])

    /// Lanes held or waited for right now (tests check that idle lanes are dropped).
    var count: Int { lanes.withLock { $0.count } }

    /// Runs `body` holding the lanes of every stream in `streams`. Lanes are taken in one
    /// order (sorted by name), so two commands over overlapping streams never wait for each
    /// other in a cycle.
    func run<Result>(_ streams: some Sequence<String>, _ body: () async throws(CommandError) -> Result) async throws(CommandError) -> Result {
        let ordered = Set(streams).sorted()
        for stream in ordered { await acquire(stream) }
        defer { for stream in ordered.reversed() { release(stream) } }
        return try await body()
    }

    private func acquire(_ stream: String) async {
        let free = lanes.withLock { lanes in
            if lanes[stream] == nil {
                lanes[stream] = Lane()
                return true
            }
            return false
        }
        if free { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let handedOver = lanes.withLock { lanes in
                // Released between the two locks: take it now.
                guard lanes[stream] != nil else {
                    lanes[stream] = Lane()
                    return true
                }
                lanes[stream]?.waiting.append(continuation)
                return false
            }
            if handedOver { continuation.resume() }
        }
    }

    /// Hands the lane to the next waiter, or drops it when nobody waits.
    private func release(_ stream: String) {
        let next: CheckedContinuation<Void, Never>? = lanes.withLock { lanes in
            guard var lane = lanes[stream] else { return nil }
            guard lane.next < lane.waiting.count else {
                lanes[stream] = nil
                return nil
            }
            let continuation = lane.waiting[lane.next]
            lane.next += 1
            if lane.next == lane.waiting.count {
                lane.waiting.removeAll()
                lane.next = 0
            }
            lanes[stream] = lane
            return continuation
        }
        next?.resume()
    }
}
