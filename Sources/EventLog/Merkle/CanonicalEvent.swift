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
    /// The bytes are laid out once, copied field by field, and hashed in one call: `verify`
    /// and the tree index hash every event this way.
    public static func leafHash(of event: RecordedEvent, scratch: inout [UInt8]) -> MerkleHash {
        let f = event.fields
        let fields = (f.stream, f.type, f.actor, f.correlation, f.causation, f.key, f.payload)
        let variable = Int(fields.0.count) + Int(fields.1.count) + Int(fields.2.count) + Int(fields.3.count)
            + Int(fields.4.count) + Int(fields.5.count) + Int(fields.6.count)
        // 0x00 (the leaf prefix), then the canonical bytes: 27 fixed, 7 lengths, the fields.
        let size = 1 + 27 + 7 * 4 + variable
        if scratch.count < size { scratch = [UInt8](repeating: 0, count: Swift.max(size, 2 * scratch.count)) }
        return scratch.withUnsafeMutableBytes { out in
            out[0] = 0
            out[1] = layoutVersion
            out.storeBytes(of: event.position.littleEndian, toByteOffset: 2, as: UInt64.self)
            out.storeBytes(of: event.streamVersion.littleEndian, toByteOffset: 10, as: UInt64.self)
            out.storeBytes(of: event.schemaVersion.littleEndian, toByteOffset: 18, as: UInt16.self)
            out.storeBytes(of: event.recordedAt.littleEndian, toByteOffset: 20, as: Int64.self)
            var at = 28
            func field(_ range: FieldRange) {
                out.storeBytes(of: UInt32(range.count).littleEndian, toByteOffset: at, as: UInt32.self)
                at += 4
                event.storage.withBytes(range) { bytes in
                    guard let base = bytes.baseAddress, bytes.count > 0 else { return }
                    (out.baseAddress! + at).copyMemory(from: base, byteCount: bytes.count)
                }
                at += Int(range.count)
            }
            field(fields.0)
            field(fields.1)
            field(fields.2)
            field(fields.3)
            field(fields.4)
            field(fields.5)
            field(fields.6)
            return MerkleHash(sha256Of: UnsafeRawBufferPointer(rebasing: out[0..<size]))
        }
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
