import EventLog
import Synchronization

/// A store that can be made wholly unavailable, reads and tails included (where
/// `FaultInjectingStore` fails only the command path): while `down`, every call throws,
/// and a tail throws at its next batch, as a store whose disk went away would. The views'
/// runners then report `storeUnavailable` and serve their last views, marked stale.
final class OutageStore<Base: EventStore>: EventStore {
    let base: Base
    private let state = Mutex(false)

    init(base: Base) { self.base = base }

    var down: Bool {
        get { state.withLock { $0 } }
        set { state.withLock { $0 = newValue } }
    }

    private func check() throws {
        if down { throw EventLogError(.io, "injected: the store is unavailable") }
    }

    func append(_ appends: [StreamAppend], idempotencyKey: String?) async throws -> AppendResult {
        try check()
        return try await base.append(appends, idempotencyKey: idempotencyKey)
    }

    func head() async throws -> LogHead {
        try check()
        return try await base.head()
    }

    func read(from position: LogPosition, filter: EventFilter?) -> Events { Events(base: base.read(from: position, filter: filter), store: self) }
    func subscribe(from position: LogPosition) -> Events { Events(base: base.subscribe(from: position), store: self) }

    func readStream(_ stream: String, fromVersion version: UInt64, limit: Int) async throws -> [RecordedEvent] {
        try check()
        return try await base.readStream(stream, fromVersion: version, limit: limit)
    }

    func streamVersion(_ stream: String) async throws -> UInt64? {
        try check()
        return try await base.streamVersion(stream)
    }

    func close() async throws { try await base.close() }

    func verify(expected: LogHead?, progress: ((LogPosition) -> Void)?) async throws -> LogVerifier.Report {
        try check()
        return try await base.verify(expected: expected, progress: progress)
    }

    func statistics() -> StoreStatistics { base.statistics() }
    func storedBytes() async throws -> Int { try await base.storedBytes() }

    /// The base store's events, each next one refused while the store is down.
    struct Events: EventSequence {
        let base: Base.Events
        let store: OutageStore

        func makeAsyncIterator() -> Iterator { Iterator(base: base.makeAsyncIterator(), store: store) }
        var batches: Batches { Batches(base: base.batches, store: store) }

        struct Iterator: AsyncIteratorProtocol {
            var base: Base.Events.AsyncIterator
            let store: OutageStore
            mutating func next() async throws -> RecordedEvent? {
                try store.check()
                let event = try await base.next()
                try store.check()
                return event
            }
        }

        struct Batches: AsyncSequence, Sendable {
            let base: Base.Events.Batches
            let store: OutageStore
            func makeAsyncIterator() -> Iterator { Iterator(base: base.makeAsyncIterator(), store: store) }

            struct Iterator: AsyncIteratorProtocol {
                var base: Base.Events.Batches.AsyncIterator
                let store: OutageStore
                mutating func next() async throws -> [RecordedEvent]? {
                    try store.check()
                    let batch = try await base.next()
                    try store.check()
                    return batch
                }
            }
        }
    }
}
