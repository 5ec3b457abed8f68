/// A position in the log: 1, 2, 3 … gap-free in commit order. 0 means "before the first event".
public typealias LogPosition = UInt64

/// What an append expects of its stream. A mismatch writes nothing.
public enum ExpectedVersion: Sendable, Hashable, CustomStringConvertible {
    /// Append whatever the stream's version.
    case any
    /// The stream must not exist yet.
    case noStream
    /// The stream's last event must have exactly this version (versions start at 0).
    case exact(UInt64)

    public var description: String {
        switch self {
        case .any: "any"
        case .noStream: "no stream"
        case .exact(let version): "version \(version)"
        }
    }
}

/// An event as an appender proposes it; the log assigns position and stream version.
public struct ProposedEvent: Sendable, Hashable {
    public var type: String
    public var schemaVersion: UInt16
    /// Microseconds since 1970-01-01 UTC. `nil` lets the log stamp the commit time.
    public var recordedAt: Int64?
    public var actor: String
    public var correlationID: String
    public var causationID: String
    public var payload: [UInt8]

    public init(
        type: String,
        schemaVersion: UInt16 = 1,
        recordedAt: Int64? = nil,
        actor: String = "",
        correlationID: String = "",
        causationID: String = "",
        payload: [UInt8]
    ) {
        self.type = type
        self.schemaVersion = schemaVersion
        self.recordedAt = recordedAt
        self.actor = actor
        self.correlationID = correlationID
        self.causationID = causationID
        self.payload = payload
    }
}

/// Events for one stream, with the version the stream must be at.
public struct StreamAppend: Sendable, Hashable {
    public var stream: String
    public var expected: ExpectedVersion
    public var events: [ProposedEvent]

    public init(stream: String, expected: ExpectedVersion = .any, events: [ProposedEvent]) {
        self.stream = stream
        self.expected = expected
        self.events = events
    }
}

/// An event as stored: everything the appender gave plus where the log put it.
///
/// Events read from the log are views into their batch's decoded bytes, which every event
/// of the batch shares: decoding checks every envelope and records where each field is,
/// and strings and payloads are built only when a caller asks for them. A read that
/// looks at a few fields of millions of events allocates per batch, not per field.
public struct RecordedEvent: Sendable, Hashable, CustomStringConvertible {
    public let position: LogPosition
    public let streamVersion: UInt64
    /// Microseconds since 1970-01-01 UTC.
    public let recordedAt: Int64
    public let schemaVersion: UInt16
    let storage: EnvelopeStorage
    let fields: EnvelopeFields

    init(position: LogPosition, streamVersion: UInt64, recordedAt: Int64, schemaVersion: UInt16, storage: EnvelopeStorage, fields: EnvelopeFields) {
        self.position = position
        self.streamVersion = streamVersion
        self.recordedAt = recordedAt
        self.schemaVersion = schemaVersion
        self.storage = storage
        self.fields = fields
    }

    public init(
        position: LogPosition, stream: String, streamVersion: UInt64, type: String,
        schemaVersion: UInt16, recordedAt: Int64, actor: String, correlationID: String,
        causationID: String, idempotencyKey: String?, payload: [UInt8]
    ) {
        var bytes: [UInt8] = []
        func put(_ value: some Collection<UInt8>) -> FieldRange {
            let range = FieldRange(start: UInt32(bytes.count), count: UInt32(value.count))
            bytes.append(contentsOf: value)
            return range
        }
        let fields = EnvelopeFields(
            stream: put(stream.utf8), type: put(type.utf8), actor: put(actor.utf8),
            correlation: put(correlationID.utf8), causation: put(causationID.utf8),
            key: put((idempotencyKey ?? "").utf8), payload: put(payload)
        )
        self.init(position: position, streamVersion: streamVersion, recordedAt: recordedAt, schemaVersion: schemaVersion,
                  storage: EnvelopeStorage(bytes), fields: fields)
    }

    public var stream: String { storage.string(fields.stream) }
    public var type: String { storage.string(fields.type) }
    public var actor: String { storage.string(fields.actor) }
    public var correlationID: String { storage.string(fields.correlation) }
    public var causationID: String { storage.string(fields.causation) }
    /// The idempotency key of the append that wrote this event, if it had one.
    public var idempotencyKey: String? { fields.key.count == 0 ? nil : storage.string(fields.key) }
    public var payload: [UInt8] { storage.withBytes(fields.payload) { Array($0) } }
    public var payloadCount: Int { Int(fields.payload.count) }

