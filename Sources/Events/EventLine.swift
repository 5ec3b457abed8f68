public import EventLog

/// An event read from an export line, ready to append to another log. Position and stream
/// version are the source log's and are reassigned on append; everything else is kept.
public struct ImportedEvent: Sendable, Hashable {
    public var stream: String
    /// Type, schema version, recorded-at, actor, correlation and causation ids and the
    /// payload (re-encoded from `data`, or the opaque bytes as they were).
    public var event: ProposedEvent
    /// The key of the append that wrote the event in the source log.
    public var idempotencyKey: String?
    /// Where the event was in the source log, when the line says.
    public var sourcePosition: LogPosition?
    /// Its stream version in the source log, when the line says (`replay check-proof`
    /// rebuilds the event's canonical bytes from it).
    public var sourceVersion: UInt64?

    public init(stream: String, event: ProposedEvent, idempotencyKey: String? = nil, sourcePosition: LogPosition? = nil, sourceVersion: UInt64? = nil) {
        self.stream = stream
        self.event = event
        self.idempotencyKey = idempotencyKey
        self.sourcePosition = sourcePosition
        self.sourceVersion = sourceVersion
    }
}

/// The one-line JSON form of a stored event, shared by `replay inspect`, `replay export
/// --format jsonl`, `replay import` and the audit endpoint, so what one prints the other
/// reads back. Keys, in this order: position, stream, version, type, schema_version,
/// recorded_at (ISO 8601 UTC, µs), actor, correlation_id, causation_id, idempotency_key
/// (only when the append had one), data (the event's fields; null for an event this build
/// cannot read, which then carries `opaque: {reason, payload_base64}`).
public enum EventLine {
    public static let keys = [
        "position", "stream", "version", "type", "schema_version", "recorded_at", "actor",
        "correlation_id", "causation_id", "idempotency_key", "data", "opaque",
    ]
    /// Room for the largest payload in base64 plus the envelope.
    public static let maxLineBytes = 2 * EventLimits.maxPayloadBytes + (64 << 10)

    /// The line's object, for renderings other than JSON lines (CSV, the audit endpoint).
    public static func object(_ event: RecordedEvent) -> JSONValue.Object {
        var o = JSONValue.Object()
        o["position"] = .integer(Int64(bitPattern: event.position))
        o["stream"] = .string(event.stream)
        o["version"] = .integer(Int64(bitPattern: event.streamVersion))
        o["type"] = .string(event.type)
        o["schema_version"] = .integer(Int64(event.schemaVersion))
        o["recorded_at"] = .string(EventTime.iso8601(micros: event.recordedAt))
        o["actor"] = .string(event.actor)
        o["correlation_id"] = .string(event.correlationID)
        o["causation_id"] = .string(event.causationID)
        o["idempotency_key"] = event.idempotencyKey.map { .string($0) }
        switch event.decoded() {
        case .known(let domain):
            o["data"] = .object(domain.jsonData)
        case .opaque(let opaque):
            o["data"] = .null
            o["opaque"] = ["reason": .string(opaque.reason.description), "payload_base64": .string(Base64.encode(opaque.payload))]
        }
        return o
    }

    /// The event as one line of JSON, without the newline.
    public static func render(_ event: RecordedEvent) -> String {
        JSONValue.object(object(event)).serialized()
    }

