import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Why an append with an expected version was refused, as the error's cause.
public struct WrongExpectedVersion: Error, Sendable, Hashable {
    public var stream: String
    public var expected: ExpectedVersion
    /// The stream's version when the append was decided; nil when the stream had no events.
    public var actual: UInt64?
}

/// The single writer of a `FileLog`: a dedicated thread that turns everything queued into
/// one batch, writes it with one system call, makes it durable per the fsync policy and
/// only then publishes it and acknowledges every append in it (group commit).
final class FileLogWriter: @unchecked Sendable {
    private struct Queue {
        var items: [PendingAppend] = []
        var closing = false
        var finished = false
        var shutdownWaiters: [CheckedContinuation<Void, any Error>] = []
        var closeError: EventLogError?
    }

    private struct Counters {
        var batches = 0
        var events = 0
        var fsyncs = 0
        var fsyncRing: [UInt64] = []
        var ringNext = 0
        var sealFailures = 0

        mutating func recordFsync(_ nanoseconds: UInt64) {
            fsyncs += 1
            if fsyncRing.count < 65_536 {
                fsyncRing.append(nanoseconds)
            } else {
                fsyncRing[ringNext] = nanoseconds
                ringNext = (ringNext + 1) % fsyncRing.count
            }
        }
    }

    private let core: LogCore
    private let options: FileLog.Options
    private let queue = Mutex(Queue())
    private let counters = Mutex(Counters())
    private let wakeup = DispatchSemaphore(value: 0)

    // Touched by the writer thread only.
    private var active: ActiveSegment
    private var compressor: LZ4FrameCompressor
    private var raw = ByteWriter(capacity: 1 << 20)
    private var lastHash: [UInt8]
    private var head: LogPosition
    private var dirty = false
    private var lastSync = monotonicNanoseconds()

    init(core: LogCore, options: FileLog.Options, active: ActiveSegment) throws {
        self.core = core
        self.options = options
        self.active = active
        self.compressor = LZ4FrameCompressor(level: options.compressionLevel)
        (head, lastHash) = core.state.withLock { ($0.head, $0.headHash) }
        startThread { [self] in run() }
    }

