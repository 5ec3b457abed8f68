public import EventLog

/// When a fold writes its next as-of checkpoint: after `everyEvents` events since the last
/// one, or once event time has moved `everyEventMicros` past the last one's and at least a
/// tenth of `everyEvents` were folded since (so a sparse log does not get one per event).
/// Decided from the events alone, so a rebuild and a server place them alike. Keeps the
/// largest recorded-at folded, which each checkpoint records. No I/O: the caller writes.
public struct CheckpointSchedule: Sendable {
    /// The spacing `replay rebuild` and the server use (docs/snapshot-format.md says how it
    /// was measured): an as-of answer folds at most this many events after its checkpoint.
    public static let defaultEveryEvents: UInt64 = 250_000
    /// One day of event time.
    public static let defaultEveryEventMicros: Int64 = 86_400_000_000

    public let everyEvents: UInt64
    public let everyEventMicros: Int64
    /// Where the fold is, and the largest recorded-at folded (nil when unknown: the fold
    /// started from a state that did not record it; it stays unknown).
    public private(set) var position: LogPosition
    public private(set) var maxRecordedAt: Int64?
    private var maxKnown: Bool
    private var last: (position: LogPosition, maxRecordedAt: Int64?)

    /// A fold starting at `position` whose events 1...position have the largest recorded-at
    /// `maxRecordedAt` (nil: none folded when `position` is 0, else unknown).
    public init(everyEvents: UInt64 = defaultEveryEvents, everyEventMicros: Int64 = defaultEveryEventMicros,
                position: LogPosition = 0, maxRecordedAt: Int64? = nil) {
        self.everyEvents = max(1, everyEvents)
        self.everyEventMicros = max(1, everyEventMicros)
        self.position = position
        self.maxRecordedAt = maxRecordedAt
        maxKnown = position == 0 || maxRecordedAt != nil
        last = (position, maxRecordedAt)
    }

    /// Notes a folded batch (the events after `position`, in order); true when a checkpoint
    /// is due at its last event. It stays due until `written` is called.
    public mutating func folded(_ events: some Collection<RecordedEvent>) -> Bool {
        guard let final = events.reversed().first else { return false }
        if last.position == 0, last.maxRecordedAt == nil, let first = events.first {
            // Event time is measured from the first event when no checkpoint came before.
            last.maxRecordedAt = first.recordedAt
        }
        if maxKnown {
            for event in events { maxRecordedAt = Swift.max(maxRecordedAt ?? event.recordedAt, event.recordedAt) }
        }
        position = final.position
        return due
    }

    /// Whether a checkpoint is due at `position`. Never sooner than a quarter of the last
    /// one's position after it: a checkpoint holds the whole state, which grows with the
    /// history, so a fixed spacing would make the checkpoints' bytes grow with its square
    /// (at 10 M events, one every 250,000 wrote 1.7 GB, three times the log). With the
    /// quarter they stay a few times one state, and an as-of answer folds at most a
    /// quarter of its position (or `everyEvents`, whichever is more).
    public var due: Bool {
        guard position > last.position else { return false }
        let events = position - last.position
        guard events >= last.position / 4 else { return false }
        if events >= everyEvents { return true }
        guard events >= Swift.max(1, everyEvents / 10), let now = maxRecordedAt else { return false }
        guard let then = last.maxRecordedAt else { return true }
        return now.subtractingReportingOverflow(then).partialValue >= everyEventMicros
    }

    /// The mark to write for the checkpoint due after `last`, the last event folded.
    public func mark(after last: RecordedEvent) -> CheckpointMark {
        CheckpointMark(after: last, maxRecordedAt: maxKnown ? maxRecordedAt : nil)
    }

    /// A checkpoint was written at `position`: the next one is measured from here.
    public mutating func written(at position: LogPosition) {
        last = (position, maxKnown ? maxRecordedAt : nil)
    }
}