    /// Appends the event's line and a newline to `bytes`: the bytes `object(event)` would
    /// serialize to, written field by field without building the object, since export writes
    /// millions of these and the tree of members was most of its cost. `EventJSONTests`
    /// checks the two agree.
    public static func render(_ event: RecordedEvent, into bytes: inout [UInt8]) {
        JSONText.appendASCII("{\"position\":", to: &bytes)
        JSONText.appendInteger(Int64(bitPattern: event.position), to: &bytes)
        JSONText.appendASCII(",\"stream\":", to: &bytes)
        JSONText.appendString(event.stream, to: &bytes)
        JSONText.appendASCII(",\"version\":", to: &bytes)
        JSONText.appendInteger(Int64(bitPattern: event.streamVersion), to: &bytes)
        JSONText.appendASCII(",\"type\":", to: &bytes)
        JSONText.appendString(event.type, to: &bytes)
        JSONText.appendASCII(",\"schema_version\":", to: &bytes)
        JSONText.appendInteger(Int64(event.schemaVersion), to: &bytes)
        JSONText.appendASCII(",\"recorded_at\":\"", to: &bytes)
        EventTime.appendISO8601(micros: event.recordedAt, to: &bytes)
        JSONText.appendASCII("\",\"actor\":", to: &bytes)
        JSONText.appendString(event.actor, to: &bytes)
        JSONText.appendASCII(",\"correlation_id\":", to: &bytes)
        JSONText.appendString(event.correlationID, to: &bytes)
        JSONText.appendASCII(",\"causation_id\":", to: &bytes)
        JSONText.appendString(event.causationID, to: &bytes)
        if let key = event.idempotencyKey {
            JSONText.appendASCII(",\"idempotency_key\":", to: &bytes)
            JSONText.appendString(key, to: &bytes)
        }
        switch event.decoded() {
        case .known(let domain):
            JSONText.appendASCII(",\"data\":", to: &bytes)
            domain.writeJSONData(to: &bytes)
        case .opaque(let opaque):
            JSONText.appendASCII(",\"data\":null,\"opaque\":", to: &bytes)
            writeOpaque(opaque, to: &bytes)
        }
        JSONText.appendASCII("}\n", to: &bytes)
    }

    /// `{"reason":…,"payload_base64":…}`, the `opaque` member of a line.
    static func writeOpaque(_ opaque: OpaqueEvent, to bytes: inout [UInt8]) {
        JSONText.appendASCII("{\"reason\":", to: &bytes)
        JSONText.appendString(opaque.reason.description, to: &bytes)
        JSONText.appendASCII(",\"payload_base64\":", to: &bytes)
        JSONText.appendString(Base64.encode(opaque.payload), to: &bytes)
        bytes.append(UInt8(ascii: "}"))
    }

    /// Appends the event as one CSV row (RFC 4180, CRLF), with the columns of `keys`: the
    /// envelope fields as text, `data` and `opaque` as JSON text, absent fields empty. Written
    /// straight into `bytes`, like `render`; `scratch` holds the JSON of `data` on its way in
    /// (pass the same one every time, so it is allocated once).
    public static func renderCSV(_ event: RecordedEvent, into bytes: inout [UInt8], scratch: inout [UInt8]) {
        JSONText.appendInteger(Int64(bitPattern: event.position), to: &bytes)
        bytes.append(UInt8(ascii: ","))
        CSVText.appendField(event.stream, to: &bytes)
        bytes.append(UInt8(ascii: ","))
        JSONText.appendInteger(Int64(bitPattern: event.streamVersion), to: &bytes)
        bytes.append(UInt8(ascii: ","))
        CSVText.appendField(event.type, to: &bytes)
        bytes.append(UInt8(ascii: ","))
        JSONText.appendInteger(Int64(event.schemaVersion), to: &bytes)
        bytes.append(UInt8(ascii: ","))
        EventTime.appendISO8601(micros: event.recordedAt, to: &bytes)
        bytes.append(UInt8(ascii: ","))
        CSVText.appendField(event.actor, to: &bytes)
        bytes.append(UInt8(ascii: ","))
        CSVText.appendField(event.correlationID, to: &bytes)
        bytes.append(UInt8(ascii: ","))
        CSVText.appendField(event.causationID, to: &bytes)
        bytes.append(UInt8(ascii: ","))
        if let key = event.idempotencyKey { CSVText.appendField(key, to: &bytes) }
        bytes.append(UInt8(ascii: ","))
        scratch.removeAll(keepingCapacity: true)
        switch event.decoded() {
        case .known(let domain):
            domain.writeJSONData(to: &scratch)
            CSVText.appendField(scratch, to: &bytes)
            bytes.append(UInt8(ascii: ","))
        case .opaque(let opaque):
            JSONText.appendASCII("null,", to: &bytes)
            writeOpaque(opaque, to: &scratch)
            CSVText.appendField(scratch, to: &bytes)
        }
        bytes.append(0x0D)
        bytes.append(0x0A)
    }

