import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The single writer of a `FileLog`: a dedicated thread that turns everything queued into
/// one batch, decides it (expected versions, idempotency), writes it with one system call,
/// and hands it on to be made durable and published. Under `always` a `BatchSyncer` does
/// that on its own thread while this one writes the next batch; under `interval` and
/// `never` the batch is published as soon as it is written.
final class FileLogWriter: @unchecked Sendable {
    private struct Queue {
        var pending = PendingQueue()
        var finished = false
        var shutdownWaiters: [CheckedContinuation<Void, any Error>] = []
        var closeError: EventLogError?
    }

    private let core: FileLogCore
    private let options: FileLog.Options
    private let queue = Mutex(Queue())
    private let counters = Locked(WriterCounters(names: FileLog.statisticNames, samples: 65_536))
    private let worker = WorkerThread()
    private var syncer: BatchSyncer?

    // Touched by the writer thread only.
    private var active: ActiveSegment
    private var compressor: LZ4FrameCompressor
    private var raw = ByteWriter(capacity: 1 << 20)
    /// The last written (not necessarily published) position and chain hash.
    private var head: LogPosition
    private var lastHash: [UInt8]
    private var sequence = 0
    private var dirty = false
    private var lastSync = monotonicNanoseconds()

    init(core: FileLogCore, options: FileLog.Options, active: ActiveSegment) throws {
        self.core = core
        self.options = options
        self.active = active
        self.compressor = LZ4FrameCompressor(level: options.compressionLevel)
        (head, lastHash) = core.state.withLock { ($0.head, $0.headHash) }
        if options.fsync == .always {
            syncer = BatchSyncer(core: core, counters: counters)
        }
        // Opening scanned a long tail (no usable checkpoint): record it now, so that memory
        // holds no more than one interval's streams and the next open need not scan it again.
        if options.checkpointBytes > 0 && active.checkpoint.pendingBytes >= options.checkpointBytes { checkpoint() }
        worker.start { [self] in step() }
    }

    func submit(_ pending: PendingAppend) async throws -> AppendResult {
        try await submitPending(
            pending, worker: worker, closed: EventLogError(.closed, "the log at \(core.directory) is closed; reopen it to append")
        ) { pending in queue.withLock { $0.pending.enqueue(pending) } }
    }

