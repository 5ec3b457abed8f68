public import EventLog

/// A deterministic fold of the log into a view: depends only on events (their recorded-at,
/// never the wall clock), so a rebuild from the log equals the live view.
public protocol Projection: Sendable {
    /// What readers get: an immutable value. Published after batches, so it must be cheap to
    /// produce relative to a batch (it may simply be `Self` if the state is small or copy-on-write).
    associatedtype View: Sendable
    /// Stable name, used for snapshot file names ("system-stats").
    static var name: String { get }
    /// Bump when the fold changes: snapshots of another version are ignored and the view is rebuilt.
    static var version: Int { get }
    init()
    /// Folds one event. Never throws: an event it cannot decode (unknown type, newer schema) is skipped.
    mutating func apply(_ event: RecordedEvent)
    /// Folds a stored batch; default implementation loops over `apply`.
    mutating func apply(batch: [RecordedEvent])
    func makeView() -> View
    /// The view this state would have after also folding `late`, leaving it unchanged (an
    /// hourly row whose batch holds events recorded before the hour after the crossing,
    /// `IntervalRows`). The default folds them into a copy; a projection whose copy would
    /// copy large tables on its first write computes it beside them instead.
    func view(alsoFolding late: [RecordedEvent]) -> View
    /// Writes the whole fold state, section by section, by hand (docs/snapshot-format.md);
    /// the writer streams it to the file in chunks as it goes.
    func writeSnapshot(to writer: inout SnapshotWriter)
    /// The inverse: throws `ProjectionError` on anything malformed, never traps.
    init(snapshot reader: inout SnapshotReader) throws
}

extension Projection {
    /// One event at a time; a projection overrides it only when a batch can be folded faster
    /// as a whole.
    public mutating func apply(batch: [RecordedEvent]) {
        for event in batch { apply(event) }
    }

    public func view(alsoFolding late: [RecordedEvent]) -> View {
        var copy = self
        copy.apply(batch: late)
        return copy.makeView()
    }

    /// Folds the log from its first event up to `until` (inclusive; nil = the head as the read
    /// reaches it), from scratch: what `replay stats --until-position` and `replay rebuild`
    /// report, and what a live runner's view must equal.
    public static func rebuild<Store: EventStore>(from store: Store, until: LogPosition? = nil) async throws -> RebuiltProjection<Self> {
        // Read and decode on this task, fold on a thread of its own (`FoldPipeline`).
        try await foldPipelined(Self(), after: 0, from: store, until: until)
    }
}

/// A projection folded from scratch, and where the fold stopped.
public struct RebuiltProjection<P: Projection>: Sendable {
    public var projection: P
    /// The last position folded (0 when the log is empty or `until` was 0).
    public var position: LogPosition
    /// The recorded-at of the event at `position`; nil when `position` is 0.
    public var recordedAt: Int64?
}

/// A view as readers see it: one consistent value, stamped with the log position it
/// includes, so a response can say how fresh it is and read-your-writes can be checked.
public struct Published<View: Sendable>: Sendable {
    public let view: View
    /// Every event up to and including this position is folded in; none after it.
    public let position: LogPosition
    /// The recorded-at of the event at `position`; nil when `position` is 0.
    public let recordedAt: Int64?

    public init(view: View, position: LogPosition, recordedAt: Int64?) {
        self.view = view
        self.position = position
        self.recordedAt = recordedAt
    }
}

/// How a runner behaves; the defaults suit a server.
public struct ProjectionRunnerOptions: Sendable {
    /// Write a snapshot after this many events folded since the last one, and at least a
    /// quarter of the last one's position: a snapshot costs about the whole view, so a
    /// catch-up through a long history writes a few snapshots (their spacing grows with the
    /// history), not one per `snapshotEveryEvents`.
    public var snapshotEveryEvents: Int
    /// …or after this many seconds (wall clock: it decides only when to write, never what).
    public var snapshotEverySeconds: Double
    /// While catching up, publish at most this often; once caught up, every batch is published.
    public var publishMinimumIntervalMilliseconds: Int
    /// Waits between attempts when the store fails; the last one repeats.
    public var retryDelays: [Duration]
    /// With a checkpoint store: an as-of checkpoint after this many events folded since the
    /// last one (`CheckpointSchedule`), decided from the events, not the clock.
    public var checkpointEveryEvents: UInt64
    /// …or once event time moved this far (µs) past the last one.
    public var checkpointEveryEventMicros: Int64

