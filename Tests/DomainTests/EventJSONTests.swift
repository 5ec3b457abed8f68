import EventLog
import Events
import TallyTestSupport
import Testing
@testable import replay

/// The JSON parser and serializer, the `data` object of every type, ISO 8601 times and the
/// event line: strict parsing with byte offsets, no trap on any input, exact round trips.
@Suite struct EventJSONTests {
    static func parse(_ text: String, maxBytes: Int = 1 << 20) throws -> JSONValue {
        try JSONParser.parse(text, maxBytes: maxBytes)
    }

    static func malformed(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> DomainError? {
        let error = #expect(throws: DomainError.self, "\(text)", sourceLocation: sourceLocation) { try Self.parse(text) }
        #expect(error?.code == .malformedJSON, sourceLocation: sourceLocation)
        #expect(error?.message.contains(" at byte ") == true, "\(String(describing: error))", sourceLocation: sourceLocation)
        return error
    }

    // MARK: - Parser

    @Test func validDocumentsParse() throws {
        let cases: [(String, JSONValue)] = [
            ("null", .null), ("true", true), (" false\n", false), ("0", 0), ("-0", 0), ("42", 42),
            ("9223372036854775807", .integer(.max)), ("-9223372036854775808", .integer(.min)),
            ("9223372036854775808", .number(9_223_372_036_854_775_808)), ("1.5", 1.5), ("-0.25", -0.25), ("1e3", 1000.0),
            ("1E+2", 100.0), ("2.5e-3", 0.0025), ("0.1", 0.1), ("123456789012345678901234567890", .number(1.2345678901234568e29)),
            ("\"\"", ""), ("\"a b\"", "a b"), ("[]", []), ("{}", [:]), ("[1,[2,[3]],{}]", [1, [2, [3]], [:]]),
            (" { \"b\" : 1 , \"a\" : [ true , null ] } ", ["b": 1, "a": [true, nil]]),
            ("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\u{8}\u{c}\n\r\t"),
            ("\"\\u00e9\\u00E9 caf\u{e9} \\ud83d\\ude00 \u{1F600}\"", "éé café 😀 😀"),
            ("\"\\u0000\"", "\u{0}"),
        ]
        for (text, expected) in cases {
            #expect(try Self.parse(text) == expected, "\(text)")
        }
        let object = try #require(try Self.parse("{\"z\":1,\"a\":2,\"m\":3}").objectValue)
        #expect(object.keys == ["z", "a", "m"])
    }

    @Test func invalidDocumentsAreRefusedWithTheirOffset() {
        let invalid = [
            "", " ", "nul", "nulls", "True", "[1,]", "[1 2]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "{\"a\":}", "[", "]", "{",
            "\"open", "'single'", "01", "-", "+1", "1.", ".5", "1e", "1e+", "NaN", "Infinity", "-Infinity", "0x10", "1e400",
            "-1e400", "\"tab\there\"", "\"new\nline\"", "\"\\x\"", "\"\\u12\"", "\"\\u12G4\"", "\"\\ud800\"", "\"\\udc00\"",
            "\"\\ud800\\u0041\"", "{\"a\":1,\"a\":2}", "[1]x", "{} {}", "[,1]", "[1,,2]",
        ]
        for text in invalid { _ = Self.malformed(text) }
        #expect(Self.malformed("{\"a\":1,}")?.message.hasSuffix("at byte 7") == true)
        #expect(Self.malformed("[1, 2, x]")?.message.hasSuffix("at byte 7") == true)
        #expect(Self.malformed("{\"k\":1,\"k\":2}")?.message.contains("duplicate key \"k\"") == true)
    }

    @Test func invalidUTF8IsRefused() throws {
        let bad: [[UInt8]] = [[0xFF], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xE2, 0x82], [0xF4, 0x90, 0x80, 0x80], [0x80], [0xC3, 0x28]]
        for sequence in bad {
            let document = [UInt8(ascii: "\"")] + sequence + [UInt8(ascii: "\"")]
            let error = #expect(throws: DomainError.self, "\(sequence)") { try JSONParser.parse(document, maxBytes: 100) }
            #expect(error?.message.hasSuffix("at byte 1") == true, "\(String(describing: error))")
        }
        #expect(try JSONParser.parse([0x22, 0xF0, 0x9F, 0x98, 0x80, 0x22], maxBytes: 100) == "😀")
    }

    @Test func depthAndSizeAreBounded() throws {
        let deepest = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect(throws: Never.self) { try Self.parse(deepest) }
        #expect(Self.malformed(String(repeating: "[", count: 65) + String(repeating: "]", count: 65))?.message.contains("deeper than 64") == true)
        _ = Self.malformed(String(repeating: "{\"a\":", count: 100_000))
        #expect(throws: Never.self) { try JSONParser.parse("[[1]]", maxBytes: 10, maxDepth: 2) }
        #expect(throws: DomainError.self) { try JSONParser.parse("[[[1]]]", maxBytes: 10, maxDepth: 2) }
        #expect(throws: DomainError.self) { try JSONParser.parse("[1,2,3]", maxBytes: 6) }
        #expect(throws: Never.self) { try JSONParser.parse("[1,2,3]", maxBytes: 7) }
    }

    @Test func randomBytesNeverTrap() {
        var rng = SplitMix64(seed: 0x150)
        let alphabet = Array("{}[]\":,.-+eE0123456789 \\ntrufalsu\u{e9}".utf8) + [0x00, 0xFF, 0xC3, 0x0A]
        let valid = Array(#"{"a":[1,-2.5e3,"x\u00e9\n",true,null,{"b":{}}],"c":"d"}"#.utf8)
        var parsed = 0
        for round in 0..<40_000 {
            var bytes: [UInt8]
            if round % 2 == 0 {
                bytes = (0..<Int.random(in: 0...40, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }
            } else {
                bytes = valid
                for _ in 0..<Int.random(in: 1...3, using: &rng) {
                    let i = Int.random(in: 0..<bytes.count, using: &rng)
                    switch rng.next() % 3 {
                    case 0: bytes[i] = alphabet.randomElement(using: &rng)!
                    case 1: bytes.remove(at: i)
                    default: bytes.insert(alphabet.randomElement(using: &rng)!, at: i)
                    }
                }
            }
            do {
                let value = try JSONParser.parse(bytes, maxBytes: 1 << 10)
                parsed += 1
                #expect(try JSONParser.parse(value.serialized(), maxBytes: 1 << 12) == value)
            } catch let error as DomainError {
                #expect(error.code == .malformedJSON)
            } catch {
                Issue.record("not a DomainError: \(error)")
            }
        }
        #expect(parsed > 100)
    }

    // MARK: - Serializer

    @Test func serializerIsCompactStableAndEscapes() throws {
        let value: JSONValue = ["z": 1, "a": [1.5, -3, true, nil], "s": "q\"b\\s/\n\t\u{1}\u{1F}\u{7F}é😀", "e": [:], "n": 1e-7]
        let text = value.serialized()
        #expect(text == #"{"z":1,"a":[1.5,-3,true,null],"s":"q\"b\\s/\n\t\u0001\u001f"# + "\u{7F}é😀\",\"e\":{},\"n\":1e-07}")
        #expect(try Self.parse(text) == value)
        #expect(JSONValue.integer(Int64.min).serialized() == "-9223372036854775808")
        #expect(JSONValue.integer(10).serialized() == "10")
        #expect(JSONValue.number(2).serialized() == "2.0")
        #expect(JSONValue.number(.nan).serialized() == "null")
        var object = JSONValue.Object()
        object["b"] = 1
        object["a"] = 2
        object["b"] = 3
        object["gone"] = 4
        object["gone"] = nil
        #expect(JSONValue.object(object).serialized() == #"{"b":3,"a":2}"#)
    }

    @Test func doublesRoundTripExactly() throws {
        var rng = SplitMix64(seed: 0xD0B1E)
        for round in 0..<20_000 {
            let value = round % 2 == 0 ? Double(bitPattern: rng.next()) : Double.random(in: -1_000...1_000, using: &rng)
            guard value.isFinite else { continue }
            let back = try Self.parse(JSONValue.number(value).serialized())
            #expect(back.doubleValue?.bitPattern == value.bitPattern || (value == 0 && back.doubleValue == 0), "\(value)")
        }
    }

    // MARK: - Event data

    @Test(arguments: CatalogueSamples.events)
    func eventDataRoundTrips(_ event: DomainEvent) throws {
        let data = JSONValue.object(event.jsonData)
        #expect(try DomainEvent.parse(type: event.type.rawValue, data: data) == event)
        #expect(try DomainEvent.parse(type: event.type.rawValue, data: Self.parse(data.serialized())) == event)
        let names = DomainEvent.jsonFields(of: event.type)
        #expect(event.jsonData.keys == names.map(\.name).filter { event.jsonData[$0] != nil }, "catalogue order")
        #expect(names.filter { !$0.optional }.allSatisfy { event.jsonData[$0.name] != nil })
    }

    @Test func optionalFieldsAreOmittedWhenNil() throws {
        let queued = DomainEvent.cdnJobQueued(CdnJobQueued(jobID: "j", priority: .low, kind: "k"))
        #expect(JSONValue.object(queued.jsonData).serialized() == #"{"job_id":"j","priority":"low","kind":"k"}"#)
        let failed = DomainEvent.cdnJobFailed(CdnJobFailed(jobID: "j", priority: .high, kind: "k", durationMs: 3, error: "e", attempt: 2, willRetry: true))
        #expect(JSONValue.object(failed.jsonData).serialized()
            == #"{"job_id":"j","priority":"high","kind":"k","duration_ms":3,"error":"e","attempt":2,"will_retry":true}"#)
        let withNull: JSONValue = ["job_id": "j", "priority": "low", "kind": "k", "username": nil]
        #expect(try DomainEvent.parse(type: "CdnJobQueued", data: withNull) == queued)
        let mixedCase: JSONValue = ["job_id": "j", "priority": "low", "kind": "k", "username": "Fit.Bayann"]
        guard case .cdnJobQueued(let q) = try DomainEvent.parse(type: "CdnJobQueued", data: mixedCase) else { throw TestFailure("type") }
        #expect(q.username == "fit.bayann")
    }

    static func dataError(_ type: String, _ data: JSONValue, sourceLocation: SourceLocation = #_sourceLocation) -> DomainError? {
        #expect(throws: DomainError.self, sourceLocation: sourceLocation) { try DomainEvent.parse(type: type, data: data) }
    }

    @Test func badDataIsRefusedByFieldName() {
        let grant: [(String, JSONValue)] = [("user", "42"), ("amount", 5), ("reason", "r")]
        func with(_ key: String, _ value: JSONValue?) -> JSONValue {
            var o = JSONValue.Object(grant)
            o[key] = value
            return .object(o)
        }
        let unknown = Self.dataError("CreditsGranted", with("bonus", 1))
        #expect(unknown?.field == "bonus" && unknown?.message.contains("unknown field 'bonus'") == true, "\(String(describing: unknown))")
        let missing = Self.dataError("CreditsGranted", with("amount", nil))
        #expect(missing?.field == "amount" && missing?.message.contains("missing field amount") == true, "\(String(describing: missing))")
        let bothMissing = Self.dataError("CreditsGranted", ["reason": "r"])
        #expect(bothMissing?.message.contains("missing fields user, amount") == true)
        let cases: [(String, JSONValue, String)] = [
            ("amount", "5", "must be an integer, got a string"), ("amount", 5.5, "must be an integer"),
            ("amount", nil, "must be an integer, got null"), ("amount", 0, "must be in 1...1000000000"),
            ("user", 42, "must be a string, got a number"), ("reason", [:], "must be a string, got an object"),
        ]
        for (field, value, message) in cases {
            let error = Self.dataError("CreditsGranted", with(field, value))
            #expect(error?.code == .invalidField && error?.field == field, "\(field): \(String(describing: error))")
            #expect(error?.message.contains(message) == true, "\(String(describing: error))")
        }
        let vocabulary = Self.dataError("CdnJobQueued", ["job_id": "j", "priority": "urgent", "kind": "k"])
        #expect(vocabulary?.field == "priority" && vocabulary?.message.contains("critical, high, medium, low") == true)
        let boolean = Self.dataError("CreatorSearched", ["user": "1", "username": "a", "served_from": "cache", "duration_ms": 1, "found": 1])
        #expect(boolean?.field == "found")
        #expect(Self.dataError("NoSuchEvent", [:])?.code == .unknownType)
        #expect(Self.dataError("CreditsGranted", [1, 2])?.field == "data")
    }

    // MARK: - Time

    @Test func timesRenderAndParse() throws {
        #expect(EventTime.iso8601(micros: 0) == "1970-01-01T00:00:00.000000Z")
        #expect(EventTime.iso8601(micros: -1) == "1969-12-31T23:59:59.999999Z")
        #expect(EventTime.iso8601(micros: 1_795_615_387_123_456) == "2026-11-25T14:03:07.123456Z")
        #expect(EventTime.iso8601(micros: 951_782_400_000_000) == "2000-02-29T00:00:00.000000Z")
        #expect(EventTime.iso8601(micros: 253_402_300_799_999_999) == "9999-12-31T23:59:59.999999Z")
        #expect(EventTime.iso8601(micros: -62_135_596_800_000_000) == "0001-01-01T00:00:00.000000Z")
        let parsed: [(String, Int64)] = [
            ("2026-11-25T14:03:07.123456Z", 1_795_615_387_123_456), ("2026-11-25T14:03:07Z", 1_795_615_387_000_000),
            ("2026-11-25T14:03:07.5Z", 1_795_615_387_500_000), ("2026-11-25t14:03:07.000001z", 1_795_615_387_000_001),
            ("2026-11-25T16:03:07+02:00", 1_795_615_387_000_000), ("2026-11-25T13:33:07-00:30", 1_795_615_387_000_000),
            ("2026-11-25", 1_795_564_800_000_000), ("2000-02-29", 951_782_400_000_000), ("1970-01-01T00:00:00Z", 0),
        ]
        for (text, micros) in parsed {
            #expect(try EventTime.parseISO8601(text) == micros, "\(text)")
        }
        for text in ["2026-11-25T14:03:07.1234567Z", "2026-11-25T14:03:07", "2026-02-29", "1900-02-29", "2026-13-01", "2026-00-10",
                     "2026-11-31", "2026-11-25T24:00:00Z", "2026-11-25T14:60:00Z", "2026-11-25T14:03:60Z", "2026-11-25T14:03:07.Z",
                     "26-11-25", "2026/11/25", "2026-11-25T14:03Z", "2026-11-25T14:03:07Zjunk", "", "yesterday"] {
            let error = #expect(throws: DomainError.self, "\(text)") { try EventTime.parseISO8601(text, field: "--since") }
            #expect(error?.field == "--since")
        }
        #expect(throws: DomainError.self) { try EventTime.parseISO8601("2026-11-25", allowDateOnly: false) }
        var rng = SplitMix64(seed: 0x7133)
        for _ in 0..<20_000 {
            let micros = Int64.random(in: -62_135_596_800_000_000...253_402_300_799_999_999, using: &rng)
            #expect(try EventTime.parseISO8601(EventTime.iso8601(micros: micros)) == micros)
        }
    }

    // MARK: - Event lines

    @Test func linesRenderInOrderAndParseBack() throws {
        for (i, event) in CatalogueSamples.events.enumerated() {
            let stored = CatalogueSamples.recorded(event, position: LogPosition(i + 1), version: UInt64(i), key: i % 3 == 0 ? "key-\(i)" : nil)
            let line = EventLine.render(stored)
            let object = try #require(try Self.parse(line).objectValue)
            let expectedKeys = EventLine.keys.filter { $0 != "opaque" && ($0 != "idempotency_key" || i % 3 == 0) }
            #expect(object.keys == expectedKeys)
            #expect(object["recorded_at"] == .string(EventTime.iso8601(micros: stored.recordedAt)))
            let imported = try EventLine.parse(line)
            #expect(imported.stream == stored.stream && imported.idempotencyKey == stored.idempotencyKey)
            #expect(imported.sourcePosition == stored.position)
            #expect(imported.event == ProposedEvent(type: stored.type, schemaVersion: stored.schemaVersion, recordedAt: stored.recordedAt,
                                                    actor: stored.actor, correlationID: stored.correlationID,
                                                    causationID: stored.causationID, payload: stored.payload))
        }
    }

    /// The CSV row of `event` as export wrote it before rows were written directly: each of
    /// `EventLine.keys` from the line's object (strings as text, other values as JSON,
    /// absent ones empty), quoted by RFC 4180.
    static func referenceCSVRow(_ event: RecordedEvent) -> String {
        let object = EventLine.object(event)
        let fields = EventLine.keys.map { key -> String in
            switch object[key] {
            case nil: ""
            case .string(let s)?: s
            case let value?: value.serialized()
            }
        }
        return fields.map { field in
            field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" })
                ? "\"" + field.replacingAll("\"", with: "\"\"") + "\"" : field
        }.joined(separator: ",") + "\r\n"
    }

    /// Export writes lines and rows straight into bytes; they must be the bytes of the line's
    /// object, for every type, optional fields present and absent, escapes and opaque events.
    @Test func directRenderingEqualsTheObjectsSerialization() throws {
        var events = CatalogueSamples.events.enumerated().map { i, event in
            CatalogueSamples.recorded(event, position: LogPosition(i + 1), version: UInt64(i), key: i % 3 == 0 ? "key-\(i)" : nil)
        }
        let tricky = DomainEvent.creditsGranted(CreditsGranted(user: "u\"1,\\x", amount: -5, reason: "line\nbreak\r\tand \u{1} é ✓"))
        events.append(CatalogueSamples.recorded(tricky, position: 1_000_000_000_000, version: 1 << 40, key: "k,\"q\""))
        var rng = SplitMix64(seed: 0xC5F)
        for size in [0, 1, 2, 3, 100] {
            events.append(RecordedEvent(position: 7, stream: "legacy-x", streamVersion: 0, type: "Legacy,Thing", schemaVersion: 3,
                                        recordedAt: -86_400_000_001, actor: "a\"b", correlationID: "", causationID: "c", idempotencyKey: nil,
                                        payload: rng.bytes(size)))
        }
        // A known type whose payload does not decode.
        events.append(RecordedEvent(position: 8, stream: "user-1", streamVersion: 0, type: "CreditsGranted", schemaVersion: EventType.currentSchemaVersion,
                                    recordedAt: 253_402_300_799_999_999, actor: "", correlationID: "", causationID: "", idempotencyKey: nil, payload: [0xFF]))
        var scratch: [UInt8] = []
        for event in events {
            var line: [UInt8] = []
            EventLine.render(event, into: &line)
            #expect(String(decoding: line, as: UTF8.self) == EventLine.render(event) + "\n")
            var row: [UInt8] = [1, 2]
            EventLine.renderCSV(event, into: &row, scratch: &scratch)
            #expect(Array(row.dropFirst(2)) == Array(Self.referenceCSVRow(event).utf8), "\(event)")
        }
    }

    @Test func linesParseInAnyKeyOrderSpacingAndEscaping() throws {
        let stored = CatalogueSamples.recorded(CatalogueSamples.events[2], position: 5, version: 1, key: "k")
        let expected = try EventLine.parse(EventLine.render(stored))
        let object = try #require(try Self.parse(EventLine.render(stored)).objectValue)
        let reversed = JSONValue.object(JSONValue.Object(object.members.reversed().map { ($0.key, $0.value) })).serialized()
        #expect(try EventLine.parse(reversed) == expected)
        let spaced = EventLine.render(stored).replacingAll(",\"", with: " ,\n\t\"").replacingAll("\":", with: "\" : ")
        #expect(try EventLine.parse(" " + spaced + " \r\n") == expected)
        let escaped = EventLine.render(stored).replacingAll("\"stream\"", with: "\"\\u0073tream\"").replacingAll("\"user-", with: "\"\\u0075ser-")
        #expect(try EventLine.parse(escaped) == expected)
        let noPlace = EventLine.render(stored).replacingAll("\"position\":5,", with: "").replacingAll("\"version\":1,", with: "")
        let placeless = try EventLine.parse(noPlace)
        #expect(placeless.event == expected.event && placeless.sourcePosition == nil)
        let twice = EventLine.render(stored).replacingAll("\"actor\":", with: "\"actor\":\"a\",\"actor\":")
        let error = #expect(throws: DomainError.self) { try EventLine.parse(twice) }
        #expect(error?.code == .malformedJSON && error?.message.contains("duplicate key \"actor\"") == true, "\(String(describing: error))")
        #expect(throws: DomainError.self) { try EventLine.parse(EventLine.render(stored) + "x") }
    }

    @Test func opaqueEventsKeepTheirBytes() throws {
        var rng = SplitMix64(seed: 0x0BA)
        for size in [0, 1, 2, 3, 4, 5, 100, 4_097] {
            let payload = rng.bytes(size)
            let stored = RecordedEvent(position: 3, stream: "legacy-x.1", streamVersion: 0, type: "Legacy.Thing_v2", schemaVersion: 7,
                                       recordedAt: 5, actor: "", correlationID: "", causationID: "", idempotencyKey: nil, payload: payload)
            let line = EventLine.render(stored)
            let object = try #require(try Self.parse(line).objectValue)
            #expect(object["data"] == .null)
            #expect(object["opaque"]?.objectValue?["reason"]?.stringValue?.hasPrefix("unknown_type") == true)
            let imported = try EventLine.parse(line)
            #expect(imported.event.payload == payload && imported.event.schemaVersion == 7 && imported.event.type == "Legacy.Thing_v2")
        }
    }

    @Test func badLinesAreRefusedWithAReason() throws {
        let good = EventLine.render(CatalogueSamples.recorded(CatalogueSamples.events[0]))
        var base = try #require(try Self.parse(good).objectValue)
        func refused(_ change: (inout JSONValue.Object) -> Void, _ expected: String, sourceLocation: SourceLocation = #_sourceLocation) {
            var o = base
            change(&o)
            let error = #expect(throws: DomainError.self, sourceLocation: sourceLocation) { try EventLine.parse(JSONValue.object(o).serialized()) }
            #expect(error?.message.contains(expected) == true, "\(String(describing: error))", sourceLocation: sourceLocation)
        }
        refused({ $0["extra"] = 1 }, "unknown key 'extra'")
        refused({ $0["stream"] = nil }, "stream is missing")
        refused({ $0["stream"] = "user-43" }, "data puts it in 'user-42'")
        refused({ $0["recorded_at"] = nil }, "recorded_at is missing")
        refused({ $0["recorded_at"] = 17 }, "recorded_at must be a string")
        refused({ $0["recorded_at"] = "2026-11-25" }, "a time of day is required")
        refused({ $0["position"] = 0 }, "position must be an integer in 1...")
        refused({ $0["schema_version"] = 2 }, "schema 2 is not readable")
        refused({ $0["actor"] = .string(String(repeating: "a", count: 129)) }, "actor must be 0...128 bytes")
        refused({ $0["data"] = nil }, "data is missing")
        refused({ $0["data"] = "x" }, "data must be an object")
        refused({ $0["data"] = ["user": "42", "amount": 0, "reason": ""] }, "data.amount must be in")
        refused({ $0["type"] = "Nope" }, "not in this build's catalogue")
        refused({ $0["data"] = nil; $0["data"] = .null }, "opaque is required")
        refused({ $0["data"] = .null; $0["opaque"] = ["payload_base64": "AAA"] }, "not canonical base64")
        refused({ $0["data"] = .null; $0["opaque"] = ["payload_base64": "AB=="] }, "not canonical base64")
        refused({ $0["data"] = .null; $0["stream"] = "User-1"; $0["opaque"] = ["payload_base64": ""] }, "must be 'category-id'")
        base["idempotency_key"] = ""
        refused({ _ in }, "idempotency_key must be 1...128 bytes")
        #expect(throws: DomainError.self) { try EventLine.parse("[1]") }
        #expect(throws: DomainError.self) { try EventLine.parse(String(good.dropLast())) }
    }
}

extension String {
    /// Every occurrence of `target` replaced (no Foundation needed by the suites above).
    func replacingAll(_ target: String, with replacement: String) -> String {
        var out = ""
        var rest = self[...]
        while let range = rest.firstRange(of: target) {
            out += rest[..<range.lowerBound] + replacement
            rest = rest[range.upperBound...]
        }
        return out + rest
    }
}
