/// Writes the members of one JSON object straight into a byte buffer: a comma before every
/// key but the first. The same bytes as building a `JSONValue.Object` and writing it, without
/// the tree (an array of members, a `String` key and an enum box per field), for the bodies
/// written per event (`replay export`) or per request (the unlocked page).
///
/// Keys are ASCII names without characters to escape, so they are copied as they are. The
/// caller writes the object's braces, and a nested value after `key(_:_:)`.
public struct JSONMemberWriter {
    private var first = true

    public init() {}

    /// The comma (after the first member), `"name":`.
    public mutating func key(_ name: StaticString, _ bytes: inout [UInt8]) {
        if first { first = false } else { bytes.append(UInt8(ascii: ",")) }
        bytes.append(UInt8(ascii: "\""))
        JSONText.appendASCII(name, to: &bytes)
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
    }

    public mutating func string(_ name: StaticString, _ value: String, _ bytes: inout [UInt8]) {
        key(name, &bytes)
        JSONText.appendString(value, to: &bytes)
    }

    public mutating func integer(_ name: StaticString, _ value: Int64, _ bytes: inout [UInt8]) {
        key(name, &bytes)
        JSONText.appendInteger(value, to: &bytes)
    }

    public mutating func number(_ name: StaticString, _ value: Double, _ bytes: inout [UInt8]) {
        key(name, &bytes)
        JSONText.appendDouble(value, to: &bytes)
    }

    public mutating func bool(_ name: StaticString, _ value: Bool, _ bytes: inout [UInt8]) {
        key(name, &bytes)
        JSONText.appendASCII(value ? "true" : "false", to: &bytes)
    }

    public mutating func null(_ name: StaticString, _ bytes: inout [UInt8]) {
        key(name, &bytes)
        JSONText.appendASCII("null", to: &bytes)
    }

    /// `"name":"2026-12-01T18:31:06.123456Z"`: microseconds since 1970 as `EventTime.iso8601`
    /// writes them (ISO 8601 text needs no escaping).
    public mutating func time(_ name: StaticString, micros: Int64, _ bytes: inout [UInt8]) {
        key(name, &bytes)
        bytes.append(UInt8(ascii: "\""))
        EventTime.appendISO8601(micros: micros, to: &bytes)
        bytes.append(UInt8(ascii: "\""))
    }
}
