/// A JSON document as a value: what audit, export and import exchange with people and
/// scripts. Integers without fraction or exponent that fit 64 bits stay exact (`.integer`);
/// other numbers are finite doubles (`.number`). Object members keep the order they were
/// given or parsed in, so rendering is stable and diffable. No Foundation: the import path
/// parses and renders millions of these.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object(Object)

    /// An object's members in order, with unique keys. Equality is order-sensitive.
    public struct Object: Sendable, Hashable, RandomAccessCollection, ExpressibleByDictionaryLiteral {
        public struct Member: Sendable, Hashable {
            public var key: String
            public var value: JSONValue

            public init(key: String, value: JSONValue) {
                self.key = key
                self.value = value
            }
        }

        public private(set) var members: [Member]

        public init() { members = [] }

        /// Members in the order given; a repeated key keeps its first place and last value.
        public init(_ pairs: [(String, JSONValue)]) {
            members = []
            members.reserveCapacity(pairs.count)
            for (key, value) in pairs { self[key] = value }
        }

        public init(dictionaryLiteral elements: (String, JSONValue)...) { self.init(elements) }

        /// Members already known to have unique keys (the parser checks them).
        init(uniqueMembers: [Member]) { members = uniqueMembers }

        public var startIndex: Int { members.startIndex }
        public var endIndex: Int { members.endIndex }
        public subscript(position: Int) -> Member { members[position] }

        public var keys: [String] { members.map(\.key) }

        /// The value of `key`, or nil when absent. Setting nil removes the member; setting a
        /// new key appends it, an existing one is replaced in place.
        public subscript(key: String) -> JSONValue? {
            get {
                let count = key.utf8.count  // O(1), and rules out most keys without comparing
                for member in members where member.key.utf8.count == count && member.key == key { return member.value }
                return nil
            }
            set {
                let count = key.utf8.count
                let index = members.firstIndex { $0.key.utf8.count == count && $0.key == key }
                switch (index, newValue) {
                case (let i?, let value?): members[i].value = value
                case (let i?, nil): members.remove(at: i)
                case (nil, let value?): members.append(Member(key: key, value: value))
                case (nil, nil): break
                }
            }
        }
    }
}

extension JSONValue {
    public var isNull: Bool { if case .null = self { true } else { false } }
    public var stringValue: String? { if case .string(let s) = self { s } else { nil } }
    public var objectValue: Object? { if case .object(let o) = self { o } else { nil } }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { a } else { nil } }
    /// Exact integers only: a number with a fraction or exponent is not one.
    public var int64Value: Int64? { if case .integer(let i) = self { i } else { nil } }

    /// Any number, integers converted.
    public var doubleValue: Double? {
        switch self {
        case .integer(let i): Double(i)
        case .number(let d): d
        default: nil
        }
    }

    /// What kind of value this is, for error messages.
    public var kindName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .integer, .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) { self = .object(Object(elements)) }
}

// MARK: - Rendering

extension JSONValue: CustomStringConvertible {
    /// Compact JSON text: no spaces, object keys in their order.
    public var description: String { serialized() }

    public func serialized() -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(64)
        write(to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends the compact JSON text of this value to `bytes` as UTF-8. Integers print
    /// without ".0"; doubles in their shortest round-trip form; a non-finite double (which
    /// JSON cannot hold) prints as null.
    public func write(to bytes: inout [UInt8]) {
        switch self {
        case .null: JSONText.appendASCII("null", to: &bytes)
        case .bool(let b): JSONText.appendASCII(b ? "true" : "false", to: &bytes)
        case .integer(let i): JSONText.appendInteger(i, to: &bytes)
        case .number(let d): JSONText.appendDouble(d, to: &bytes)
        case .string(let s): JSONText.appendString(s, to: &bytes)
        case .array(let elements):
            bytes.append(UInt8(ascii: "["))
            for (i, element) in elements.enumerated() {
                if i > 0 { bytes.append(UInt8(ascii: ",")) }
                element.write(to: &bytes)
            }
            bytes.append(UInt8(ascii: "]"))
        case .object(let object):
            object.write(to: &bytes)
        }
    }
}

extension JSONValue.Object: CustomStringConvertible {
    public var description: String { JSONValue.object(self).serialized() }

    public func write(to bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "{"))
        for (i, member) in members.enumerated() {
            if i > 0 { bytes.append(UInt8(ascii: ",")) }
            JSONText.appendString(member.key, to: &bytes)
            bytes.append(UInt8(ascii: ":"))
            member.value.write(to: &bytes)
        }
        bytes.append(UInt8(ascii: "}"))
    }
}