    /// Drains the queue, syncs and closes the active segment, then returns.
    func shutdown() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let done: EventLogError?? = queue.withLock { q in
                if q.finished { return .some(q.closeError) }
                q.pending.closing = true
                q.shutdownWaiters.append(continuation)
                return .none
            }
            if let done {
                if let error = done { continuation.resume(throwing: error) } else { continuation.resume() }
            } else {
                worker.wake()
            }
        }
    }

    /// True while the thread sleeps owing no sync: until an append or close wakes it, it
    /// writes and syncs nothing.
    var isSleepingUntilWoken: Bool { worker.isSleepingUntilWoken }

    func requestShutdown() {
        queue.withLock { $0.pending.closing = true }
        worker.wake()
    }

    func statistics() -> StoreStatistics {
        counters.withLock { $0.snapshot }
    }

    // MARK: - The writer thread

    /// One turn: commit what is queued, or finish when closing, or sleep until woken (under
    /// `interval` with a sync owed, at most until the sync is due).
    private func step() -> WorkerThread.Next {
        syncIfIntervalElapsed()
        let (group, closing) = takeGroup()
        if !group.isEmpty {
            commit(group)
            return .proceed
        }
        if closing {
            finish()
            return .stop
        }
        if case .interval(let ms) = options.fsync, dirty { return .sleepUntil(lastSync + UInt64(ms) * 1_000_000) }
        return .sleep
    }

    /// Takes queued appends up to the batch bounds, in arrival order.
    private func takeGroup() -> ([PendingAppend], Bool) {
        queue.withLock { q in
            (q.pending.take(maxBytes: EventLimits.maxBatchBytes, maxEvents: EventLimits.maxBatchEvents), q.pending.closing)
        }
    }

    private func syncIfIntervalElapsed() {
        guard dirty, case .interval(let ms) = options.fsync else { return }
        if monotonicNanoseconds() - lastSync >= UInt64(ms) * 1_000_000 {
            try? syncActive()
        }
    }

    /// An append accepted into the batch being built, with the result it will get.
    private typealias Accepted = (pending: PendingAppend, result: AppendResult)

    /// Decides one group of appends, writes the accepted ones as one batch and hands it on.
    private func commit(_ group: [PendingAppend]) {
        var immediate: [(CheckedContinuation<AppendResult, any Error>, Result<AppendResult, any Error>)] = []
        var accepted: [Accepted] = []
        /// Answers that wait for this batch to be published.
        var withBatch: [Acknowledgement] = []
        let batchSequence = sequence + 1

        let failure: EventLogError? = core.state.withLock { s in
            if let failure = s.failure { return failure }
            // Every prior first: a lookup in a sealed segment's index can fail (I/O), and then
            // the whole group fails before anything is decided or answered.
            let priors: [(key: CommitDecider.Prior<AppendResult>?, streams: [CommitDecider.Prior<UInt64>])]
            do {
                priors = try group.map { pending in
                    (try pending.idempotencyKey.flatMap { try s.keyPrior($0) }, try pending.appends.map { try s.streamPrior($0.stream) })
                }
            } catch {
                return EventLogError.wrapping(error)
            }
            var decider = CommitDecider(after: head)
            for (pending, prior) in zip(group, priors) {
                let continuation = pending.continuation!
                let action = decider.decide(pending, keyPrior: prior.key, streamPriors: prior.streams)
                switch action {
                case .write(let result):
                    accepted.append((pending, result))
                case .answer(let outcome):
                    immediate.append((continuation, outcome.mapError { $0 as any Error }))
                case .answerAfter(batch: nil, let outcome):
                    withBatch.append(Acknowledgement(continuation: continuation, outcome: outcome.mapError { $0 as any Error }))
                case .answerAfter(batch: let earlier?, let outcome):
                    s.lateAcknowledgements[earlier, default: []].append(Acknowledgement(continuation: continuation, outcome: outcome.mapError { $0 as any Error }))
                }
            }
            return nil
        }
        if let failure {
            for pending in group { pending.continuation!.resume(throwing: failure) }
            return
        }
        for (continuation, result) in immediate { continuation.resume(with: result) }
        guard !accepted.isEmpty else { return }

        let acknowledgements = accepted.map { Acknowledgement(continuation: $0.pending.continuation!, outcome: .success($0.result)) } + withBatch
        let batch: WrittenBatch
        do {
            batch = try write(accepted, sequence: batchSequence, acknowledgements: acknowledgements)
        } catch {
            counters.withLock { $0.statistics.failedCommits += 1 }
            for ack in acknowledgements { ack.continuation.resume(throwing: error) }
            return
        }
        sequence = batchSequence
        if syncer != nil {
            // Written but not yet readable until the syncer publishes it: later decisions must
            // count it. (Without a syncer the batch is published below, before the next decision.)
            core.state.withLock { s in
                for (name, stream) in batch.touched {
                    s.unsyncedStreams[name] = (stream.nextVersion, batch.sequence)
                }
                for (key, result) in batch.keys { s.unsyncedKeys[key] = (result, batch.sequence) }
            }
        }
        counters.withLock { c in
            c.statistics.commits += 1
            c.statistics.events += Int(batch.location.eventCount)
        }
        if let syncer {
            syncer.submit(batch)
        } else {
            if case .interval(let ms) = options.fsync, monotonicNanoseconds() - lastSync >= UInt64(ms) * 1_000_000 {
                do {
                    try syncActive()
                } catch {
                    counters.withLock { $0.statistics.failedCommits += 1 }
                    core.abandon([batch], error: error)
                    return
                }
            }
            core.publish([batch])
        }
        sealIfFull()
        if options.checkpointBytes > 0 && active.checkpoint.pendingBytes >= options.checkpointBytes { checkpoint() }
    }

    /// Makes the active segment durable, then appends the batches written since the last
    /// checkpoint to its checkpoint file, so that the next open scans only what follows.
    /// A failed segment sync fails the log (as any failed sync does); a failed checkpoint
    /// write costs only a longer scan at the next open.
    private func checkpoint() {
        // After a failed write or sync the file's bytes are unknown: claim none of them.
        guard core.state.withLock({ $0.failure == nil }) else { return }
        do {
            try active.file.syncData()
        } catch {
            core.fail(error)
            return
        }
        writeCheckpointRecord()
    }

    /// Appends the delta as a record and hands it to the state, which looks the record's
    /// streams and keys up on disk from then on (once its batches are published).
    private func writeCheckpointRecord() {
        guard let record = try? active.checkpoint.write(segmentSize: active.size) else { return }
        core.state.withLock { $0.addRecord(record) }
    }

    /// Encodes, compresses and writes one batch with one system call.
    private func write(_ accepted: [Accepted], sequence: Int, acknowledgements: [Acknowledgement]) throws -> WrittenBatch {
        let now = wallClockMicroseconds()
        raw.bytes.removeAll(keepingCapacity: true)
        var touched: [String: SegmentStream] = [:]
        touched.reserveCapacity(accepted.reduce(0) { $0 + $1.pending.appends.count })
        var keys: [String: AppendResult] = [:]
        var position = head + 1
        let first = position
        var encoder = BatchEncoder()
        for (pending, result) in accepted {
            for append in pending.appends {
                let count = UInt64(append.events.count)
                let firstVersion = result.streamVersions[append.stream]! + 1 - count
                encoder.encode(stream: append.stream, firstVersion: firstVersion, events: append.events, now: now,
                               idempotencyKey: pending.idempotencyKey, into: &raw)
                touched[append.stream, default: SegmentStream(firstVersion: firstVersion, positions: [])].positions.append(contentsOf: position..<position + count)
                position += count
            }
            if let key = pending.idempotencyKey {
                keys[key] = AppendResult(positions: result.positions, streamVersions: result.streamVersions, deduplicated: true)
            }
        }
        let count = position - first
        let rawLength = raw.bytes.count
        let offset = active.size
        let (header, writtenBytes) = try raw.bytes.withUnsafeBytes { input in
            let frame = try compressor.compress(input)
            var header = BatchHeader(
                firstPosition: first, eventCount: UInt32(count), rawLength: UInt32(rawLength),
                minRecordedAt: encoder.minRecordedAt, maxRecordedAt: encoder.maxRecordedAt,
                dataLength: UInt32(frame.count), dataChecksum: CRC32C.checksum(frame), previousHash: lastHash, chainHash: []
            )
            header.chainHash = header.computeChainHash(dataFrame: frame)
            let headerBytes = header.encodeFramed()
            do {
                try headerBytes.withUnsafeBytes { try active.file.write([$0, frame], at: offset) }
            } catch {
                // Nothing was acknowledged: take the partial write back so the file stays a valid log.
                do { try active.file.truncate(to: offset) } catch { core.fail(error) }
                throw error
            }
            return (header, headerBytes.count + frame.count)
        }
        let location = BatchLocation(firstPosition: first, eventCount: UInt32(count), offset: offset, dataLength: header.dataLength)
        active.size += writtenBytes
        active.checkpoint.add(batch: location, chainHash: header.chainHash, streams: touched, keys: keys)
        head = header.lastPosition
        lastHash = header.chainHash
        dirty = true
        return WrittenBatch(
            sequence: sequence, location: location, chainHash: header.chainHash, segmentIndex: active.segmentIndex,
            file: active.file, touched: touched, keys: keys, acknowledgements: acknowledgements
        )
    }

    private func syncActive() throws {
        let start = monotonicNanoseconds()
        do {
            try active.file.syncData()
        } catch {
            // After a failed fsync the kernel may have dropped the dirty pages: the file's
            // content is unknown, so the log stops accepting appends until reopened.
            core.fail(error)
            throw error
        }
        let elapsed = monotonicNanoseconds() - start
        counters.withLock { $0.recordSync(elapsed) }
        lastSync = monotonicNanoseconds()
        dirty = false
    }

    /// Seals the active segment once it is full: sync, write its index, start the next one.
    /// A failure here loses nothing (the index is rebuilt on open); the segment grows on, the
    /// next batch tries again, and the failure is counted and handed to `onSealFailure`.
    private func sealIfFull() {
        guard active.size >= options.segmentSize else { return }
        let directory = core.directory
        let nextName = SegmentNaming.segmentName(firstPosition: head + 1)
        let nextPath = directory + "/" + nextName
        do {
            try active.file.sync()
            dirty = false
            let (name, path) = core.state.withLock { ($0.segments[active.segmentIndex].name, $0.segments[active.segmentIndex].path) }
            let sealedIndex = try sealedIndex(name: name, directory: directory)
            // The index holds everything the checkpoint did.
            active.checkpoint.close()
            Directory.remove(active.checkpoint.path)
            let file = try SystemFile.open(nextPath, writable: true, create: true)
            do {
                try Directory.sync(directory)
            } catch {
                Directory.remove(nextPath)
                throw error
            }
            let index = core.state.withLock { s in
                s.segments.append(SegmentRecord(name: nextName, path: nextPath, firstPosition: head + 1))
                // Its streams leave memory once its last batch is published (see `promoteSealIfPublished`).
                s.pendingSeal = SealedSegment(name: name, path: path, index: sealedIndex)
                s.promoteSealIfPublished()
                return s.segments.count - 1
            }
            // The sealed file closes when the syncer has dropped its last batch of it.
            let fresh = SegmentIndexBuilder(firstPosition: head + 1, previousHash: lastHash)
            let checkpoint = CheckpointWriter(path: directory + "/" + SegmentNaming.checkpointName(forSegment: nextName), segmentFirst: head + 1,
                                              length: 0, delta: fresh.index, deltaStart: 0)
            active = ActiveSegment(file: file, size: 0, firstPosition: head + 1, previousHash: lastHash, segmentIndex: index, checkpoint: checkpoint)
        } catch {
            let segment = core.state.withLock { $0.segments[active.segmentIndex].name }
            let failure = EventLogError(
                .io, "could not seal segment \(segment) of the log at \(directory); it grows past its size until a seal succeeds",
                cause: EventLogError.wrapping(error)
            )
            counters.withLock { c in
                c.statistics.sealFailures += 1
                c.statistics.lastSealFailure = failure.description
            }
            options.onSealFailure?(failure)
        }
    }

    /// The whole active segment's index, written for its seal: the checkpoint's records
    /// merged with the batches since the last one (`SealedIndexMerge`, streaming). Records
    /// that do not merge (a block damaged under the writer) are replaced by a scan of the
    /// segment.
    private func sealedIndex(name: String, directory: String) throws -> SealedSegmentIndex {
        let since = active.checkpoint.delta
        let records = active.checkpoint.records
        guard active.checkpoint.deltaStart > 0 else {
            return try SealedIndexes.install(since, segment: name, directory: directory, write: true)
        }
        if records.last?.segmentSize == active.checkpoint.deltaStart {
            var parts = records
            if !since.batches.isEmpty {
                parts.append(try SealedSegmentIndex(source: .memory(since.encode()), startOffset: active.checkpoint.deltaStart))
            }
            if let merged = try? SealedIndexMerge.write(parts: parts, segment: name, directory: directory),
               merged.segmentSize == active.size {
                return merged
            }
        }
        var builder = SegmentIndexBuilder(firstPosition: active.firstPosition, previousHash: active.previousHash)
        let scan = try SegmentScanner.scan(active.file, expectedFirstPosition: active.firstPosition, previousHash: active.previousHash) {
            header, location, events throws in builder.add(batch: location, chainHash: header.chainHash, events: events)
        }
        guard case .clean = scan.end, scan.validLength == active.size else {
            throw EventLogError(.corrupted, "\(active.file.path) does not scan cleanly at its seal; inspect it with `replay verify`")
        }
        return try SealedIndexes.install(builder.index, segment: name, directory: directory, write: true)
    }

    private func finish() {
        syncer?.close()
        var closeError: EventLogError?
        do {
            try active.file.sync()
            // Closed with a checkpoint of everything: the next open scans nothing.
            if core.state.withLock({ $0.failure == nil }) { writeCheckpointRecord() }
        } catch {
            closeError = EventLogError.wrapping(error)
        }
        active.checkpoint.close()
        active.file.close()
        let (waiters, leftovers) = queue.withLock { q in
            q.finished = true
            q.closeError = closeError
            let waiters = q.shutdownWaiters
            q.shutdownWaiters = []
            let leftovers = q.pending.items
            q.pending.items = []
            return (waiters, leftovers)
        }
        for pending in leftovers {
            pending.continuation?.resume(throwing: EventLogError(.closed, "the log at \(core.directory) closed before this append was written"))
        }
        for waiter in waiters {
            if let closeError { waiter.resume(throwing: closeError) } else { waiter.resume() }
        }
    }
}
