public import EventLog

/// One row of a series: the view as of `until` (events recorded before it), at `position`,
/// the last event folded into it.
public struct AsOfRow<View: Sendable>: Sendable {
    public var until: Int64
    public var position: LogPosition
    public var view: View
}

/// A view as of each of a run of increasing times, from one pass over the log: starts at the
/// nearest checkpoint before the first time, folds in position order and takes each row when
/// the first event at or after its time arrives. Each row equals the separate as-of answer
/// (`AsOf.fold(at: .before(until))`): event time is not monotonic in position, so when an
/// event recorded before a row's time turns up after the row was taken, that row (and the
/// others it belongs to) is answered again on its own. In a log whose event time only moves
/// forward this never happens, and the series costs one pass.
public enum AsOfSeries {
    /// The largest number of rows one series may ask for; bounds the rows held before
    /// they are known to be final.
    public static let maximumRows = 10_000

    public struct Answer<View: Sendable>: Sendable {
        public var rows: [AsOfRow<View>]
        public var refused: [String]
        /// Rows answered again on their own because an earlier-recorded event came later.
        public var reanswered: Int
    }

    /// `P`'s view as of each time in `ends` (strictly increasing, at most `maximumRows`).
    public static func fold<P: Projection, Store: EventStore>(
        _: P.Type, from store: Store, checkpoints: CheckpointStore?, ends: [Int64],
        progress: ((LogPosition) -> Void)? = nil
    ) async throws -> Answer<P.View> {
        guard let firstEnd = ends.first, let lastEnd = ends.last else { return Answer(rows: [], refused: [], reanswered: 0) }
        guard ends.count <= maximumRows, zip(ends, ends.dropFirst()).allSatisfy({ $0 < $1 }) else {
            throw ProjectionError(.invalidInput, "a series takes 1...\(maximumRows) strictly increasing times, got \(ends.count)")
        }
        let entries = checkpoints.map { $0.entries(for: P.name) } ?? []
        var rows: [AsOfRow<P.View>] = []
        rows.reserveCapacity(ends.count)
        var position: LogPosition = 0
        /// Rows an event recorded before their time turned up after they were taken.
        var dirty = Set<Int>()
        let started = try await AsOf.resume(
            P.self, from: store, checkpoints: checkpoints, candidates: AsOf.candidates(entries, for: .before(firstEnd)),
            filter: EventFilter(until: lastEnd), onStart: { mark, _ in position = mark?.position ?? 0 }
        ) { projection, batch in
            var from = 0
            for (index, event) in batch.enumerated() {
                let at = event.recordedAt
                guard rows.count < ends.count, at >= ends[rows.count] || (rows.count > 0 && at < ends[rows.count - 1]) else { continue }
                // The events before this one belong to every row due so far.
                if from < index { projection.apply(batch: Array(batch[from..<index])) }
                from = index
                if index > 0 { position = batch[index - 1].position }
                if rows.count > 0, at < ends[rows.count - 1] {
                    // Recorded before rows already taken: those rows are answered again.
                    let belongs = ends.firstIndex { at < $0 } ?? 0
                    for row in belongs..<rows.count { dirty.insert(row) }
                }
                while rows.count < ends.count, at >= ends[rows.count] {
                    rows.append(AsOfRow(until: ends[rows.count], position: position, view: projection.makeView()))
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
        }
        var refused = started.refused
        for row in dirty.sorted() {
            let answer = try await AsOf.fold(P.self, from: store, checkpoints: checkpoints, at: .before(ends[row]))
            rows[row] = AsOfRow(until: ends[row], position: answer.position, view: answer.projection.makeView())
            refused += answer.refused
        }
        return Answer(rows: rows, refused: refused, reanswered: dirty.count)
    }
}
