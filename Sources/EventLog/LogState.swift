/// A segment as the log tracks it while open.
struct SegmentRecord: Sendable {
    var name: String
    var path: String
    var firstPosition: LogPosition
}

/// Everything readers and the writer share about what is committed. Guarded by one
/// mutex in `LogCore`; only the writer thread changes it, and only after a batch is
/// as durable as the fsync policy says.
struct LogState: ~Copyable {
    var head: LogPosition = 0
    var headHash: [UInt8] = BatchHeader.zeroHash
    var segments: [SegmentRecord] = []
    /// Every batch of every segment, in position order.
    var batches: [BatchLocation] = []
    /// Index into `segments` of each batch's segment, parallel to `batches`.
    var batchSegments: [UInt32] = []
    /// Each stream's event positions in version order; a stream's version is `count - 1`.
    var streams: [String: [LogPosition]] = [:]
    var idempotency: [String: AppendResult] = [:]
    var closed = false
    /// Set when a write or sync failed in a way that leaves the file's state unknown.
    var failure: EventLogError?
    var waiters: [Int: CheckedContinuation<Bool, Never>] = [:]
    var waiterThresholds: [Int: LogPosition] = [:]
    var cancelledWaiters: Set<Int> = []
    var nextWaiterID = 0
    var bytesOnDisk = 0

    /// The batch holding `position`, with the path of its segment.
    func locate(_ position: LogPosition) -> (BatchLocation, String)? {
        guard position >= 1, position <= head, !batches.isEmpty else { return nil }
        var low = 0
        var high = batches.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if batches[mid].firstPosition <= position { low = mid } else { high = mid - 1 }
        }
        let batch = batches[low]
        guard batch.firstPosition <= position, position <= batch.lastPosition else { return nil }
        return (batch, segments[Int(batchSegments[low])].path)
    }

    mutating func add(batches newBatches: [BatchLocation], segment: Int) {
        batches.append(contentsOf: newBatches)
        batchSegments.append(contentsOf: repeatElement(UInt32(segment), count: newBatches.count))
    }

    mutating func merge(_ index: SegmentIndex, segment: Int) {
        add(batches: index.batches, segment: segment)
        for (name, positions) in index.streams { streams[name, default: []].append(contentsOf: positions) }
        for (key, result) in index.idempotency where idempotency[key] == nil { idempotency[key] = result }
        if let last = index.batches.last {
            head = last.lastPosition
            headHash = index.lastHash
        }
    }

    /// Takes the waiters whose threshold the head has passed (all of them when closing).
    mutating func takeReadyWaiters() -> [CheckedContinuation<Bool, Never>] {
        var ready: [CheckedContinuation<Bool, Never>] = []
        for (id, threshold) in waiterThresholds where closed || head > threshold {
            if let waiter = waiters.removeValue(forKey: id) { ready.append(waiter) }
            waiterThresholds[id] = nil
        }
        return ready
    }
}