    public static func parse(_ line: String) throws -> ImportedEvent {
        var line = line
        return try line.withUTF8 { try parse(UnsafeRawBufferPointer($0)) }
    }

    public static func parse(_ line: [UInt8]) throws -> ImportedEvent {
        try line.withUnsafeBytes { try parse($0) }
    }

    /// Parses one line (without its newline) and checks it as strictly as the log will:
    /// JSON syntax, unknown and repeated keys, field types and bounds, the stream against
    /// the event's data, a catalogue event's data through `DomainEvent.parse`. Reads the
    /// envelope member by member without building a tree (import parses millions of
    /// lines). Throws `DomainError`.
    public static func parse(_ line: UnsafeRawBufferPointer) throws -> ImportedEvent {
        var p = try JSONParser(scanning: line, maxBytes: maxLineBytes)
        p.skipWhitespace()
        guard p.peek == UInt8(ascii: "{") else {
            let value = try p.parseValue(depth: 0)
            try p.finish()
            throw DomainError(.invalidField, "an event line must be a JSON object, got \(value.kindName)")
        }
        var fields = LineFields()
        var slot = -1
        if try p.beginObject() {
            repeat {
                let keyStart = p.index
                let key = try p.memberKey()
                // Lines usually hold the keys in their canonical order: try the next one first.
                if slot + 1 < keyBytes.count && key.equals(keyBytes[slot + 1]) {
                    slot += 1
                } else if let found = keyBytes.firstIndex(where: { key.equals($0) }) {
                    slot = found
                } else {
                    let name = key.string
                    throw DomainError(.invalidField, "unknown key \(FieldRules.quoted(name)) in an event line; its keys are \(keys.joined(separator: ", "))", field: name)
                }
                guard fields.seen & (1 << slot) == 0 else { throw p.error("duplicate key \"\(keys[slot])\"", at: keyStart) }
                fields.seen |= 1 << slot
                try fields.read(slot, from: &p)
            } while try p.nextMember()
        }
        try p.finish()
        return try fields.imported()
    }

    static let keyBytes = keys.map { Array($0.utf8) }
    static let typeNames = EventType.allCases.map { ($0, Array($0.rawValue.utf8)) }

    /// An event this build could not read when it was exported: its bytes go back as they were.
    static func opaqueEvent(
        _ value: JSONValue?, type: String, schemaVersion: UInt16?, stream: String,
        actor: String, correlation: String, causation: String, recordedAt: Int64
    ) throws -> ProposedEvent {
        guard let value, case .object(let opaque) = value else {
            throw DomainError.invalid("opaque", "is required when data is null, as {\"reason\": ..., \"payload_base64\": ...}")
        }
        for member in opaque where member.key != "reason" && member.key != "payload_base64" {
            throw DomainError.invalid("opaque", "has unknown key \(FieldRules.quoted(member.key)); its keys are reason, payload_base64")
        }
        if let reason = opaque["reason"], reason.stringValue == nil {
            throw DomainError.invalid("opaque.reason", "must be a string, got \(reason.kindName)")
        }
        guard let text = opaque["payload_base64"]?.stringValue else {
            throw DomainError.invalid("opaque.payload_base64", "must be a string of base64")
        }
        guard let payload = Base64.decode(text) else {
            throw DomainError.invalid("opaque.payload_base64", "is not canonical base64 (A-Z a-z 0-9 + /, padded with =)")
        }
        guard payload.count <= EventLimits.maxPayloadBytes else {
            throw DomainError.invalid("opaque.payload_base64", "holds \(payload.count) bytes; the bound is \(EventLimits.maxPayloadBytes)")
        }
        guard let schemaVersion else { throw DomainError.invalid("schema_version", "is required for an opaque event") }
        guard !type.isEmpty, type.utf8.allSatisfy(isTypeNameByte) else {
            throw DomainError.invalid("type", "may hold only letters, digits, '_' and '.', got \(FieldRules.quoted(type))")
        }
        try validateStreamName(stream)
        return ProposedEvent(type: type, schemaVersion: schemaVersion, recordedAt: recordedAt, actor: actor,
                             correlationID: correlation, causationID: causation, payload: payload)
    }

