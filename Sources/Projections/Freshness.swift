public import EventLog

/// Where a projection is in its life; the API reports it with every view.
public enum ProjectionState: String, Sendable, Hashable {
    case live
    case catchingUp
    case rebuilding
    case storeUnavailable
}

/// How fresh a view is: its position against the log's head, in events and in event time.
public struct Freshness: Sendable, Hashable {
    public var position: LogPosition
    public var head: LogPosition
    public var lagEvents: UInt64
    /// Seconds between the recorded-at of the view's last event and of the head's event.
    public var lagSeconds: Double
    public var state: ProjectionState

    /// Lag is computed from event times only, never the wall clock, so that it is the same
    /// for a live view and for a replay.
    public init(position: LogPosition, positionRecordedAt: Int64?, head: LogPosition, headRecordedAt: Int64?, state: ProjectionState) {
        self.position = position
        self.head = head
        self.lagEvents = head > position ? head - position : 0
        if let a = positionRecordedAt, let b = headRecordedAt, b > a, lagEvents > 0 {
            lagSeconds = Double(b - a) / 1_000_000
        } else {
            lagSeconds = lagEvents > 0 && positionRecordedAt == nil && headRecordedAt != nil ? .infinity : 0
        }
        self.state = state
    }
}
