import EventLog
import Projections
import Synchronization

/// Stats series rows kept between requests. A row is the stats view as of its end: it changes
/// only when an event recorded before that end is appended, so before it answers, the cache
/// reads the events appended since its last look and drops every row whose end is after the
/// earliest recorded-at among them. A row it does not hold comes from the stats runner's
/// hourly rows when they have it (`IntervalRows`: an hour boundary the live fold passed, or
/// a time after everything folded), else it is folded: the rows still missing in one
/// `AsOfSeries` pass. So an hourly or daily series over the last quarter costs lookups even
/// on the first request, and a repeated request costs the look, not the history.
///
/// While the store cannot be read, the runner's rows answer alone when they hold every row
/// asked for (the response is stale, as every view read then is); anything else is refused.
///
/// One request at a time goes through (`SerialGate`), so the look, the fold and the keeping
/// never interleave and two requests never fold the same rows twice.
final class StatsSeriesCache: Sendable {
    /// Rows kept at most (each a `SystemStats`, about 1 KB); when full it starts again empty.
    static let capacity = 20_000

    struct Answer: Sendable {
        var rows: [AsOfRow<SystemStats>]
        /// Each row's identity while it is kept, for `encoded(_:)`.
        var ids: [UInt64]
        var refused: [String]
        /// Rows folded for this request (the others were kept ones).
        var folded: Int
    }

    fileprivate struct Kept {
        var row: AsOfRow<SystemStats>
        var id: UInt64
        /// The row's JSON in a response, with the `from` it was written with.
        var encoded: (from: Int64, bytes: [UInt8])?
    }

    fileprivate struct State {
        var rows: [Int64: Kept] = [:]
        var nextID: UInt64 = 0
        /// Every event up to this position has been looked at since the rows were folded.
        var lookedThrough: LogPosition = 0
    }

    private let gate = SerialGate()
    fileprivate let state = Mutex(State())

    var count: Int { state.withLock { $0.rows.count } }

    /// The JSON of the row `id` (ending at `until`, shown from `from`), written once while the
    /// row is kept: `encode` runs only when it is not written yet, or the row was folded again.
    func encoded(id: UInt64, until: Int64, from: Int64, _ encode: () throws -> [UInt8]) rethrows -> [UInt8] {
        if let known = state.withLock({ s in s.rows[until].flatMap { $0.id == id && $0.encoded?.from == from ? $0.encoded?.bytes : nil } }) {
            return known
        }
        let bytes = try encode()
        state.withLock { s in
            if s.rows[until]?.id == id { s.rows[until]?.encoded = (from, bytes) }
        }
        return bytes
    }

    /// The row as of each of `ends`. `live`, when given, returns the stats runner's published
    /// view with its interval rows.
    func rows<Store: EventStore>(
        ends: [Int64], store: Store, checkpoints: CheckpointStore?,
        live: (() -> (published: Published<SystemStats>, rows: IntervalRows<SystemStats>?))? = nil
    ) async throws -> Answer {
        try await gate.run {
            do {
                try await look(store)
            } catch {
                // The store cannot be read (the kept rows cannot be checked, nothing can be
                // folded): the runner's rows alone answer, when they hold every row.
                if let (published, intervalRows) = live?(), let intervalRows {
                    let rows = ends.compactMap { intervalRows.row(until: $0, current: published.view) }
                    if rows.count == ends.count { return Answer(rows: rows, ids: Array(repeating: 0, count: rows.count), refused: [], folded: 0) }
                }
                throw error
            }
            var missing = state.withLock { s in ends.filter { s.rows[$0] == nil } }
            if !missing.isEmpty, let (published, intervalRows) = live?(), let intervalRows {
                var found: [AsOfRow<SystemStats>] = []
                missing.removeAll { end in
                    guard let row = intervalRows.row(until: end, current: published.view) else { return false }
                    found.append(row)
                    return true
                }
                state.withLock { s in
                    keep(found, wanted: ends, in: &s)
                    // These rows hold through the runner's position: the next look starts there.
                    if !found.isEmpty { s.lookedThrough = min(s.lookedThrough, published.position) }
                }
            }
            guard !missing.isEmpty else {
                let kept = state.withLock { s in ends.map { s.rows[$0]! } }
                return Answer(rows: kept.map(\.row), ids: kept.map(\.id), refused: [], folded: 0)
            }
            // The fold reads at least through the look, so its rows hold as of it.
            let answer = try await AsOfSeries.fold(SystemStatsProjection.self, from: store, checkpoints: checkpoints, ends: missing)
            let folded = Dictionary(uniqueKeysWithValues: answer.rows.map { ($0.until, $0) })
            let kept = state.withLock { s in
                keep(answer.rows, wanted: ends, in: &s)
                return ends.map { s.rows[$0] ?? Kept(row: folded[$0]!, id: 0) }
            }
            return Answer(rows: kept.map(\.row), ids: kept.map(\.id), refused: answer.refused, folded: missing.count)
        }
    }
}

extension StatsSeriesCache {
    /// Keeps `rows`, each under a new id; when that would pass `capacity`, first drops the
    /// kept rows this request does not want.
    private func keep(_ rows: [AsOfRow<SystemStats>], wanted ends: [Int64], in s: inout State) {
        guard !rows.isEmpty else { return }
        if s.rows.count + rows.count > Self.capacity {
            let wanted = Set(ends)
            s.rows = s.rows.filter { wanted.contains($0.key) }
        }
        for row in rows {
            s.nextID += 1
            s.rows[row.until] = Kept(row: row, id: s.nextID)
        }
    }

    /// Reads the events appended since the last look and drops the kept rows ending after
    /// the earliest time among them; the first look only notes the head.
    fileprivate func look<Store: EventStore>(_ store: Store) async throws {
        let (empty, lookedThrough) = state.withLock { ($0.rows.isEmpty, $0.lookedThrough) }
        guard !empty else {
            let head = try await store.head().position
            state.withLock { $0.lookedThrough = head }
            return
        }
        var reached = lookedThrough
        var earliest = Int64.max
        for try await batch in store.read(from: lookedThrough + 1, filter: nil).batches {
            try Task.checkCancellation()
            for event in batch where event.recordedAt < earliest { earliest = event.recordedAt }
            if let last = batch.last { reached = last.position }
        }
        state.withLock { s in
            if earliest != .max { s.rows = s.rows.filter { $0.key <= earliest } }
            s.lookedThrough = reached
        }
    }
}

/// Runs one body at a time, in the order they arrived; the others wait without a thread.
final class SerialGate: Sendable {
    private let state = Mutex<(busy: Bool, waiting: [CheckedContinuation<Void, Never>])>((false, []))

    func run<T>(_ body: () async throws -> T) async throws -> T {
        await withCheckedContinuation { (turn: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                if s.busy {
                    s.waiting.append(turn)
                    return false
                }
                s.busy = true
                return true
            }
            if now { turn.resume() }
        }
        defer {
            let next = state.withLock { s -> CheckedContinuation<Void, Never>? in
                if s.waiting.isEmpty {
                    s.busy = false
                    return nil
                }
                return s.waiting.removeFirst()
            }
            next?.resume()
        }
        return try await body()
    }
}
