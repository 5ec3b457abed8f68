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

/// A view folded from the payload's bytes in place (`PayloadFields`): it implements only
/// `fold(_:of:)`, and the one-event and batch paths are shared here, so the three views
/// fold a batch the same way (events borrowed, fields read once per event).
public protocol PayloadFieldsProjection: DomainProjection {
    /// Folds one event's fields: a caller folding several views on one thread reads each
    /// event once (`RecordedEvent.withFields`) and hands the fields to each.
    mutating func fold(_ fields: PayloadFields, at stamp: EventStamp)
}

extension PayloadFieldsProjection {
    /// The byte path: the event's fields are read in place, no `DomainEvent` is built.
    @inlinable
    public mutating func apply(_ event: RecordedEvent) {
        event.withFields { fields in
            if let fields { fold(fields, at: event.stamp) }
        }
    }

    @inlinable
    public mutating func apply(batch: [RecordedEvent]) {
        batch.forEachFields { fields, stamp in fold(fields, at: stamp) }
    }
}
