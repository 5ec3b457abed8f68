import Synchronization

/// A segment as the log tracks it while open.
struct SegmentRecord: Sendable {
    var name: String
    var path: String
    var firstPosition: LogPosition
}

/// Everything readers and the writer share about what is committed. Guarded by one
/// mutex in `FileLogCore`; only the writer thread changes it, and only after a batch is
/// as durable as the fsync policy says.
struct FileLogState: ~Copyable {
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
    /// Segment indexes of a read-only open whose streams are not merged yet, in order.
    var unmergedIndexes: [SegmentIndex] = []
    /// Set when a write or sync failed in a way that leaves the file's state unknown.
    var failure: EventLogError?
    var bytesOnDisk = 0
    /// Streams and keys of batches written but not yet durable and published, with the
    /// sequence number of the last such batch: decisions must see them, readers must not.
    var unsyncedStreams: [String: (count: UInt64, sequence: Int)] = [:]
    var unsyncedKeys: [String: (result: AppendResult, sequence: Int)] = [:]
    /// Repeats of an idempotency key whose first append is written but not yet durable:
    /// acknowledged when that batch is published.
    var lateAcknowledgements: [Int: [Acknowledgement]] = [:]

    /// What the commit decision needs of a stream: its events, counting batches written but
    /// not yet published, and the last such batch.
    func streamPrior(_ stream: String) -> CommitDecider.Prior<UInt64> {
        CommitDecider.Prior(decidedCount(of: stream), unpublishedBatch: unsyncedStreams.isEmpty ? nil : unsyncedStreams[stream]?.sequence)
    }

    /// What the commit decision needs of an idempotency key: the first append's result, and
    /// its batch while that is written but not yet published.
    func keyPrior(_ key: String) -> CommitDecider.Prior<AppendResult>? {
        if let result = idempotency[key] { return CommitDecider.Prior(result) }
        if !unsyncedKeys.isEmpty, let unsynced = unsyncedKeys[key] { return CommitDecider.Prior(unsynced.result, unpublishedBatch: unsynced.sequence) }
        return nil
    }

    /// Events in `stream`, counting batches written but not yet published.
    func decidedCount(of stream: String) -> UInt64 {
        if !unsyncedStreams.isEmpty, let unsynced = unsyncedStreams[stream] { return unsynced.count }
        return UInt64(streams[stream]?.count ?? 0)
    }

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

    /// Adds a segment's batches; its streams and idempotency keys are merged now, or, with
    /// `lazily` (read-only opens), on the first stream lookup: a tool that reads the log
    /// from a position never pays for an index of millions of streams.
    mutating func merge(_ index: SegmentIndex, segment: Int, lazily: Bool = false) {
        add(batches: index.batches, segment: segment)
        if lazily {
            unmergedIndexes.append(index)
        } else {
            mergeStreams(of: index)
        }
        if let last = index.batches.last {
            head = last.lastPosition
            headHash = index.lastHash
        }
    }

    private mutating func mergeStreams(of index: SegmentIndex) {
        for (name, positions) in index.streams { streams[name, default: []].append(contentsOf: positions) }
        for (key, result) in index.idempotency where idempotency[key] == nil { idempotency[key] = result }
    }

    /// The stream index, complete: merges what a lazy open left aside. Call before reading
    /// `streams` or `idempotency`.
    mutating func mergedStreams() throws -> [String: [LogPosition]] {
        while !unmergedIndexes.isEmpty {
            // An index's checksum was verified on open; decoding its streams can still fail
            // on a malformed (not damaged) file, and then the lookup fails, not the process.
            mergeStreams(of: try unmergedIndexes[0].withStreams())
            unmergedIndexes.removeFirst()
        }
        return streams
    }
}
