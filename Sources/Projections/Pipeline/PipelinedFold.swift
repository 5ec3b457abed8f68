public import EventLog

/// A value one lane folds in place: only that lane's thread touches it while the pipeline
/// runs, and the caller reads it only after `FoldPipeline.run` returned (the lanes' exits
/// happen before it, through the pipeline's lock), hence `@unchecked Sendable`.
public final class LaneState<Value>: @unchecked Sendable {
    public var value: Value
    public init(_ value: Value) { self.value = value }
}

/// Which part of each batch a fold after `position` up to `until` takes: the events past
/// the position, up to `until`, after checking that they follow on without a hole. Pure.
public struct FoldRange: Sendable {
    /// The last position taken (the fold's position once they are folded).
    public private(set) var position: LogPosition
    /// The recorded-at of the event at `position`; nil while nothing was taken.
    public private(set) var recordedAt: Int64?
    /// The last position to take (inclusive); nil: to the end of the read.
    public let until: LogPosition?

    public init(after position: LogPosition, until: LogPosition?) {
        self.position = position
        self.until = until
    }

    /// True once `until` is reached: read no further.
    public var isComplete: Bool { until.map { position >= $0 } ?? false }

    /// The events of `batch` to fold: nil when it holds nothing new or nothing up to
    /// `until`. Throws `.gap` when the log skips a position.
    public mutating func take(_ batch: [RecordedEvent]) throws -> [RecordedEvent]? {
        guard !isComplete else { return nil }
        let fresh = batch.drop { $0.position <= position }
        guard let first = fresh.first else { return nil }
        guard first.position == position + 1 else {
            throw ProjectionError(.gap, "the log delivered position \(first.position) after \(position)")
        }
        let events = until.map { until in fresh.prefix { $0.position <= until } } ?? fresh
        guard let last = events.last else { return nil }
        position = last.position
        recordedAt = last.recordedAt
        return events.count == batch.count ? batch : Array(events)
    }
}

extension Projection {
    /// Folds the log after `position` onto `start` (a fresh projection, or one loaded from a
    /// snapshot at `position`), up to `until` (inclusive; nil: the head as the read reaches
    /// it), on two cores: this task reads and decodes, a fold thread applies (`FoldPipeline`).
    /// Equal to applying the same batches in order on this task. A store error or a
    /// cancellation is thrown and no partial projection is returned. `progress` hears the
    /// position read after each batch, on this task.
    ///
    /// The result's `recordedAt` is nil when nothing was folded after `position`. The runner's
    /// catch-up can call this with its snapshot's state and position.
    public static func foldPipelined<Store: EventStore>(
        _ start: Self, after position: LogPosition, from store: Store, until: LogPosition? = nil,
        pipeline: FoldPipeline = FoldPipeline(lanes: 1), progress: ((LogPosition) -> Void)? = nil
    ) async throws -> RebuiltProjection<Self> {
        var range = FoldRange(after: position, until: until)
        if range.isComplete { return RebuiltProjection(projection: start, position: position, recordedAt: nil) }
        let state = LaneState(start)
        try await pipeline.run(lanes: [{ batch in state.value.apply(batch: batch) }]) { feed in
            for try await batch in store.read(from: position + 1).batches {
                guard let events = try range.take(batch) else {
                    if range.isComplete { break }
                    continue
                }
                try await feed.offer(events)
                progress?(range.position)
                if range.isComplete { break }
            }
        }
        return RebuiltProjection(projection: state.value, position: range.position, recordedAt: range.recordedAt)
    }
}