    private static func isTypeNameByte(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b | 0x20 >= 0x61 && b | 0x20 <= 0x7A) || b == 0x5F || b == 0x2E
    }

    /// The log's stream-name rule (`category-id`), checked here so that a bad line is
    /// reported by its number instead of failing a whole append.
    static func validateStreamName(_ name: String) throws {
        let bytes = Array(name.utf8)
        guard let dash = bytes.firstIndex(of: UInt8(ascii: "-")), dash > 0, dash < bytes.count - 1,
              bytes[..<dash].allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F }),
              bytes[(dash + 1)...].allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        else {
            throw DomainError.invalid("stream", "must be 'category-id' (category of a-z 0-9 _, id of printable ASCII without spaces), got \(FieldRules.quoted(name))")
        }
    }
}

/// The envelope of a line as it is read, then checked as a whole.
private struct LineFields {
    var seen: UInt16 = 0
    var stream: String?
    var type: String?
    var knownType: EventType?
    var position: Int64?
    var version: Int64?
    var schemaVersion: Int64?
    var recordedAt: Int64?
    var actor = ""
    var correlation = ""
    var causation = ""
    var key: String?
    var data: JSONValue?
    var opaque: JSONValue?

    mutating func read(_ slot: Int, from p: inout JSONParser) throws {
        switch slot {
        case 0: position = try Self.integer(&p, "position", in: 1...Int64.max)
        case 1: stream = try Self.text(&p, "stream")?.string
        case 2: version = try Self.integer(&p, "version", in: 0...Int64.max)
        case 3:
            guard let text = try Self.text(&p, "type") else { return }
            knownType = EventLine.typeNames.first { text.equals($0.1) }?.0
            type = knownType?.rawValue ?? text.string
        case 4: schemaVersion = try Self.integer(&p, "schema_version", in: 1...Int64(UInt16.max))
        case 5:
            switch try Self.text(&p, "recorded_at") {
            case .raw(let bytes)?: recordedAt = try EventTime.parseISO8601(bytes, field: "recorded_at", allowDateOnly: false)
            case .decoded(let text)?: recordedAt = try EventTime.parseISO8601(text, field: "recorded_at", allowDateOnly: false)
            case nil: recordedAt = nil
            }
        case 6: actor = try Self.text(&p, "actor")?.string ?? ""
        case 7: correlation = try Self.text(&p, "correlation_id")?.string ?? ""
        case 8: causation = try Self.text(&p, "causation_id")?.string ?? ""
        case 9: key = try Self.text(&p, "idempotency_key")?.string
        case 10: data = try p.parseValue(depth: 1)
        default: opaque = try p.parseValue(depth: 1)
        }
    }

    /// A string, or nil for null; another kind is refused by name.
    static func text(_ p: inout JSONParser, _ field: String) throws -> JSONParser.Text? {
        if p.peek == UInt8(ascii: "\"") { return try p.stringText() }
        let value = try p.parseValue(depth: 1)
        if value.isNull { return nil }
        throw DomainError.invalid(field, "must be a string, got \(value.kindName)")
    }

    static func integer(_ p: inout JSONParser, _ field: String, in range: ClosedRange<Int64>) throws -> Int64? {
        let value = try p.parseValue(depth: 1)
        if value.isNull { return nil }
        guard case .integer(let i) = value, range.contains(i) else {
            throw DomainError.invalid(field, "must be an integer in \(range.lowerBound)...\(range.upperBound), got \(value)")
        }
        return i
    }

