public import EventLog

/// A point a view is answered as of.
public enum AsOfPoint: Sendable, Hashable {
    /// Everything in the log as the read reaches its head.
    case head
    /// The events up to and including this position.
    case position(LogPosition)
    /// The events recorded before this time (µs, exclusive), at any position: what a fold
    /// of the whole log filtered by recorded-at folds, in position order.
    case before(Int64)
}

/// A view folded as of a point, and how.
public struct AsOfAnswer<P: Projection>: Sendable {
    public var projection: P
    /// The last event folded (0 when none): the position the view is as of.
    public var position: LogPosition
    /// The checkpoint the fold started from; nil when it folded from the first event.
    public var checkpoint: CheckpointMark?
    /// Checkpoints passed over, each with its reason (damaged, another version, another log).
    public var refused: [String]
    /// Events folded after the checkpoint.
    public var eventsFolded: Int
}

/// Answers as of a point from the nearest usable checkpoint at or before it, folding only
/// what follows; equal to a fold from position 1, because a checkpoint is used only when
/// every event it holds belongs to the answer (its position is at or before the point; for
/// a time, every event in it was recorded before the time) and the log still holds the event
/// it was bound to. Anything else about a checkpoint is a reason to pass it over, never to
/// trust it.
public enum AsOf {
    /// The checkpoints that may serve `point`, nearest first.
    public static func candidates(_ entries: [CheckpointEntry], for point: AsOfPoint) -> [CheckpointEntry] {
        let usable: [CheckpointEntry]
        switch point {
        case .head: usable = entries
        case .position(let until): usable = entries.filter { $0.position <= until }
        case .before(let time): usable = entries.filter { entry in entry.maxRecordedAt.map { $0 < time } ?? false }
        }
        return usable.sorted { $0.position > $1.position }
    }

    /// `P` folded as of `point`: from the nearest checkpoint that passes every check, else
    /// from the first event. `progress` hears the position after each batch.
    public static func fold<P: Projection, Store: EventStore>(
        _: P.Type, from store: Store, checkpoints: CheckpointStore?, at point: AsOfPoint,
        progress: ((LogPosition) -> Void)? = nil
    ) async throws -> AsOfAnswer<P> {
        if case .position(0) = point {
            return AsOfAnswer(projection: P(), position: 0, checkpoint: nil, refused: [], eventsFolded: 0)
        }
        let entries = checkpoints.map { $0.entries(for: P.name) } ?? []
        var position: LogPosition = 0
        var folded = 0
        var filter: EventFilter?
        if case .before(let time) = point { filter = EventFilter(until: time) }
        // Read (and pick the checkpoint) on this task, fold on a thread of its own (`FoldPipeline`).
        let lane = LaneState(P())
        var started: (projection: P, mark: CheckpointMark?, refused: [String])?
        try await FoldPipeline(lanes: 1).run(lanes: [{ lane.value.apply(batch: $0) }]) { feed in
            started = try await resume(P.self, from: store, checkpoints: checkpoints, candidates: candidates(entries, for: point),
                                       filter: filter, onStart: { mark, start in
                                           position = mark?.position ?? 0
                                           // Before the first offer: the hand-off's lock orders it before the lane's fold.
                                           lane.value = start
                                       }) { _, batch in
                var events = batch[...]
                if case .position(let until) = point { events = events.prefix { $0.position <= until } }
                guard let last = events.last else { return false }
                try await feed.offer(events.count == batch.count ? batch : Array(events))
                position = last.position
                folded += events.count
                progress?(position)
                if case .position(let until) = point, position >= until { return false }
                return true
            }
        }
        return AsOfAnswer(projection: lane.value, position: position, checkpoint: started?.mark, refused: started?.refused ?? [],
                          eventsFolded: folded)
    }

    /// Starts a fold of `P` from the first of `candidates` that loads and whose bound event
    /// the log still holds (else from position 1), reads on from there with `filter`, and
    /// hands `consume` each batch after the start until it returns false or the read ends.
    /// `onStart` hears where the fold starts, and the state it starts from, before the first
    /// batch is consumed.
    static func resume<P: Projection, Store: EventStore>(
        _: P.Type, from store: Store, checkpoints: CheckpointStore?, candidates: [CheckpointEntry], filter: EventFilter?,
        onStart: (CheckpointMark?, P) -> Void, consume: (inout P, [RecordedEvent]) async throws -> Bool
    ) async throws -> (projection: P, mark: CheckpointMark?, refused: [String]) {
        var refused: [String] = []
        for entry in candidates {
            guard let checkpoints else { break }
            let checkpoint: Checkpoint<P>
            switch checkpoints.load(entry, as: P.self) {
            case .failure(let error):
                refused.append(error.message)
                continue
            case .success(let loaded):
                checkpoint = loaded
            }
            var projection = checkpoint.projection
            let mark = checkpoint.mark
            var batches = store.read(from: mark.position, filter: filter).batches.makeAsyncIterator()
            guard let first = try await batches.next(), let bound = first.first else {
                refused.append("checkpoint \(entry.path): the log ends before its position \(mark.position); it is from another log")
                continue
            }
            guard bound.position == mark.position, bound.recordedAt == mark.recordedAt, EventFingerprint.of(bound) == mark.fingerprint else {
                refused.append("checkpoint \(entry.path): the event at position \(mark.position) is not the one it was folded to; it is from another log")
                continue
            }
            onStart(mark, projection)
            var more = true
            if first.count > 1 { more = try await consume(&projection, Array(first.dropFirst())) }
            while more, let batch = try await batches.next() {
                try Task.checkCancellation()
                if batch.isEmpty { continue }
                more = try await consume(&projection, batch)
            }
            return (projection, mark, refused)
        }
        var projection = P()
        onStart(nil, projection)
        var batches = store.read(from: 1, filter: filter).batches.makeAsyncIterator()
        while let batch = try await batches.next() {
            try Task.checkCancellation()
            if batch.isEmpty { continue }
            guard try await consume(&projection, batch) else { break }
        }
        return (projection, nil, refused)
    }
}
