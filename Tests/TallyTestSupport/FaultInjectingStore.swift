public import EventLog
import Synchronization

/// A store decorator that can be made slow or failing on its command path (appends, stream
/// reads, head); reads and subscriptions pass through, as from a store that is up but slow
/// to write. It counts the command calls still running, so a test can wait for a slow call
/// to land instead of sleeping.
public final class FaultInjectingStore<Base: EventStore>: EventStore {
    public typealias Events = Base.Events
    /// `conflicting`: every append is refused as if its stream had moved on (reads pass).
    /// `overtaken`: before each append, another writer appends the event `filler` makes to
    /// every stream the append names, straight to the base store, so an append that
    /// expects a version really conflicts (a second server writing behind this one's back).
    /// `slow`: every command call (appends, stream reads, head) first waits `delay`;
    /// `slowAppends`: appends only. Either wait ignores cancellation, as a disk or a database
    /// does once a call is under way.
    public enum Mode: Sendable {
        case normal, failing, slow(Duration), slowAppends(Duration), conflicting
        case overtaken(filler: @Sendable (_ stream: String) -> ProposedEvent)
    }

    public let base: Base
    private let state = Mutex((mode: Mode.normal, inFlight: 0))

    public init(base: Base) { self.base = base }

    public var mode: Mode {
        get { state.withLock { $0.mode } }
        set { state.withLock { $0.mode = newValue } }
    }

    /// Command calls that have started and not yet returned.
    public var inFlight: Int { state.withLock { $0.inFlight } }

    private func faulted<T>(appending: Bool = false, _ body: () async throws -> T) async throws -> T {
        let mode = state.withLock { s in
            s.inFlight += 1
            return s.mode
        }
        defer { state.withLock { $0.inFlight -= 1 } }
        switch mode {
        case .normal, .conflicting, .overtaken: break
        case .failing: throw EventLogError(.io, "injected: the disk is gone")
        case .slow(let delay): await Self.wait(delay)
        case .slowAppends(let delay): if appending { await Self.wait(delay) }
        }
        return try await body()
    }

    /// Waits `delay` whether or not the caller is cancelled (a task of its own does not inherit it).
    private static func wait(_ delay: Duration) async {
        await Task { try? await Task.sleep(for: delay) }.value
    }

    /// Appends that write to any of these streams fail as from a failing disk, whatever the mode.
    public var failingStreams: Set<String> {
        get { streams.withLock { $0 } }
        set { streams.withLock { $0 = newValue } }
    }
    private let streams = Mutex(Set<String>())

    public func append(_ appends: [StreamAppend], idempotencyKey: String?) async throws -> AppendResult {
        if case .conflicting = mode { throw EventLogError(.wrongExpectedVersion, "injected: the stream moved on") }
        let failing = failingStreams
        if appends.contains(where: { failing.contains($0.stream) }) { throw EventLogError(.io, "injected: the disk is gone for this stream") }
        if case .overtaken(let filler) = mode {
            for append in appends {
                _ = try await base.append([StreamAppend(stream: append.stream, expected: .any, events: [filler(append.stream)])], idempotencyKey: nil)
            }
        }
        return try await faulted(appending: true) { try await base.append(appends, idempotencyKey: idempotencyKey) }
    }

    public func head() async throws -> LogHead {
        try await faulted { try await base.head() }
    }

    public func read(from position: LogPosition, filter: EventFilter?) -> Events { base.read(from: position, filter: filter) }
    public func subscribe(from position: LogPosition) -> Events { base.subscribe(from: position) }

    public func readStream(_ stream: String, fromVersion version: UInt64, limit: Int) async throws -> [RecordedEvent] {
        try await faulted { try await base.readStream(stream, fromVersion: version, limit: limit) }
    }

    public func streamVersion(_ stream: String) async throws -> UInt64? {
        try await faulted { try await base.streamVersion(stream) }
    }

    // Lifecycle and figures pass through: the faults are the command path's.
    public func close() async throws { try await base.close() }

    public func verify(expected: LogHead?, progress: ((LogPosition) -> Void)?) async throws -> LogVerifier.Report {
        try await base.verify(expected: expected, progress: progress)
    }

    public func statistics() -> StoreStatistics { base.statistics() }
    public func storedBytes() async throws -> Int { try await base.storedBytes() }
}
