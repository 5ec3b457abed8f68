/// The one extension point of the log: the embedded `FileLog` and the shared PostgreSQL
/// log implement it, and everything above (commands, projections, tools) is written
/// against it. Both keep the same contract: gap-free commit-ordered positions, optimistic
/// concurrency per stream, idempotency keys, durable acknowledgement, the same chain hash.
public protocol EventStore: Sendable {
    associatedtype Events: EventSequence

    /// Appends to one or more streams atomically: every expected version holds and all
    /// events are written, or nothing is. Returns only once the batch holding the events is
    /// durable under the store's fsync policy. A repeated `idempotencyKey` returns the first
    /// append's result and writes nothing.
    func append(_ appends: [StreamAppend], idempotencyKey: String?) async throws -> AppendResult

    /// The last committed position and its chain hash: the digest an auditor keeps
    /// elsewhere and checks later with `verify(expected:)`.
    func head() async throws -> LogHead

    /// Events from `position` (inclusive) to the head as it is when the read reaches it,
    /// optionally filtered; batched internally.
    func read(from position: LogPosition, filter: EventFilter?) -> Events

    /// Everything stored from `position`, then new events as they commit; no gap, no
    /// duplicate. Ends (returns nil) when the task is cancelled or the store closes.
    func subscribe(from position: LogPosition) -> Events

    /// One stream's events in version order, from `version`, at most `limit` of them; in time
    /// proportional to the stream's size, not the log's.
    func readStream(_ stream: String, fromVersion version: UInt64, limit: Int) async throws -> [RecordedEvent]

    /// The stream's last version, or nil when it has no events.
    func streamVersion(_ stream: String) async throws -> UInt64?

    /// Commits what is queued, stops the writer and releases what the store holds (file
    /// lock, connections); tails end. Appends after close fail with `.closed`.
    func close() async throws

    /// Checks every stored batch in order (positions, checksums, envelopes, chain hash) and
    /// reports the first break. With `expected` (a digest taken from `head()` earlier), also
    /// checks that the log still holds that exact prefix. `progress` gets positions reached.
    func verify(expected: LogHead?, progress: ((LogPosition) -> Void)?) async throws -> LogVerifier.Report

    /// This process's writer figures, without suspending: cheap enough for every scrape.
    func statistics() -> StoreStatistics

    /// Bytes the log occupies (segment files, or tables with their indexes).
    func storedBytes() async throws -> Int
}

/// The events a store reads or tails, one at a time or, for folds over many events
/// (replay, projections), a stored batch at a time.
public protocol EventSequence: AsyncSequence<RecordedEvent, any Error>, Sendable {
    associatedtype Batches: AsyncSequence<[RecordedEvent], any Error> & Sendable
    /// The same events in the store's batches: each element is non-empty and in order.
    var batches: Batches { get }
}

extension EventStore {
    /// Appends events to one stream.
    public func append(
        to stream: String,
        expected: ExpectedVersion = .any,
        events: [ProposedEvent],
        idempotencyKey: String? = nil
    ) async throws -> AppendResult {
        try await append([StreamAppend(stream: stream, expected: expected, events: events)], idempotencyKey: idempotencyKey)
    }

    public func read(from position: LogPosition = 1) -> Events {
        read(from: position, filter: nil)
    }

    public func readStream(_ stream: String) async throws -> [RecordedEvent] {
        try await readStream(stream, fromVersion: 0, limit: Int.max)
    }

    public func verify(expected: LogHead? = nil) async throws -> LogVerifier.Report {
        try await verify(expected: expected, progress: nil)
    }
}

/// Defaults for stores that keep nothing of their own: in-memory test doubles. Both backends
/// implement every one of these; a decorator should forward them to the store it wraps.
extension EventStore {
    public func close() async throws {}

    public func verify(expected: LogHead?, progress: ((LogPosition) -> Void)?) async throws -> LogVerifier.Report {
        throw EventLogError(.unsupported, "\(Self.self) keeps no batches to verify; verify the log it stands for")
    }

    public func statistics() -> StoreStatistics {
        StoreStatistics(names: StoreStatistics.Names(backend: "\(Self.self)", commit: "commit", commits: "commits", sync: "sync"))
    }

    public func storedBytes() async throws -> Int { 0 }
}