    func submit(_ pending: PendingAppend) async throws -> AppendResult {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<AppendResult, any Error>) in
            var pending = pending
            pending.continuation = continuation
            let outcome: Bool? = queue.withLock { q in
                if q.closing { return nil }
                q.items.append(pending)
                return q.items.count == 1
            }
            switch outcome {
            case nil: continuation.resume(throwing: EventLogError(.closed, "the log at \(core.directory) is closed; reopen it to append"))
            case true?: wakeup.signal()
            case false?: break
            }
        }
    }

    /// Drains the queue, syncs and closes the active segment, then returns.
    func shutdown() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let done: EventLogError?? = queue.withLock { q in
                if q.finished { return .some(q.closeError) }
                q.closing = true
                q.shutdownWaiters.append(continuation)
                return .none
            }
            if let done {
                if let error = done { continuation.resume(throwing: error) } else { continuation.resume() }
            } else {
                wakeup.signal()
            }
        }
    }

    func requestShutdown() {
        queue.withLock { $0.closing = true }
        wakeup.signal()
    }

    func statistics() -> FileLog.Statistics {
        counters.withLock { c in
            FileLog.Statistics(batches: c.batches, events: c.events, fsyncs: c.fsyncs, recentFsyncNanoseconds: c.fsyncRing,
                               sealFailures: c.sealFailures, bytesOnDisk: 0)
        }
    }

    // MARK: - The writer thread

    private func run() {
        while true {
            let (group, closing) = takeGroup()
            if group.isEmpty {
                if closing { break }
                waitForWork()
                syncIfIntervalElapsed()
                continue
            }
            commit(group)
        }
        finish()
    }

    /// Takes queued appends up to the batch bounds, in arrival order.
    private func takeGroup() -> ([PendingAppend], Bool) {
        queue.withLock { q in
            var bytes = 0
            var events = 0
            var taken = 0
            for item in q.items {
                if taken > 0 && (bytes + item.estimatedBytes > EventLimits.maxBatchBytes || events + item.eventCount > EventLimits.maxBatchEvents) {
                    break
                }
                bytes += item.estimatedBytes
                events += item.eventCount
                taken += 1
            }
            let group = Array(q.items[0..<taken])
            q.items.removeFirst(taken)
            return (group, q.closing)
        }
    }

    private func waitForWork() {
        if case .interval(let ms) = options.fsync, dirty {
            let deadline = lastSync + UInt64(ms) * 1_000_000
            let now = monotonicNanoseconds()
            if deadline > now { _ = wakeup.wait(timeout: .now() + .nanoseconds(Int(deadline - now))) }
        } else {
            wakeup.wait()
        }
    }

    private func syncIfIntervalElapsed() {
        guard dirty, case .interval(let ms) = options.fsync else { return }
        if monotonicNanoseconds() - lastSync >= UInt64(ms) * 1_000_000 {
            do { try syncActive() } catch { fail(error) }
        }
    }

    private typealias Outcome = (CheckedContinuation<AppendResult, any Error>, Result<AppendResult, any Error>)

    /// Decides, writes, syncs and publishes one group of appends.
    private func commit(_ group: [PendingAppend]) {
        var outcomes: [Outcome] = []
        var accepted: [(pending: PendingAppend, result: AppendResult)] = []
        var duplicates: [(pending: PendingAppend, of: Int)] = []

        let failure: EventLogError? = core.state.withLock { s in
            if let failure = s.failure { return failure }
            var next = s.head + 1
            var staged: [String: UInt64] = [:]  // stream -> event count after staged appends
            var stagedKeys: [String: Int] = [:]
            for pending in group {
                if let key = pending.idempotencyKey {
                    if let existing = s.idempotency[key] {
                        var result = existing
                        result.deduplicated = true
                        outcomes.append((pending.continuation!, .success(result)))
                        continue
                    }
                    if let first = stagedKeys[key] {
                        duplicates.append((pending, first))
                        continue
                    }
                }
                var conflict: WrongExpectedVersion?
                for append in pending.appends {
                    let count = staged[append.stream] ?? UInt64(s.streams[append.stream]?.count ?? 0)
                    let current: UInt64? = count == 0 ? nil : count - 1
                    let ok: Bool
                    switch append.expected {
                    case .any: ok = true
                    case .noStream: ok = current == nil
                    case .exact(let version): ok = current == version
                    }
                    if !ok {
                        conflict = WrongExpectedVersion(stream: append.stream, expected: append.expected, actual: current)
                        break
                    }
                }
                if let conflict {
                    let actual = conflict.actual.map { "is at version \($0)" } ?? "has no events"
                    let error = EventLogError(
                        .wrongExpectedVersion,
                        "stream \(conflict.stream) \(actual), the append expected \(conflict.expected); nothing was written. Read the stream and decide again",
                        cause: conflict
                    )
                    outcomes.append((pending.continuation!, .failure(error)))
                    continue
                }
                var versions: [String: UInt64] = [:]
                for append in pending.appends {
                    let count = (staged[append.stream] ?? UInt64(s.streams[append.stream]?.count ?? 0)) + UInt64(append.events.count)
                    staged[append.stream] = count
                    versions[append.stream] = count - 1
                }
                let first = next
                next += UInt64(pending.eventCount)
                if let key = pending.idempotencyKey { stagedKeys[key] = accepted.count }
                accepted.append((pending, AppendResult(positions: first...(next - 1), streamVersions: versions, deduplicated: false)))
            }
            return nil
        }
        if let failure {
            for pending in group { pending.continuation!.resume(throwing: failure) }
            return
        }
        if !accepted.isEmpty {
            do {
                try write(accepted)
                for (pending, result) in accepted { outcomes.append((pending.continuation!, .success(result))) }
                for (pending, index) in duplicates {
                    var result = accepted[index].result
                    result.deduplicated = true
                    outcomes.append((pending.continuation!, .success(result)))
                }
            } catch {
                for (pending, _) in accepted { outcomes.append((pending.continuation!, .failure(error))) }
                for (pending, _) in duplicates { outcomes.append((pending.continuation!, .failure(error))) }
            }
        }
        for (continuation, result) in outcomes { continuation.resume(with: result) }
    }

    /// Encodes, compresses, writes and syncs one batch, then publishes it to readers.
    private func write(_ accepted: [(pending: PendingAppend, result: AppendResult)]) throws {
        let now = wallClockMicroseconds()
        raw.bytes.removeAll(keepingCapacity: true)
        var touched: [String: [LogPosition]] = [:]
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
                touched[append.stream, default: []].append(contentsOf: position..<position + count)
                position += count
            }
            if let key = pending.idempotencyKey { keys[key] = AppendResult(positions: result.positions, streamVersions: result.streamVersions, deduplicated: true) }
        }
        let (minAt, maxAt) = (encoder.minRecordedAt, encoder.maxRecordedAt)
        let count = position - first
        let rawLength = raw.bytes.count
        let (header, headerBytes, frameLength) = try raw.bytes.withUnsafeBytes { (input) throws in
            let frame = try compressor.compress(input)
            var header = BatchHeader(
                firstPosition: first, eventCount: UInt32(count), rawLength: UInt32(rawLength), minRecordedAt: minAt,
                maxRecordedAt: maxAt, dataLength: UInt32(frame.count), dataChecksum: CRC32C.checksum(frame),
                previousHash: lastHash, chainHash: []
            )
            header.chainHash = header.computeChainHash(dataFrame: frame)
            let headerBytes = header.encodeFramed()
            let offset = active.size
            do {
                try headerBytes.withUnsafeBytes { (h) throws in try active.file.write([h, frame], at: offset) }
            } catch {
                // Nothing was acknowledged: take the partial write back so the file stays a valid log.
                do { try active.file.truncate(to: offset) } catch { fail(EventLogError.wrapping(error)) }
                throw error
            }
            return (header, headerBytes, frame.count)
        }
        let location = BatchLocation(firstPosition: first, eventCount: UInt32(count), offset: active.size, dataLength: UInt32(frameLength))
        active.size += headerBytes.count + frameLength
        dirty = true
        switch options.fsync {
        case .always:
            try syncActive(failing: true)
        case .interval(let ms):
            if monotonicNanoseconds() - lastSync >= UInt64(ms) * 1_000_000 { try syncActive(failing: true) }
        case .never:
            break
        }
        active.builder.add(batch: location, chainHash: header.chainHash, streams: touched, keys: keys)
        head = header.lastPosition
        lastHash = header.chainHash
        let segmentIndex = active.segmentIndex
        let waiters = core.state.withLock { s in
            s.head = header.lastPosition
            s.headHash = header.chainHash
            s.add(batches: [location], segment: segmentIndex)
            for (stream, positions) in touched { s.streams[stream, default: []].append(contentsOf: positions) }
            for (key, result) in keys where s.idempotency[key] == nil { s.idempotency[key] = result }
            s.bytesOnDisk += location.totalSize
            return s.takeReadyWaiters()
        }
        for waiter in waiters { waiter.resume(returning: true) }
        counters.withLock { c in
            c.batches += 1
            c.events += Int(count)
        }
        sealIfFull()
    }

    private func syncActive(failing: Bool = true) throws {
        let start = monotonicNanoseconds()
        do {
            try active.file.syncData()
        } catch {
            // After a failed fsync the kernel may have dropped the dirty pages: the file's
            // content is unknown, so the log stops accepting appends until reopened.
            fail(error)
            throw error
        }
        let elapsed = monotonicNanoseconds() - start
        counters.withLock { $0.recordFsync(elapsed) }
        lastSync = monotonicNanoseconds()
        dirty = false
    }

    private func fail(_ error: any Error) {
        core.state.withLock { s in
            if s.failure == nil {
                s.failure = EventLogError(.closed, "the log at \(core.directory) stopped after a failed write or sync; reopen it", cause: EventLogError.wrapping(error))
            }
        }
    }

    /// Seals the active segment once it is full: sync, write its index, start the next one.
    /// A failure here loses nothing (the index is rebuilt on open); the segment grows on.
    private func sealIfFull() {
        guard active.size >= options.segmentSize else { return }
        let directory = core.directory
        let nextName = SegmentNaming.segmentName(firstPosition: head + 1)
        let nextPath = directory + "/" + nextName
        do {
            try active.file.sync()
            dirty = false
            let (name) = core.state.withLock { $0.segments[active.segmentIndex].name }
            try Directory.writeAtomically(active.builder.index.encode(), to: directory + "/" + SegmentNaming.indexName(forSegment: name), directory: directory)
            let file = try SystemFile.open(nextPath, writable: true, create: true)
            do {
                try Directory.sync(directory)
            } catch {
                Directory.remove(nextPath)
                throw error
            }
            let index = core.state.withLock { s in
                s.segments.append(SegmentRecord(name: nextName, path: nextPath, firstPosition: head + 1))
                return s.segments.count - 1
            }
            active.file.close()
            active = ActiveSegment(file: file, size: 0, builder: SegmentIndexBuilder(firstPosition: head + 1, previousHash: lastHash), segmentIndex: index)
        } catch {
            counters.withLock { $0.sealFailures += 1 }
        }
    }

    private func finish() {
        var closeError: EventLogError?
        do {
            try active.file.sync()
        } catch {
            closeError = EventLogError.wrapping(error)
        }
        active.file.close()
        let (waiters, leftovers) = queue.withLock { q in
            q.finished = true
            q.closeError = closeError
            let waiters = q.shutdownWaiters
            q.shutdownWaiters = []
            let leftovers = q.items
            q.items = []
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

private final class ThreadBody {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

/// Starts a detached OS thread: the writer blocks in write(2) and fdatasync(2), which must
/// not happen on the cooperative pool's few threads.
private func startThread(_ body: @escaping () -> Void) {
    let box = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    var thread = pthread_t()
    let rc = pthread_create(&thread, nil, { argument in
        let body = Unmanaged<ThreadBody>.fromOpaque(argument!).takeRetainedValue()
        body.body()
        return nil
    }, box)
    precondition(rc == 0, "cannot start the log writer thread: \(systemErrorMessage(rc))")
    pthread_detach(thread)
}
