public import EventLog

/// One row of a series: the view as of `until` (events recorded before it), at `position`,
/// the last event folded into it.
public struct AsOfRow<View: Sendable>: Sendable {
    public var until: Int64
    public var position: LogPosition
    public var view: View
}

/// A view as of each of a run of increasing times. Each row equals the separate as-of answer
/// (`AsOf.fold(at: .before(until))`): the events recorded before its time, folded in position
/// order.
///
/// The first pass starts at the nearest checkpoint before the first time, folds in position
/// order and takes each row when the first event at or after its time arrives (its
/// crossing). Event time is not monotonic in position, so an event recorded before a row's
/// time may still turn up after the row was taken; the first pass notes, per row, the last
/// position that belongs to it. Those rows (dirty) are answered by a second pass from the
/// nearest checkpoint before the first dirty crossing: at each dirty row's crossing the
/// state is forked (a copy of the value), the fork folds only the events recorded before its
/// time, and it is taken at its last position. A fork lives from its crossing to its last
/// event, so the second pass holds as many extra states as there are rows whose late events
/// overlap; in a log whose event time only moves forward there are none, and the series
/// costs one pass.
///
/// Forks are whole fold states (their intern tables diverge from the main state's), so at
/// most `maximumForks` live at once: a dirty row whose crossing comes while that many are
/// folding waits for another second pass. One event recorded at the log's start and
/// appended last makes every row dirty until the end; unbounded, each of 71 rows of a
/// 1 M-event log held its own copy (70 → 330 MB), and a 10 M-event log's 720 rows would
/// not have fit in memory. Bounded, that log costs more passes instead.
public enum AsOfSeries {
    /// The largest number of rows one series may ask for; bounds the rows held before
    /// they are known to be final.
    public static let maximumRows = 10_000
    /// Forks folded at once in one second pass.
    public static let maximumForks = 8

    public struct Answer<View: Sendable>: Sendable {
        public var rows: [AsOfRow<View>]
        public var refused: [String]
        /// Rows answered by the second pass because an earlier-recorded event came later.
        public var reanswered: Int
        /// Second passes made (each holds at most `maximumForks` forks at once).
        public var secondPasses = 0
    }

    /// `P`'s view as of each time in `ends` (strictly increasing, at most `maximumRows`).
    /// `progress` hears the first pass's position after each batch.
    public static func fold<P: Projection, Store: EventStore>(
        _: P.Type, from store: Store, checkpoints: CheckpointStore?, ends: [Int64], maximumForks: Int = maximumForks,
        progress: ((LogPosition) -> Void)? = nil
    ) async throws -> Answer<P.View> {
        guard let firstEnd = ends.first, let lastEnd = ends.last else { return Answer(rows: [], refused: [], reanswered: 0) }
        guard ends.count <= maximumRows, zip(ends, ends.dropFirst()).allSatisfy({ $0 < $1 }) else {
            throw ProjectionError(.invalidInput, "a series takes 1...\(maximumRows) strictly increasing times, got \(ends.count)")
        }
        let entries = checkpoints.map { $0.entries(for: P.name) } ?? []
        let buckets = SeriesBuckets(ends: ends)
        var rows: [AsOfRow<P.View>] = []
        rows.reserveCapacity(ends.count)
        /// The position of the event that took each row; nil for rows taken at the end.
        var crossings: [LogPosition?] = []
        crossings.reserveCapacity(ends.count)
        /// The last position of an event recorded in each row's interval (row r holds buckets 0...r).
        var lastInBucket = [LogPosition](repeating: 0, count: ends.count)
        var position: LogPosition = 0
        let started = try await AsOf.resume(
            P.self, from: store, checkpoints: checkpoints, candidates: AsOf.candidates(entries, for: .before(firstEnd)),
            filter: EventFilter(until: lastEnd), onStart: { mark, _ in position = mark?.position ?? 0 }
        ) { projection, batch in
            var from = 0
            for (index, event) in batch.enumerated() {
                let at = event.recordedAt
                let open = rows.count
                // The common case: the event belongs to the row being folded.
                let bucket = (open == ends.count || at < ends[open]) && (open == 0 || at >= ends[open - 1]) ? open : buckets.of(at)
                if bucket < ends.count { lastInBucket[bucket] = event.position }
                guard bucket > open else { continue }
                // The events before this one belong to every row it takes.
                if from < index { projection.apply(batch: Array(batch[from..<index])) }
                from = index
                if index > 0 { position = batch[index - 1].position }
                while rows.count < bucket {
                    rows.append(AsOfRow(until: ends[rows.count], position: position, view: projection.makeView()))
                    crossings.append(event.position)
                }
            }
            if from < batch.count {
                projection.apply(batch: from == 0 ? batch : Array(batch[from...]))
                position = batch[batch.count - 1].position
            }
            progress?(position)
            return true
        }
        while rows.count < ends.count {
            rows.append(AsOfRow(until: ends[rows.count], position: position, view: started.projection.makeView()))
            crossings.append(nil)
        }
        // Row r's last event: the latest of its buckets'.
        var lastPositions = lastInBucket
        for r in lastPositions.indices.dropFirst() { lastPositions[r] = max(lastPositions[r], lastPositions[r - 1]) }
        var dirty: [Int] = []
        for r in rows.indices {
            if let crossing = crossings[r], lastPositions[r] > crossing { dirty.append(r) }
        }
        var refused = started.refused
        var waiting = dirty.map { (row: $0, crossing: crossings[$0]!, last: lastPositions[$0]) }
        var passes = 0
        while !waiting.isEmpty {
            // Each pass answers at least its first row (no fork is live at the first crossing).
            let late = try await foldLateRows(
                P.self, from: store, checkpoints: checkpoints, entries: entries, buckets: buckets,
                dirty: waiting, maximumForks: max(1, maximumForks)
            )
            for (row, view) in late.views { rows[row] = AsOfRow(until: ends[row], position: lastPositions[row], view: view) }
            // A checkpoint passed over again by a later pass is reported once.
            for reason in late.refused where !refused.contains(reason) { refused.append(reason) }
            passes += 1
            waiting = late.deferred
        }
        return Answer(rows: rows, refused: refused, reanswered: dirty.count, secondPasses: passes)
    }

