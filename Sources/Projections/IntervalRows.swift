public import EventLog

/// How a runner keeps `IntervalRows` of its view, and how a row's view is written to and
/// read from the rows file beside the snapshot.
public struct IntervalRowsOptions<View: Sendable>: Sendable {
    /// The interval (µs): a row is kept at every multiple of it since 1970.
    public var every: Int64
    /// Rows kept at most; older ones are dropped (an as-of fold answers them).
    public var kept: Int
    public var write: @Sendable (View, inout SnapshotWriter) -> Void
    public var read: @Sendable (inout SnapshotReader) throws -> View

    public init(every: Int64, kept: Int, write: @escaping @Sendable (View, inout SnapshotWriter) -> Void,
                read: @escaping @Sendable (inout SnapshotReader) throws -> View) {
        precondition(every > 0 && kept > 0, "interval rows need a positive interval and count")
        self.every = every
        self.kept = kept
        self.write = write
        self.read = read
    }
}

/// The view as of each multiple of `every` that the fold's event time has passed, taken
/// while folding: when the first event recorded at or after a multiple arrives, the state
/// before it holds exactly the events recorded before that time, which is the as-of answer
/// (`AsOf.fold(at: .before(time))`) — with the events of the same batch recorded before it
/// (see `fold`) — for as long as no event recorded before it comes in a later batch. One
/// that does (a late event) drops every row after its time; an as-of fold answers those.
/// So a series of stats as of each hour costs a lookup per row instead of a fold through
/// the history it covers, and the rows cost memory proportional to `kept`, not to events.
///
/// A pure value: the runner folds through it and publishes a copy beside its view.
public struct IntervalRows<View: Sendable>: Sendable {
    public let every: Int64
    public let kept: Int
    /// In increasing `until`, multiples of `every`; holes where late events dropped rows.
    public private(set) var rows: [AsOfRow<View>] = []
    /// The last position folded.
    public private(set) var position: LogPosition
    /// The largest recorded-at folded; nil before the first event (or when not known).
    public private(set) var maxRecordedAt: Int64?
    /// Whether every event up to `position` went through these rows (folded from the
    /// first event, or continued from a state whose largest recorded-at is known). When it
    /// is not, no row can be taken: an earlier event may already hold a later time.
    public private(set) var knowsPast: Bool
    /// Folded from the first event: as of any time at or before `earliest` (the smallest
    /// recorded-at folded), nothing had been recorded.
    public private(set) var fromStart: Bool
    public private(set) var earliest: Int64?
    /// The view of no events, for the times before `earliest`.
    private let emptyView: View

    /// Rows of a fold at `position` whose largest recorded-at so far is `maxRecordedAt`.
    public init(every: Int64, kept: Int, position: LogPosition, maxRecordedAt: Int64?, emptyView: View) {
        self.every = every
        self.kept = kept
        self.position = position
        self.maxRecordedAt = maxRecordedAt
        knowsPast = position == 0 || maxRecordedAt != nil
        fromStart = position == 0
        self.emptyView = emptyView
    }

    /// Empty rows kept as `options` says, for a fold at `position`.
    public init(_ options: IntervalRowsOptions<View>, position: LogPosition, maxRecordedAt: Int64?, emptyView: View) {
        self.init(every: options.every, kept: options.kept, position: position, maxRecordedAt: maxRecordedAt, emptyView: emptyView)
    }

    /// Rows read back from a file (`IntervalRowsFile`); every value already checked.
    init(every: Int64, kept: Int, position: LogPosition, maxRecordedAt: Int64?, fromStart: Bool, earliest: Int64?,
         rows: [AsOfRow<View>], emptyView: View) {
        self.init(every: every, kept: kept, position: position, maxRecordedAt: maxRecordedAt, emptyView: emptyView)
        self.fromStart = fromStart
        self.earliest = earliest
        self.rows = rows
    }

    /// `time` rounded down to a multiple of `every`, also before 1970; nil when that
    /// multiple is below `Int64.min`.
    func floor(_ time: Int64) -> Int64? {
        let remainder = time % every
        guard remainder < 0 else { return time - remainder }
        let (floored, overflow) = (time - remainder).subtractingReportingOverflow(every)
        return overflow ? nil : floored
    }