    public init(
        snapshotEveryEvents: Int = 100_000,
        snapshotEverySeconds: Double = 60,
        publishMinimumIntervalMilliseconds: Int = 20,
        retryDelays: [Duration] = [.milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5)],
        checkpointEveryEvents: UInt64 = CheckpointSchedule.defaultEveryEvents,
        checkpointEveryEventMicros: Int64 = CheckpointSchedule.defaultEveryEventMicros
    ) {
        self.checkpointEveryEvents = checkpointEveryEvents
        self.checkpointEveryEventMicros = checkpointEveryEventMicros
        self.snapshotEveryEvents = snapshotEveryEvents
        self.snapshotEverySeconds = snapshotEverySeconds
        self.publishMinimumIntervalMilliseconds = publishMinimumIntervalMilliseconds
        self.retryDelays = retryDelays
    }
}

/// What a runner reports as it goes, for logs and tests; it never changes what the view holds.
public enum ProjectionRunnerEvent: Sendable, Hashable, CustomStringConvertible {
    /// About to read and decode `file`, on the loading thread (a listener that blocks here
    /// holds the load, never a thread of the cooperative pool).
    case snapshotLoading(file: String)
    case snapshotLoaded(file: String, position: LogPosition)
    /// A snapshot that was not used: corrupt, another projection, another version, another log.
    case snapshotIgnored(reason: String)
    case snapshotWritten(position: LogPosition)
    case snapshotFailed(reason: String)
    case checkpointWritten(position: LogPosition)
    case checkpointFailed(reason: String)
    /// An older version's view, from its snapshot at `position`, is served while this
    /// version rebuilds.
    case previousVersionServed(position: LogPosition)
    case stateChanged(from: ProjectionState, to: ProjectionState)
    case storeFailed(reason: String, retryIn: Duration)

    public var description: String {
        switch self {
        case .snapshotLoading(let file): "loading snapshot \(file)"
        case .snapshotLoaded(let file, let position): "loaded snapshot \(file) at position \(position)"
        case .snapshotIgnored(let reason): "ignored snapshot: \(reason)"
        case .snapshotWritten(let position): "wrote snapshot at position \(position)"
        case .snapshotFailed(let reason): "could not write snapshot: \(reason)"
        case .checkpointWritten(let position): "wrote as-of checkpoint at position \(position)"
        case .checkpointFailed(let reason): "could not write as-of checkpoint: \(reason)"
        case .previousVersionServed(let position): "serving the previous version's view at position \(position) while rebuilding"
        case .stateChanged(let from, let to): "state \(from.rawValue) -> \(to.rawValue)"
        case .storeFailed(let reason, let delay): "store failed (\(reason)); retrying in \(delay)"
        }
    }
}

/// An error from the projection machinery. `code` is stable and safe to match on; `message`
/// says what went wrong and what to do.
public struct ProjectionError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        private init(_ name: String) { self.name = name }

        /// A name or argument broke a documented rule.
        public static let invalidInput = Code("invalid_input")
        /// A snapshot file failed a check (magic, lengths, checksums).
        public static let corrupted = Code("corrupted")
        /// A system call on the snapshot directory failed.
        public static let io = Code("io")
        /// The store delivered events out of order or with a hole; the runner re-reads.
        public static let gap = Code("gap")
        /// `run()` was called while (or after) the runner ran; make a new runner instead.
        public static let alreadyRunning = Code("already_running")

        public var description: String { name }
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