    static func bounded(_ value: String, _ field: String, max: Int, required: Bool = false) throws {
        let count = value.utf8.count
        guard count <= max, !required || count > 0 else {
            throw DomainError.invalid(field, "must be \(required ? 1 : 0)...\(max) bytes, got \(count)")
        }
    }

    func imported() throws -> ImportedEvent {
        guard let stream else { throw DomainError.invalid("stream", "is missing") }
        try Self.bounded(stream, "stream", max: EventLimits.maxStreamBytes, required: true)
        guard let type else { throw DomainError.invalid("type", "is missing") }
        try Self.bounded(type, "type", max: EventLimits.maxTypeBytes, required: true)
        guard let recordedAt else { throw DomainError.invalid("recorded_at", "is missing") }
        try Self.bounded(actor, "actor", max: EventLimits.maxActorBytes)
        try Self.bounded(correlation, "correlation_id", max: EventLimits.maxCorrelationBytes)
        try Self.bounded(causation, "causation_id", max: EventLimits.maxCausationBytes)
        if let key { try Self.bounded(key, "idempotency_key", max: EventLimits.maxIdempotencyKeyBytes, required: true) }
        guard let data else { throw DomainError.invalid("data", "is missing (null for an opaque event)") }

        let proposed: ProposedEvent
        switch data {
        case .object:
            if let opaque, !opaque.isNull { throw DomainError.invalid("opaque", "must be absent when data is given") }
            guard let knownType else {
                throw DomainError(.unknownType, "type \(FieldRules.quoted(type)) is not in this build's catalogue; an event of another type needs data null and an opaque payload_base64", field: "type")
            }
            if let schemaVersion, schemaVersion != Int64(EventType.currentSchemaVersion) {
                throw DomainError(.unsupportedVersion, "data of \(type) schema \(schemaVersion) is not readable by this build (it reads \(EventType.currentSchemaVersion))", field: "schema_version")
            }
            let event: DomainEvent
            do {
                event = try DomainEvent.parse(type: knownType, data: data)
            } catch let error as DomainError {
                var located = error
                if let field = error.field, error.message.hasPrefix(field) {
                    located.message = "data." + error.message
                    located.field = "data." + field
                }
                throw located
            }
            guard Self.stream(stream, holds: event) else {
                throw DomainError.invalid("stream", "is \(FieldRules.quoted(stream)) but the event's data puts it in \(FieldRules.quoted(event.stream))")
            }
            proposed = event.proposed(actor: actor, correlationID: correlation, causationID: causation, recordedAt: recordedAt)
        case .null:
            proposed = try EventLine.opaqueEvent(opaque, type: type, schemaVersion: schemaVersion.map { UInt16($0) }, stream: stream,
                                                 actor: actor, correlation: correlation, causation: causation, recordedAt: recordedAt)
        default:
            throw DomainError.invalid("data", "must be an object, or null for an opaque event; got \(data.kindName)")
        }
        return ImportedEvent(stream: stream, event: proposed, idempotencyKey: key, sourcePosition: position.map { LogPosition($0) },
                             sourceVersion: version.map { UInt64($0) })
    }

    /// `stream == event.stream`, without building the event's stream name.
    static func stream(_ stream: String, holds event: DomainEvent) -> Bool {
        var (name, category, id) = (stream, event.type.category, event.streamID)
        return name.withUTF8 { n in
            category.withUTF8 { c in
                id.withUTF8 { i in
                    n.count == c.count + 1 + i.count && n[c.count] == UInt8(ascii: "-")
                        && bytesEqual(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: n[..<c.count])), UnsafeRawBufferPointer(c))
                        && bytesEqual(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: n[(c.count + 1)...])), UnsafeRawBufferPointer(i))
                }
            }
        }
    }
}
