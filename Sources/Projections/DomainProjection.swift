public import EventLog
public import Events

/// A projection over the catalogue's events. `apply(_:of:)` folds a decoded `DomainEvent`
/// (the API's and the tests' path). The three views also override `apply(_ event:)` and
/// `apply(batch:)` to fold from the payload's bytes in place (`PayloadFields`), building
/// no `DomainEvent` and no `String` per event; both paths give the same state.
public protocol DomainProjection: Projection {
    /// Folds one catalogue event; `event` gives its position and recorded-at.
    mutating func apply(_ domain: DomainEvent, of event: RecordedEvent)
}

extension DomainProjection {
    /// Opaque events (unknown type, newer schema, malformed payload) are skipped.
    public mutating func apply(_ event: RecordedEvent) {
        if let domain = event.domainEvent { apply(domain, of: event) }
    }

    /// Folds a batch already decoded: `decoded[i]` belongs to `events[i]`.
    public mutating func apply(decoded: [DomainEvent?], of events: [RecordedEvent]) {
        for (domain, event) in zip(decoded, events) {
            if let domain { apply(domain, of: event) }
        }
    }
}

extension DomainEvent {
    /// Each event's domain event, nil where it is opaque.
    public static func decodeBatch(_ events: [RecordedEvent]) -> [DomainEvent?] {
        events.map(\.domainEvent)
    }
}