    /// The payload's bytes without copying them, for folds over many events.
    public func withPayload<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try storage.withBytes(fields.payload, body)
    }

    /// Compares the type without building a String.
    public func hasType(_ name: String) -> Bool { storage.equals(fields.type, name) }

    /// The type's UTF-8 bytes without building a String, for lookups in folds.
    public func withTypeBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try storage.withBytes(fields.type, body)
    }

    /// Compares the stream without building a String.
    public func isInStream(_ name: String) -> Bool { storage.equals(fields.stream, name) }

    func sameStream(as other: RecordedEvent) -> Bool {
        storage.withBytes(fields.stream) { a in other.storage.withBytes(other.fields.stream) { b in a.elementsEqual(b) } }
    }

    public static func == (lhs: RecordedEvent, rhs: RecordedEvent) -> Bool {
        guard lhs.position == rhs.position, lhs.streamVersion == rhs.streamVersion, lhs.recordedAt == rhs.recordedAt,
              lhs.schemaVersion == rhs.schemaVersion else { return false }
        for (a, b) in zip(lhs.fields.all, rhs.fields.all) {
            let same = lhs.storage.withBytes(a) { x in rhs.storage.withBytes(b) { y in x.elementsEqual(y) } }
            if !same { return false }
        }
        return true
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(position)
        hasher.combine(streamVersion)
        hasher.combine(recordedAt)
        for field in fields.all { storage.withBytes(field) { hasher.combine(bytes: $0) } }
    }

    public var description: String {
        "RecordedEvent(position: \(position), stream: \(stream), version: \(streamVersion), type: \(type), "
            + "schema: \(schemaVersion), recordedAt: \(recordedAt), actor: \(actor), payload: \(payloadCount) bytes)"
    }
}

/// Where a field's bytes are in an `EnvelopeStorage`.
struct FieldRange: Sendable, Hashable {
    var start: UInt32
    var count: UInt32
}

struct EnvelopeFields: Sendable, Hashable {
    var stream: FieldRange
    var type: FieldRange
    var actor: FieldRange
    var correlation: FieldRange
    var causation: FieldRange
    var key: FieldRange
    var payload: FieldRange

    var all: [FieldRange] { [stream, type, actor, correlation, causation, key, payload] }

    static let empty = EnvelopeFields(
        stream: FieldRange(start: 0, count: 0), type: FieldRange(start: 0, count: 0), actor: FieldRange(start: 0, count: 0),
        correlation: FieldRange(start: 0, count: 0), causation: FieldRange(start: 0, count: 0), key: FieldRange(start: 0, count: 0),
        payload: FieldRange(start: 0, count: 0)
    )
}

/// The decoded bytes of one batch (or one event), immutable and shared by its events.
final class EnvelopeStorage: Sendable {
    let bytes: [UInt8]

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    func withBytes<Result>(_ range: FieldRange, _ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try bytes.withUnsafeBytes { all in
            try body(UnsafeRawBufferPointer(rebasing: all[Int(range.start)..<Int(range.start) + Int(range.count)]))
        }
    }

    func string(_ range: FieldRange) -> String {
        withBytes(range) { String(decoding: $0, as: UTF8.self) }
    }

    func equals(_ range: FieldRange, _ text: String) -> Bool {
        var text = text
        return text.withUTF8 { utf8 in withBytes(range) { $0.elementsEqual(UnsafeRawBufferPointer(utf8)) } }
    }
}

/// Where one append landed.
public struct AppendResult: Sendable, Hashable {
    /// Positions of the events written, in order; contiguous.
    public var positions: ClosedRange<LogPosition>
    /// For each stream appended to, the version of its last event after this append.
    public var streamVersions: [String: UInt64]
    /// True when the idempotency key had been seen: this is the first append's result and
    /// nothing new was written.
    public var deduplicated: Bool

    public init(positions: ClosedRange<LogPosition>, streamVersions: [String: UInt64], deduplicated: Bool) {
        self.positions = positions
        self.streamVersions = streamVersions
        self.deduplicated = deduplicated
    }
}

/// The last committed position and the chain hash that covers everything up to it.
public struct LogHead: Sendable, Hashable {
    public var position: LogPosition
    /// SHA-256 chain hash of the batch ending at `position` (32 zero bytes for an empty log).
    public var chainHash: [UInt8]

    public init(position: LogPosition, chainHash: [UInt8]) {
        self.position = position
        self.chainHash = chainHash
    }

    public var chainHashHex: String { hexString(chainHash) }
}

/// A scan filter: types and a recorded-at range. Batches whose time range misses the
/// filter are skipped without decompressing.
public struct EventFilter: Sendable, Hashable {
    public var types: Set<String>?
    /// Inclusive lower bound, microseconds since the epoch.
    public var since: Int64?
    /// Exclusive upper bound, microseconds since the epoch.
    public var until: Int64?

    public init(types: Set<String>? = nil, since: Int64? = nil, until: Int64? = nil) {
        self.types = types
        self.since = since
        self.until = until
    }

    func matches(_ event: RecordedEvent) -> Bool {
        if let since, event.recordedAt < since { return false }
        if let until, event.recordedAt >= until { return false }
        if let types, !types.contains(event.type) { return false }
        return true
    }

    func mayMatchBatch(minRecordedAt: Int64, maxRecordedAt: Int64) -> Bool {
        if let since, maxRecordedAt < since { return false }
        if let until, minRecordedAt >= until { return false }
        return true
    }
}

func hexString(_ bytes: some Sequence<UInt8>) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    for byte in bytes {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 0x0F)])
    }
    return String(decoding: out, as: UTF8.self)
}

/// Parses 64 hex digits (either case) into 32 bytes; nil for anything else.
public func parseChainHash(hex: String) -> [UInt8]? {
    let utf8 = Array(hex.utf8)
    guard utf8.count == 64 else { return nil }
    func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
    var out = [UInt8]()
    out.reserveCapacity(32)
    var i = 0
    while i < 64 {
        guard let hi = nibble(utf8[i]), let lo = nibble(utf8[i + 1]) else { return nil }
        out.append(hi << 4 | lo)
        i += 2
    }
    return out
}
