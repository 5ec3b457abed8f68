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
///
/// Streams and idempotency keys are held in memory only for the batches published after
/// the active segment's last checkpoint record (at most `FileLog.Options.checkpointBytes`
/// of segment, plus whatever a failed checkpoint write left); those before are looked up on
/// disk, in the checkpoint's records and the sealed segments' indexes (`sealed`), so memory
/// grows neither with the history nor with the active segment's fill.
struct FileLogState: ~Copyable {
    var head: LogPosition = 0
    var headHash: [UInt8] = BatchHeader.zeroHash
    var segments: [SegmentRecord] = []
    /// The active segment's published batches, in position order. Sealed segments' batch
    /// lists are held by their indexes (`sealed`), read from the index file on open.
    var activeBatches: [BatchLocation] = []
    /// The index into `segments` of the segment that `streams` and `idempotency` describe.
    var activeSegment = 0
    /// Streams of the active segment's batches after its last checkpoint record: first
    /// version there and positions, in version order.
    var streams: [String: SegmentStream] = [:]
    /// Keys first used after the active segment's last checkpoint record.
    var idempotency: [String: AppendResult] = [:]
    /// Checkpoint records the writer wrote while some of their batches were not yet
    /// published: each joins `sealed.records` (and `streams` starts afresh) once the head
    /// reaches its end.
    var pendingRecords: [SealedSegmentIndex] = []
    /// The sealed segments' indexes and the bounded cache in front of them.
    var sealed: SealedIndexes
    /// A segment the writer sealed while some of its batches were not yet published: it
    /// joins `sealed` (and `streams` starts afresh) once the head reaches its end.
    var pendingSeal: SealedSegment?
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

    init(sealed: SealedIndexes) {
        self.sealed = sealed
    }

    /// What the commit decision needs of a stream: its events, counting batches written but
    /// not yet published, and the last such batch.
    mutating func streamPrior(_ stream: String) throws -> CommitDecider.Prior<UInt64> {
        if !unsyncedStreams.isEmpty, let unsynced = unsyncedStreams[stream] {
            return CommitDecider.Prior(unsynced.count, unpublishedBatch: unsynced.sequence)
        }
        return CommitDecider.Prior(try publishedCount(of: stream))
    }

    /// What the commit decision needs of an idempotency key: the first append's result, and
    /// its batch while that is written but not yet published.
    mutating func keyPrior(_ key: String) throws -> CommitDecider.Prior<AppendResult>? {
        if let result = try publishedKey(key) { return CommitDecider.Prior(result) }
        if !unsyncedKeys.isEmpty, let unsynced = unsyncedKeys[key] { return CommitDecider.Prior(unsynced.result, unpublishedBatch: unsynced.sequence) }
        return nil
    }

    /// Events in `stream`, counting batches written but not yet published.
    mutating func decidedCount(of stream: String) throws -> UInt64 {
        if !unsyncedStreams.isEmpty, let unsynced = unsyncedStreams[stream] { return unsynced.count }
        return try publishedCount(of: stream)
    }

    /// Published events of `stream`: the in-memory tail, else the records and sealed indexes.
    mutating func publishedCount(of stream: String) throws -> UInt64 {
        if let active = streams[stream] { return active.nextVersion }
        return try sealed.count(of: stream)
    }

    mutating func publishedKey(_ key: String) throws -> AppendResult? {
        if let result = idempotency[key] { return result }
        return try sealed.key(key)
    }

    /// Positions of `stream`'s versions `version ..< version + limit`, published only.
    mutating func positions(of stream: String, fromVersion version: UInt64, limit: Int) throws -> [LogPosition] {
        guard limit > 0 else { return [] }
        let active = streams[stream]
        if let active, version >= active.firstVersion {
            let start = version - active.firstVersion
            guard start < UInt64(active.positions.count) else { return [] }
            let end = Int(start) + min(limit, active.positions.count - Int(start))
            return Array(active.positions[Int(start)..<end])
        }
        var positions = try sealed.positions(of: stream, fromVersion: version, limit: limit)
        if let active, positions.count < limit {
            positions += active.positions.prefix(limit - positions.count)
        }
        return positions
    }

    /// The batch holding `position`, with the path of its segment: the active segment's
    /// batches, or the sealed segment's (found by its first position) from its index.
    func locate(_ position: LogPosition) -> (BatchLocation, String)? {
        guard position >= 1, position <= head, activeSegment < segments.count else { return nil }
        if position >= segments[activeSegment].firstPosition {
            return Self.find(position, in: activeBatches).map { ($0, segments[activeSegment].path) }
        }
        let sealed = sealed.segments
        guard !sealed.isEmpty else { return nil }
        var low = 0
        var high = sealed.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if sealed[mid].index.firstPosition <= position { low = mid } else { high = mid - 1 }
        }
        return Self.find(position, in: sealed[low].index.batches).map { ($0, sealed[low].path) }
    }

    private static func find(_ position: LogPosition, in batches: [BatchLocation]) -> BatchLocation? {
        guard !batches.isEmpty else { return nil }
        var low = 0
        var high = batches.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if batches[mid].firstPosition <= position { low = mid } else { high = mid - 1 }
        }
        let batch = batches[low]
        guard batch.firstPosition <= position, position <= batch.lastPosition else { return nil }
        return batch
    }

    /// Adds a published batch's streams and keys to the active segment's maps.
    mutating func addActive(streams touched: [String: SegmentStream], keys: [String: AppendResult]) {
        for (name, stream) in touched {
            streams[name, default: SegmentStream(firstVersion: stream.firstVersion, positions: [])].positions.append(contentsOf: stream.positions)
        }
        for (key, result) in keys where idempotency[key] == nil { idempotency[key] = result }
    }

    /// Moves a pending seal into `sealed` once every batch of its segment is published.
    mutating func promoteSealIfPublished() {
        promoteRecordsIfPublished()
        guard let pending = pendingSeal, head + 1 >= pending.index.nextPosition else { return }
        sealed.append(pending, activeStreams: streams)
        streams = [:]
        idempotency = [:]
        activeBatches = []
        activeSegment += 1
        sealed.startActive(segmentPath: segments[activeSegment].path)
        pendingSeal = nil
    }

    /// A checkpoint record the writer has written (and synced): it replaces the in-memory
    /// tail it covers once its last batch is published.
    mutating func addRecord(_ record: SealedSegmentIndex) {
        pendingRecords.append(record)
        promoteRecordsIfPublished()
    }

    /// Moves pending records into `sealed.records` once each one's batches are published:
    /// at that moment the tail holds exactly the record's batches (publication is in order).
    mutating func promoteRecordsIfPublished() {
        while let record = pendingRecords.first, head + 1 >= record.nextPosition {
            pendingRecords.removeFirst()
            sealed.appendRecord(record, streams: streams)
            // The next interval holds about as many: keep the tables instead of regrowing them.
            streams.removeAll(keepingCapacity: true)
            idempotency.removeAll(keepingCapacity: true)
        }
    }

    /// What the state holds in memory per stream or key (tests check these stay bounded).
    var heldCounts: FileLog.HeldCounts {
        FileLog.HeldCounts(tailStreams: streams.count, tailKeys: idempotency.count, unsyncedStreams: unsyncedStreams.count,
                           unsyncedKeys: unsyncedKeys.count, cachedStreams: sealed.cache.count, records: sealed.records.count + pendingRecords.count)
    }
}
