/// The binary envelope of one event inside a batch's data frame. Layout in
/// docs/log-format.md; every field is length- or varint-encoded and bounded.
enum EnvelopeCodec {
    /// Largest envelope body: the payload bound plus every other field at its bound.
    static let maxEnvelopeBytes = EventLimits.maxPayloadBytes + 4096

    /// Appends the envelope of `event` to `w`.
    static func encode(
        position: LogPosition, stream: String, streamVersion: UInt64, event: ProposedEvent,
        recordedAt: Int64, idempotencyKey: String?, into w: inout ByteWriter
    ) {
        let lengthOffset = w.bytes.count
        // Reserve a 3-byte varint for the body length (bodies < 2 MiB), patched below:
        // the fixed width saves encoding every event twice.
        w.bytes.append(contentsOf: [0x80, 0x80, 0x00])
        let bodyStart = w.bytes.count
        w.writeVarint(position)
        w.writeLengthPrefixed(stream)
        w.writeVarint(streamVersion)
        w.writeLengthPrefixed(event.type)
        w.writeVarint(UInt64(event.schemaVersion))
        w.writeZigZag(recordedAt)
        w.writeLengthPrefixed(event.actor)
        w.writeLengthPrefixed(event.correlationID)
        w.writeLengthPrefixed(event.causationID)
        w.writeLengthPrefixed(idempotencyKey ?? "")
        w.writeLengthPrefixed(event.payload)
        let length = w.bytes.count - bodyStart
        w.bytes[lengthOffset] = UInt8(length & 0x7F) | 0x80
        w.bytes[lengthOffset + 1] = UInt8((length >> 7) & 0x7F) | 0x80
        w.bytes[lengthOffset + 2] = UInt8((length >> 14) & 0x7F)
    }

    /// Decodes the envelope at the reader's offset, checking every bound.
    static func decode(_ r: inout ByteReader) throws -> RecordedEvent {
        let length = Int(try r.readVarint("envelope length", max: UInt64(maxEnvelopeBytes)))
        guard r.remaining >= length else {
            throw EventLogError(.corrupted, "envelope of \(length) bytes overruns the batch (\(r.remaining) remain)")
        }
        let end = r.offset + length
        let position = try r.readVarint("position")
        let stream = try r.readString("stream", max: EventLimits.maxStreamBytes)
        let version = try r.readVarint("stream version")
        let type = try r.readString("type", max: EventLimits.maxTypeBytes)
        let schema = try r.readVarint("schema version", max: UInt64(UInt16.max))
        let recordedAt = try r.readZigZag("recorded-at")
        let actor = try r.readString("actor", max: EventLimits.maxActorBytes)
        let correlation = try r.readString("correlation id", max: EventLimits.maxCorrelationBytes)
        let causation = try r.readString("causation id", max: EventLimits.maxCausationBytes)
        let key = try r.readString("idempotency key", max: EventLimits.maxIdempotencyKeyBytes)
        let payload = try r.readLengthPrefixed("payload", max: EventLimits.maxPayloadBytes)
        guard r.offset == end else {
            throw EventLogError(.corrupted, "envelope declares \(length) bytes but its fields take \(length - (end - r.offset))")
        }
        guard !stream.isEmpty, !type.isEmpty else { throw EventLogError(.corrupted, "envelope has an empty stream or type") }
        return RecordedEvent(
            position: position, stream: stream, streamVersion: version, type: type,
            schemaVersion: UInt16(schema), recordedAt: recordedAt, actor: actor,
            correlationID: correlation, causationID: causation,
            idempotencyKey: key.isEmpty ? nil : key, payload: Array(payload)
        )
    }

    /// Decodes a whole batch's raw bytes and checks the events against its header:
    /// count, consecutive positions and time range.
    static func decodeBatch(_ raw: UnsafeRawBufferPointer, header: BatchHeader) throws -> [RecordedEvent] {
        var events: [RecordedEvent] = []
        events.reserveCapacity(Int(header.eventCount))
        var r = ByteReader(raw)
        var expected = header.firstPosition
        while r.remaining > 0 {
            guard events.count < Int(header.eventCount) else {
                throw EventLogError(.corrupted, "batch at position \(header.firstPosition) holds more than its \(header.eventCount) events")
            }
            let event = try decode(&r)
            guard event.position == expected else {
                throw EventLogError(.corrupted, "batch at position \(header.firstPosition): event \(events.count) has position \(event.position), expected \(expected)")
            }
            guard event.recordedAt >= header.minRecordedAt, event.recordedAt <= header.maxRecordedAt else {
                throw EventLogError(.corrupted, "event \(event.position) lies outside its batch's time range")
            }
            expected += 1
            events.append(event)
        }
        guard events.count == Int(header.eventCount) else {
            throw EventLogError(.corrupted, "batch at position \(header.firstPosition) declares \(header.eventCount) events, holds \(events.count)")
        }
        return events
    }
}