    /// The second pass: folds from the nearest checkpoint before the first dirty crossing,
    /// forks the state at each dirty row's crossing and folds into each fork only the events
    /// of its buckets, up to its last one. A row whose crossing comes while `maximumForks`
    /// forks are live is passed over (`deferred`) for the next pass.
    private static func foldLateRows<P: Projection, Store: EventStore>(
        _: P.Type, from store: Store, checkpoints: CheckpointStore?, entries: [CheckpointEntry], buckets: SeriesBuckets,
        dirty: [(row: Int, crossing: LogPosition, last: LogPosition)], maximumForks: Int
    ) async throws -> (views: [(Int, P.View)], deferred: [(row: Int, crossing: LogPosition, last: LogPosition)], refused: [String]) {
        var views: [(Int, P.View)] = []
        var deferred: [(row: Int, crossing: LogPosition, last: LogPosition)] = []
        var next = 0
        /// Forks being folded: the row, its last position, its state.
        var forks: [(row: Int, last: LogPosition, state: P)] = []
        // Every event before the first crossing was recorded before that row's time, so the
        // unfiltered checkpoint equals the filtered fold there.
        let started = try await AsOf.resume(
            P.self, from: store, checkpoints: checkpoints, candidates: AsOf.candidates(entries, for: .position(dirty[0].crossing - 1)),
            filter: EventFilter(until: buckets.ends[buckets.ends.count - 1]), onStart: { _, _ in }
        ) { main, batch in
            var segmentStart = 0
            while segmentStart < batch.count {
                // A segment runs to the next dirty crossing (exclusive) or the batch's end.
                var segmentEnd = batch.count
                if next < dirty.count {
                    let crossing = dirty[next].crossing
                    if let at = batch[segmentStart...].firstIndex(where: { $0.position >= crossing }) { segmentEnd = at }
                }
                if segmentStart < segmentEnd {
                    let segment = Array(batch[segmentStart..<segmentEnd])
                    // The main state is needed only until the last fork is made.
                    if next < dirty.count { main.apply(batch: segment) }
                    for f in forks.indices {
                        let row = forks[f].row
                        let own = segment.filter { buckets.of($0.recordedAt) <= row }
                        if !own.isEmpty { forks[f].state.apply(batch: own) }
                    }
                    let reached = segment[segment.count - 1].position
                    forks.removeAll { fork in
                        guard fork.last <= reached else { return false }
                        views.append((fork.row, fork.state.makeView()))
                        return true
                    }
                }
                while next < dirty.count, segmentEnd < batch.count, batch[segmentEnd].position >= dirty[next].crossing {
                    if forks.count < maximumForks {
                        forks.append((dirty[next].row, dirty[next].last, main))
                    } else {
                        deferred.append(dirty[next])
                    }
                    next += 1
                }
                segmentStart = segmentEnd
            }
            return next < dirty.count || !forks.isEmpty
        }
        guard next == dirty.count, forks.isEmpty else {
            throw ProjectionError(.gap, "the second read of the log ended before \(dirty.count - views.count - deferred.count) rows' events it had seen; retry")
        }
        return (views, deferred, started.refused)
    }
}

/// Which row's interval an event time falls in: bucket b holds `ends[b-1] <= at < ends[b]`,
/// and row r holds buckets 0...r. `ends.count` for a time at or after the last end.
struct SeriesBuckets: Sendable {
    let ends: [Int64]

    func of(_ at: Int64) -> Int {
        var low = 0
        var high = ends.count
        while low < high {
            let mid = (low + high) / 2
            if ends[mid] <= at { low = mid + 1 } else { high = mid }
        }
        return low
    }
}
