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
public struct RecordedEvent: Sendable, Hashable {
    public var position: LogPosition
    public var stream: String
    public var streamVersion: UInt64
    public var type: String
    public var schemaVersion: UInt16
    /// Microseconds since 1970-01-01 UTC.
    public var recordedAt: Int64
    public var actor: String
    public var correlationID: String
    public var causationID: String
    /// The idempotency key of the append that wrote this event, if it had one.
    public var idempotencyKey: String?
    public var payload: [UInt8]

    public init(
        position: LogPosition, stream: String, streamVersion: UInt64, type: String,
        schemaVersion: UInt16, recordedAt: Int64, actor: String, correlationID: String,
        causationID: String, idempotencyKey: String?, payload: [UInt8]
    ) {
        self.position = position
        self.stream = stream
        self.streamVersion = streamVersion
        self.type = type
        self.schemaVersion = schemaVersion
        self.recordedAt = recordedAt
        self.actor = actor
        self.correlationID = correlationID
        self.causationID = causationID
        self.idempotencyKey = idempotencyKey
        self.payload = payload
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
