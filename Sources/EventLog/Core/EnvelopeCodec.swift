/// The binary envelope of one event inside a batch's data frame. Layout in
/// docs/log-format.md; every field is length- or varint-encoded and bounded.
enum EnvelopeCodec {
    /// Presence flags: a field whose flag is clear has the previous event's value.
    /// The first event of a batch has every flag set.
    enum Flag {
        static let stream: UInt8 = 1 << 0
        static let type: UInt8 = 1 << 1
        static let actor: UInt8 = 1 << 2
        static let correlation: UInt8 = 1 << 3
        static let causation: UInt8 = 1 << 4
        static let key: UInt8 = 1 << 5
        static let all: UInt8 = 0x3F
    }

    /// Decodes a whole batch's raw bytes and checks the events against its header:
    /// count, time range, flags; positions follow from the header's first position.
    static func decodeBatch(_ raw: [UInt8], header: BatchHeader) throws -> [RecordedEvent] {
        let storage = EnvelopeStorage(raw)
        return try raw.withUnsafeBytes { try decodeBatch($0, storage: storage, header: header) }
    }

    private static func decodeBatch(_ raw: UnsafeRawBufferPointer, storage: EnvelopeStorage, header: BatchHeader) throws -> [RecordedEvent] {
        let count = Int(header.eventCount)
        var events: [RecordedEvent] = []
        events.reserveCapacity(count)
        var r = ByteReader(raw)
        var fields = EnvelopeFields.empty
        var recordedAt: Int64 = 0
        var position = header.firstPosition
        while r.remaining > 0 {
            guard events.count < count else {
                throw EventLogError(.corrupted, "batch at position \(header.firstPosition) holds more than its \(count) events")
            }
            let flags = try r.readUInt8("flags")
            guard flags & ~Flag.all == 0, !events.isEmpty || flags == Flag.all else {
                throw EventLogError(.corrupted, "event \(position) has invalid field flags 0x\(String(flags, radix: 16))")
            }
            if flags & Flag.stream != 0 {
                fields.stream = try r.readField("stream", max: EventLimits.maxStreamBytes)
                guard fields.stream.count > 0 else { throw EventLogError(.corrupted, "event \(position) has an empty stream") }
            }
            let version = try r.readVarint("stream version")
            if flags & Flag.type != 0 {
                fields.type = try r.readField("type", max: EventLimits.maxTypeBytes)
                guard fields.type.count > 0 else { throw EventLogError(.corrupted, "event \(position) has an empty type") }
            }
            let schema = try r.readVarint("schema version", max: UInt64(UInt16.max))
            let delta = try r.readZigZag("recorded-at")
            // The writer stores the wrapping difference (`&-`), so wrapping addition restores
            // any recorded-at exactly (Int64.min after Int64.max included); the range check
            // still catches damage.
            let at = recordedAt &+ delta
            guard at >= header.minRecordedAt, at <= header.maxRecordedAt else {
                throw EventLogError(.corrupted, "event \(position) lies outside its batch's time range")
            }
            recordedAt = at
            if flags & Flag.actor != 0 { fields.actor = try r.readField("actor", max: EventLimits.maxActorBytes) }
            if flags & Flag.correlation != 0 { fields.correlation = try r.readField("correlation id", max: EventLimits.maxCorrelationBytes) }
            if flags & Flag.causation != 0 { fields.causation = try r.readField("causation id", max: EventLimits.maxCausationBytes) }
            if flags & Flag.key != 0 { fields.key = try r.readField("idempotency key", max: EventLimits.maxIdempotencyKeyBytes) }
            fields.payload = try r.readField("payload", max: EventLimits.maxPayloadBytes)
            events.append(RecordedEvent(
                position: position, streamVersion: version, recordedAt: at, schemaVersion: UInt16(schema),
                storage: storage, fields: fields
            ))
            position += 1
        }
        guard events.count == count else {
            throw EventLogError(.corrupted, "batch at position \(header.firstPosition) declares \(count) events, holds \(events.count)")
        }
        return events
    }
}

/// Encodes the events of one batch, omitting fields equal to the previous event's.
/// Layout in docs/log-format.md.
struct BatchEncoder {
    private var previous: ProposedEvent?
    private var previousStream = ""
    private var previousKey = ""
    private var lastRecordedAt: Int64 = 0
    private(set) var minRecordedAt = Int64.max
    private(set) var maxRecordedAt = Int64.min

    /// Encodes one append's events for `stream`, versions from `firstVersion`; events without
    /// a recorded-at get `now`.
    mutating func encode(
        stream: String, firstVersion: UInt64, events: [ProposedEvent], now: Int64, idempotencyKey: String?, into w: inout ByteWriter
    ) {
        let key = idempotencyKey ?? ""
        events.withUnsafeBufferPointer { events in
            for i in events.indices {
                let flags: UInt8
                if i > 0 {
                    flags = Self.flags(events[i], events[i - 1], sameStream: true, sameKey: true)
                } else if let previous {
                    flags = Self.flags(events[i], previous, sameStream: previousStream == stream, sameKey: previousKey == key)
                } else {
                    flags = EnvelopeCodec.Flag.all
                }
                let at = events[i].recordedAt ?? now
                minRecordedAt = Swift.min(minRecordedAt, at)
                maxRecordedAt = Swift.max(maxRecordedAt, at)
                w.writeUInt8(flags)
                if flags & EnvelopeCodec.Flag.stream != 0 { w.writeLengthPrefixed(stream) }
                w.writeVarint(firstVersion + UInt64(i))
                if flags & EnvelopeCodec.Flag.type != 0 { w.writeLengthPrefixed(events[i].type) }
                w.writeVarint(UInt64(events[i].schemaVersion))
                w.writeZigZag(at &- lastRecordedAt)
                lastRecordedAt = at
                if flags & EnvelopeCodec.Flag.actor != 0 { w.writeLengthPrefixed(events[i].actor) }
                if flags & EnvelopeCodec.Flag.correlation != 0 { w.writeLengthPrefixed(events[i].correlationID) }
                if flags & EnvelopeCodec.Flag.causation != 0 { w.writeLengthPrefixed(events[i].causationID) }
                if flags & EnvelopeCodec.Flag.key != 0 { w.writeLengthPrefixed(key) }
                w.writeLengthPrefixed(events[i].payload)
            }
            previous = events.last
        }
        previousStream = stream
        previousKey = key
    }

    private static func flags(_ event: ProposedEvent, _ previous: ProposedEvent, sameStream: Bool, sameKey: Bool) -> UInt8 {
        var flags = EnvelopeCodec.Flag.all
        if sameStream { flags &= ~EnvelopeCodec.Flag.stream }
        if event.type == previous.type { flags &= ~EnvelopeCodec.Flag.type }
        if event.actor == previous.actor { flags &= ~EnvelopeCodec.Flag.actor }
        if event.correlationID == previous.correlationID { flags &= ~EnvelopeCodec.Flag.correlation }
        if event.causationID == previous.causationID { flags &= ~EnvelopeCodec.Flag.causation }
        if sameKey { flags &= ~EnvelopeCodec.Flag.key }
        return flags
    }
}