    /// Folds `events` (the ones after `position`, in order) into `projection`, taking a row
    /// at each multiple of `every` their time passes and dropping the rows a late one changes.
    ///
    /// An event of the same batch recorded before a row's time but placed after its crossing
    /// (writers that stamp before they commit; an import's batch mixes streams) is in that
    /// row: its view is the state at the crossing with those events also folded
    /// (`Projection.view(alsoFolding:)`), taken before the fold goes on. Late events of a
    /// later batch drop the row instead.
    public mutating func fold<P: Projection>(_ events: [RecordedEvent], into projection: inout P) where P.View == View {
        fold(events, apply: { projection.apply(batch: $0) }, view: { projection.makeView() },
             viewWithLate: { projection.view(alsoFolding: $0) })
    }

    /// `fold(_:into:)` for a fold that is more than one projection (`replay rebuild` folds
    /// stats and metrics from one read of each event): `apply` folds a run of events,
    /// `view` is the view now, `viewWithLate` the view now with `late` also folded, the
    /// state left unchanged.
    public mutating func fold(_ events: [RecordedEvent], apply: ([RecordedEvent]) -> Void, view: () -> View,
                              viewWithLate: ([RecordedEvent]) -> View) {
        guard let lastEvent = events.last else { return }
        guard knowsPast else {
            apply(events)
            position = lastEvent.position
            return
        }
        // Rows of earlier batches that any of these events was recorded before are wrong now.
        var minimum = events[0].recordedAt
        for event in events where event.recordedAt < minimum { minimum = event.recordedAt }
        if let last = rows.last, minimum < last.until { dropRows(after: minimum) }
        if fromStart, earliest.map({ minimum < $0 }) ?? true { earliest = minimum }
        var from = 0
        for index in events.indices {
            let at = events[index].recordedAt
            guard let max = maxRecordedAt else {
                maxRecordedAt = at
                continue
            }
            guard at > max else { continue }
            maxRecordedAt = at
            // The multiples in (max, at] are crossed by this event; the state before it,
            // with this batch's later events recorded before each, is each one's answer.
            // (Times at the ends of Int64 have no multiple past them: no row, no trap.)
            guard let newest = floor(at), let below = floor(max) else { continue }
            let (first, overflow) = below.addingReportingOverflow(every)
            guard !overflow, first <= newest else { continue }
            var end = first
            if from < index { apply(Array(events[from..<index])) }
            from = index
            let taken = index > 0 ? events[index - 1].position : position
            let now = view()
            // A jump of more than `kept` intervals keeps only the newest of them.
            let (span, spanOverflow) = newest.subtractingReportingOverflow(end)
            let (keptSpan, keptOverflow) = Int64(kept - 1).multipliedReportingOverflow(by: every)
            if !keptOverflow, spanOverflow || span > keptSpan { end = newest - keptSpan }
            // Only an event recorded before the newest multiple can be late for any of them.
            let lateForAny = events[(index + 1)...].filter { $0.recordedAt < newest }
            while end <= newest {
                let late = lateForAny.isEmpty ? [] : lateForAny.filter { $0.recordedAt < end }
                if let lastLate = late.last {
                    rows.append(AsOfRow(until: end, position: lastLate.position, view: viewWithLate(late)))
                } else {
                    rows.append(AsOfRow(until: end, position: taken, view: now))
                }
                let (next, past) = end.addingReportingOverflow(every)
                if past { break }
                end = next
            }
        }
        if from < events.count { apply(from == 0 ? events : Array(events[from...])) }
        position = lastEvent.position
        // Trimmed in steps of an eighth, so each row is moved a bounded number of times.
        if rows.count > kept + kept / 8 { rows.removeFirst(rows.count - kept) }
    }

    /// Drops the rows after `time`: each was taken before an event recorded before its end.
    private mutating func dropRows(after time: Int64) {
        rows.removeSubrange(rows.partitioningIndex { $0.until > time }...)
    }

    /// The answer as of `end` (events recorded before it) for the fold at `position` whose
    /// view is `current`; nil when these rows cannot give it (an as-of fold must).
    public func row(until end: Int64, current: View) -> AsOfRow<View>? {
        guard knowsPast else { return nil }
        // Nothing folded is recorded at or after `end`: the whole fold is the answer.
        if maxRecordedAt.map({ $0 < end }) ?? true { return AsOfRow(until: end, position: position, view: current) }
        if fromStart, let earliest, end <= earliest { return AsOfRow(until: end, position: 0, view: emptyView) }
        guard end % every == 0 else { return nil }
        let index = rows.partitioningIndex { $0.until >= end }
        return index < rows.count && rows[index].until == end ? rows[index] : nil
    }
}
