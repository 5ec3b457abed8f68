/// The canonical bytes of an event: what a Merkle leaf hashes. They depend only on the
/// event (never on the batch that holds it, its neighbours' fields, compression or the
/// backend), so the same events give the same tree on a `FileLog`, on PostgreSQL and after
/// export and import. Layout (docs/log-format.md, "Canonical event bytes"), little-endian:
///
///     u8 1 (layout version) · u64 position · u64 stream version · u16 schema version ·
///     i64 recorded-at (µs) · then, each as u32 length + bytes: stream, type, actor,
///     correlation id, causation id, idempotency key (empty when none), payload
public enum CanonicalEvent {
    public static let layoutVersion: UInt8 = 1

    /// The canonical bytes of `event`.
    public static func bytes(of event: RecordedEvent) -> [UInt8] {
        var out: [UInt8] = []
        write(event, into: &out)
        return out
    }

    /// The canonical bytes from an event's fields, for a verifier that holds only its JSON.
    public static func bytes(
        position: LogPosition, stream: String, streamVersion: UInt64, type: String, schemaVersion: UInt16,
        recordedAt: Int64, actor: String, correlationID: String, causationID: String, idempotencyKey: String?,
        payload: [UInt8]
    ) -> [UInt8] {
        let event = RecordedEvent(
            position: position, stream: stream, streamVersion: streamVersion, type: type, schemaVersion: schemaVersion,
            recordedAt: recordedAt, actor: actor, correlationID: correlationID, causationID: causationID,
            idempotencyKey: idempotencyKey, payload: payload
        )
        return bytes(of: event)
    }

    /// The RFC 9162 leaf hash of `event`: SHA-256(0x00 ‖ canonical bytes).
    public static func leafHash(of event: RecordedEvent) -> MerkleHash {
        var scratch: [UInt8] = []
        return leafHash(of: event, scratch: &scratch)
    }

    /// The leaf hash, reusing `scratch` so that hashing many events allocates once.
    public static func leafHash(of event: RecordedEvent, scratch: inout [UInt8]) -> MerkleHash {
        scratch.removeAll(keepingCapacity: true)
        write(event, into: &scratch)
        return scratch.withUnsafeBytes { MerkleHash.leaf($0) }
    }

    static func write(_ event: RecordedEvent, into out: inout [UInt8]) {
        out.append(layoutVersion)
        appendLE(event.position, &out)
        appendLE(event.streamVersion, &out)
        appendLE(event.schemaVersion, &out)
        appendLE(event.recordedAt, &out)
        let fields = event.fields
        func field(_ range: FieldRange) {
            appendLE(range.count, &out)
            event.storage.withBytes(range) { out.append(contentsOf: $0) }
        }
        field(fields.stream)
        field(fields.type)
        field(fields.actor)
        field(fields.correlation)
        field(fields.causation)
        field(fields.key)
        field(fields.payload)
    }

    @inline(__always)
    private static func appendLE<T: FixedWidthInteger>(_ value: T, _ out: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) }
    }
}
