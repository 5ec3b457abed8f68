/// The writers' commit decision, as a value that does no I/O: for each append of a group,
/// in arrival order, whether it goes into the next batch (with which positions and stream
/// versions) or is answered instead (a repeated idempotency key, a wrong expected version),
/// and when that answer may be given. Both writers look up what the store holds, feed it
/// here and carry out the returned action, so the rules live and are tested in one place
/// (CommitDeciderTests).
struct CommitDecider {
    /// What the store holds for a stream (its event count) or an idempotency key (the first
    /// append's result) before this group: published, or written in an earlier batch that is
    /// not published yet (its sequence number).
    struct Prior<Value> {
        var value: Value
        var unpublishedBatch: Int?

        init(_ value: Value, unpublishedBatch: Int? = nil) {
            self.value = value
            self.unpublishedBatch = unpublishedBatch
        }
    }

    enum Action {
        /// Write the append into this batch; acknowledge it with the result once the batch is
        /// published.
        case write(AppendResult)
        /// Answer now: nothing it depends on is still unpublished.
        case answer(Result<AppendResult, EventLogError>)
        /// Answer once a batch is published: the earlier batch with this sequence number, or
        /// (nil) the batch being built. A conflict's loser that reads the stream and decides
        /// again must find the winner's events; a repeat must find its first append.
        case answerAfter(batch: Int?, Result<AppendResult, EventLogError>)
    }

    /// The position the next accepted event gets.
    private(set) var nextPosition: LogPosition
    /// Appends accepted into this batch so far.
    private(set) var acceptedCount = 0
    /// Stream -> event count after the appends accepted so far.
    private var staged: [String: UInt64] = [:]
    private var stagedKeys: [String: AppendResult] = [:]

    /// A decider for the batch after `head`.
    init(after head: LogPosition) {
        nextPosition = head + 1
    }

    /// Decides one append. `keyPrior` is what the store holds for its idempotency key (nil
    /// when unused, or when it has none); `streamPriors` what it holds for each of its
    /// streams, in the order of `pending.appends`.
    mutating func decide(_ pending: PendingAppend, keyPrior: Prior<AppendResult>?, streamPriors: [Prior<UInt64>]) -> Action {
        precondition(streamPriors.count == pending.appends.count, "one prior per stream")
        if let key = pending.idempotencyKey {
            if var first = keyPrior {
                first.value.deduplicated = true
                if let batch = first.unpublishedBatch { return .answerAfter(batch: batch, .success(first.value)) }
                return .answer(.success(first.value))
            }
            if var first = stagedKeys[key] {
                first.deduplicated = true
                return .answerAfter(batch: nil, .success(first))
            }
        }
        // Streams are distinct within an append: one count each decides the expected version
        // and numbers the events.
        var versions: [String: UInt64] = [:]
        versions.reserveCapacity(pending.appends.count)
        for (append, prior) in zip(pending.appends, streamPriors) {
            let staged = staged[append.stream]
            let before = staged ?? prior.value
            if let error = Self.conflict(append, streamCount: before) {
                if staged != nil { return .answerAfter(batch: nil, .failure(error)) }
                if let batch = prior.unpublishedBatch { return .answerAfter(batch: batch, .failure(error)) }
                return .answer(.failure(error))
            }
            versions[append.stream] = before + UInt64(append.events.count) - 1
        }
        for (stream, version) in versions { staged[stream] = version + 1 }
        let first = nextPosition
        nextPosition += UInt64(pending.eventCount)
        let result = AppendResult(positions: first...(nextPosition - 1), streamVersions: versions, deduplicated: false)
        if let key = pending.idempotencyKey { stagedKeys[key] = result }
        acceptedCount += 1
        return .write(result)
    }

    /// The refusal of `append` when its stream holds `streamCount` events, or nil.
    static func conflict(_ append: StreamAppend, streamCount count: UInt64) -> EventLogError? {
        let current: UInt64? = count == 0 ? nil : count - 1
        switch append.expected {
        case .any: return nil
        case .noStream: if current == nil { return nil }
        case .exact(let version): if current == version { return nil }
        }
        let cause = WrongExpectedVersion(stream: append.stream, expected: append.expected, actual: current)
        let actual = current.map { "is at version \($0)" } ?? "has no events"
        return EventLogError(
            .wrongExpectedVersion,
            "stream \(append.stream) \(actual), the append expected \(append.expected); nothing was written. Read the stream and decide again",
            cause: cause
        )
    }
}
