/// A strict RFC 8259 parser over UTF-8 bytes, bounded in size and depth so that untrusted
/// input (an import file, a request body) costs at most what the caller allows. Refuses
/// trailing commas, NaN/Infinity, leading zeros, raw control characters in strings, lone
/// surrogates, invalid UTF-8 and duplicate object keys. Every failure is a
/// `DomainError(.malformedJSON)` naming the byte offset (from 0); no input traps.
public struct JSONParser {
    public static let defaultMaxDepth = 64

    /// Parses one JSON document of at most `maxBytes` bytes, nested at most `maxDepth` deep.
    public static func parse(_ bytes: UnsafeRawBufferPointer, maxBytes: Int, maxDepth: Int = defaultMaxDepth) throws -> JSONValue {
        guard bytes.count <= maxBytes else {
            throw DomainError(.malformedJSON, "document is \(bytes.count) bytes; the bound is \(maxBytes) at byte \(maxBytes)")
        }
        var parser = JSONParser(bytes: bytes, maxDepth: maxDepth)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        guard parser.index == bytes.count else { throw parser.error("unexpected text after the document") }
        return value
    }

    public static func parse(_ bytes: [UInt8], maxBytes: Int, maxDepth: Int = defaultMaxDepth) throws -> JSONValue {
        try bytes.withUnsafeBytes { try parse($0, maxBytes: maxBytes, maxDepth: maxDepth) }
    }

    public static func parse(_ text: String, maxBytes: Int, maxDepth: Int = defaultMaxDepth) throws -> JSONValue {
        var text = text
        return try text.withUTF8 { try parse(UnsafeRawBufferPointer($0), maxBytes: maxBytes, maxDepth: maxDepth) }
    }

    let bytes: UnsafeRawBufferPointer
    let maxDepth: Int
    var index = 0

    init(bytes: UnsafeRawBufferPointer, maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    func error(_ message: String, at offset: Int? = nil) -> DomainError {
        DomainError(.malformedJSON, "\(message) at byte \(offset ?? index)")
    }

    var atEnd: Bool { index >= bytes.count }
    var peek: UInt8 { index < bytes.count ? bytes[index] : 0 }

    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    mutating func parseValue(depth: Int) throws -> JSONValue {
        guard !atEnd else { throw error("unexpected end of input, expected a value") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return .object(try parseObject(depth: depth + 1))
        case UInt8(ascii: "["): return .array(try parseArray(depth: depth + 1))
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectWord("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectWord("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectWord("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw error("unexpected character \(Self.shown(bytes[index])), expected a value")
        }
    }

    private mutating func expectWord(_ word: StaticString) throws {
        let count = word.utf8CodeUnitCount
        guard bytes.count - index >= count else { throw error("invalid literal, expected \(word)") }
        for i in 0..<count where bytes[index + i] != word.utf8Start[i] {
            throw error("invalid literal, expected \(word)")
        }
        index += count
    }

    private mutating func parseObject(depth: Int) throws -> JSONValue.Object {
        guard depth <= maxDepth else { throw error("nesting deeper than \(maxDepth)") }
        index += 1
        var members: [JSONValue.Object.Member] = []
        members.reserveCapacity(8)
        var seen: Set<String>?
        skipWhitespace()
        if peek == UInt8(ascii: "}") {
            index += 1
            return JSONValue.Object(uniqueMembers: members)
        }
        while true {
            guard peek == UInt8(ascii: "\"") else {
                throw error(atEnd ? "unexpected end of input, expected an object key" : "expected a string key, got \(Self.shown(peek))")
            }
            let keyStart = index
            let key = try parseString()
            // Small objects (every event) are checked by scanning, large ones by hashing.
            if members.count < 16 {
                let count = key.utf8.count
                if members.contains(where: { $0.key.utf8.count == count && $0.key == key }) {
                    throw error("duplicate key \"\(key)\"", at: keyStart)
                }
            } else {
                if seen == nil { seen = Set(members.map(\.key)) }
                if !seen!.insert(key).inserted { throw error("duplicate key \"\(key)\"", at: keyStart) }
            }
            skipWhitespace()
            guard peek == UInt8(ascii: ":") else { throw error(atEnd ? "unexpected end of input, expected ':'" : "expected ':' after an object key") }
            index += 1
            skipWhitespace()
            members.append(JSONValue.Object.Member(key: key, value: try parseValue(depth: depth)))
            skipWhitespace()
            switch peek {
            case UInt8(ascii: ","):
                index += 1
                skipWhitespace()
            case UInt8(ascii: "}"):
                index += 1
                return JSONValue.Object(uniqueMembers: members)
            default:
                throw error(atEnd ? "unexpected end of input, expected ',' or '}'" : "expected ',' or '}' after an object member")
            }
        }
    }

    private mutating func parseArray(depth: Int) throws -> [JSONValue] {
        guard depth <= maxDepth else { throw error("nesting deeper than \(maxDepth)") }
        index += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if peek == UInt8(ascii: "]") {
            index += 1
            return elements
        }
        while true {
            elements.append(try parseValue(depth: depth))
            skipWhitespace()
            switch peek {
            case UInt8(ascii: ","):
                index += 1
                skipWhitespace()
                if peek == UInt8(ascii: "]") { throw error("trailing comma in an array") }
            case UInt8(ascii: "]"):
                index += 1
                return elements
            default:
                throw error(atEnd ? "unexpected end of input, expected ',' or ']'" : "expected ',' or ']' after an array element")
            }
        }
    }

    // MARK: Strings

    mutating func parseString() throws -> String {
        index += 1  // the opening quote
        let start = index
        // Fast path: no escapes. Validates UTF-8 as it scans.
        while index < bytes.count {
            skipPlainASCII()
            guard index < bytes.count else { break }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
                index += 1
                return text
            }
            if byte == UInt8(ascii: "\\") { return try parseEscapedString(from: start) }
            if byte < 0x20 { throw error("raw control character 0x\(String(byte, radix: 16)) in a string; escape it") }
            if byte < 0x80 { index += 1 } else { index += try utf8Sequence(at: index) }
        }
        throw error("unexpected end of input inside a string that starts", at: start - 1)
    }

    private mutating func parseEscapedString(from start: Int) throws -> String {
        var out: [UInt8] = []
        out.reserveCapacity(index - start + 16)
        out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                return String(decoding: out, as: UTF8.self)
            case UInt8(ascii: "\\"):
                try appendEscape(to: &out)
            case 0..<0x20:
                throw error("raw control character 0x\(String(byte, radix: 16)) in a string; escape it")
            case 0x80...:
                let length = try utf8Sequence(at: index)
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[index..<index + length]))
                index += length
            default:
                out.append(byte)
                index += 1
            }
        }
        throw error("unexpected end of input inside a string that starts", at: start - 1)
    }

    private mutating func appendEscape(to out: inout [UInt8]) throws {
        let escapeStart = index
        index += 1
        guard !atEnd else { throw error("unexpected end of input inside an escape") }
        let code = bytes[index]
        index += 1
        switch code {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(code)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try hex4()
            if (0xD800...0xDBFF).contains(scalar) {
                guard bytes.count - index >= 2, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                    throw error("high surrogate \\u\(String(scalar, radix: 16)) without a low surrogate after it", at: escapeStart)
                }
                index += 2
                let low = try hex4()
                guard (0xDC00...0xDFFF).contains(low) else {
                    throw error("high surrogate \\u\(String(scalar, radix: 16)) followed by \\u\(String(low, radix: 16)), not a low surrogate", at: escapeStart)
                }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00...0xDFFF).contains(scalar) {
                throw error("lone low surrogate \\u\(String(scalar, radix: 16))", at: escapeStart)
            }
            Self.appendUTF8(scalar, to: &out)
        default:
            throw error("invalid escape \\\(Self.shown(code))", at: escapeStart)
        }
    }

    private mutating func hex4() throws -> UInt32 {
        guard bytes.count - index >= 4 else { throw error("unexpected end of input inside a \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[index]
            let digit: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = c - UInt8(ascii: "A") + 10
            default: throw error("\\u escape needs 4 hex digits, got \(Self.shown(c))")
            }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }

    /// The length of the valid UTF-8 sequence starting at `at` (a byte ≥ 0x80): no overlong
    /// forms, no surrogates, nothing above U+10FFFF.
    func utf8Sequence(at offset: Int) throws -> Int {
        let lead = bytes[offset]
        let length: Int
        var low: UInt8 = 0x80
        var high: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; low = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; high = 0x9F
        case 0xF0: length = 4; low = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; high = 0x8F
        default: throw error("invalid UTF-8 byte 0x\(String(lead, radix: 16))", at: offset)
        }
        guard bytes.count - offset >= length else { throw error("truncated UTF-8 sequence", at: offset) }
        let second = bytes[offset + 1]
        guard second >= low && second <= high else { throw error("invalid UTF-8 sequence", at: offset) }
        for i in 2..<max(2, length) where bytes[offset + i] & 0xC0 != 0x80 {
            throw error("invalid UTF-8 sequence", at: offset)
        }
        return length
    }

    private static func appendUTF8(_ scalar: UInt32, to out: inout [UInt8]) {
        switch scalar {
        case 0..<0x80:
            out.append(UInt8(scalar))
        case 0x80..<0x800:
            out.append(0xC0 | UInt8(scalar >> 6))
            out.append(0x80 | UInt8(scalar & 0x3F))
        case 0x800..<0x10000:
            out.append(0xE0 | UInt8(scalar >> 12))
            out.append(0x80 | UInt8((scalar >> 6) & 0x3F))
            out.append(0x80 | UInt8(scalar & 0x3F))
        default:
            out.append(0xF0 | UInt8(scalar >> 18))
            out.append(0x80 | UInt8((scalar >> 12) & 0x3F))
            out.append(0x80 | UInt8((scalar >> 6) & 0x3F))
            out.append(0x80 | UInt8(scalar & 0x3F))
        }
    }

    // MARK: Numbers

    private static let exactPowersOfTen: [Double] = (0...22).map { exponent in
        var value = 1.0
        for _ in 0..<exponent { value *= 10 }
        return value
    }

    private mutating func parseNumber() throws -> JSONValue {
        let start = index
        let negative = peek == UInt8(ascii: "-")
        if negative { index += 1 }
        var mantissa: UInt64 = 0
        var digits = 0          // significant digits folded into mantissa
        var dropped = 0         // integer digits that did not fit (scale the mantissa up)
        var overflowed = false
        guard !atEnd, peek >= UInt8(ascii: "0"), peek <= UInt8(ascii: "9") else { throw error("expected a digit in a number") }
        if peek == UInt8(ascii: "0") {
            index += 1
            if peek >= UInt8(ascii: "0") && peek <= UInt8(ascii: "9") { throw error("leading zero in a number", at: start) }
        } else {
            while peek >= UInt8(ascii: "0") && peek <= UInt8(ascii: "9") && !atEnd {
                Self.fold(peek, into: &mantissa, digits: &digits, overflowed: &overflowed, dropped: &dropped)
                index += 1
            }
        }
        var isInteger = true
        var fractionDigits = 0
        if peek == UInt8(ascii: "."), !atEnd {
            isInteger = false
            index += 1
            guard !atEnd, peek >= UInt8(ascii: "0"), peek <= UInt8(ascii: "9") else { throw error("expected a digit after '.'") }
            while !atEnd && peek >= UInt8(ascii: "0") && peek <= UInt8(ascii: "9") {
                var ignored = 0
                let before = overflowed
                Self.fold(peek, into: &mantissa, digits: &digits, overflowed: &overflowed, dropped: &ignored)
                if !before && !overflowed { fractionDigits += 1 }
                index += 1
            }
        }
        var exponent = 0
        if !atEnd, peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            isInteger = false
            index += 1
            var exponentNegative = false
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") {
                exponentNegative = peek == UInt8(ascii: "-")
                index += 1
            }
            guard !atEnd, peek >= UInt8(ascii: "0"), peek <= UInt8(ascii: "9") else { throw error("expected a digit in an exponent") }
            while !atEnd && peek >= UInt8(ascii: "0") && peek <= UInt8(ascii: "9") {
                if exponent < 100_000 { exponent = exponent * 10 + Int(peek - UInt8(ascii: "0")) }
                index += 1
            }
            if exponentNegative { exponent = -exponent }
        }
        if isInteger && !overflowed {
            if negative {
                if mantissa <= UInt64(Int64.max) + 1 { return .integer(mantissa == UInt64(Int64.max) + 1 ? .min : -Int64(mantissa)) }
            } else if mantissa <= UInt64(Int64.max) {
                return .integer(Int64(mantissa))
            }
        }
        let scale = exponent + dropped - fractionDigits
        let value: Double
        if !overflowed && mantissa <= 1 << 53 && abs(scale) <= 22 {
            // Clinger's fast path: both operands are exact doubles, so one rounding is exact.
            let m = Double(mantissa)
            value = scale >= 0 ? m * Self.exactPowersOfTen[scale] : m / Self.exactPowersOfTen[-scale]
        } else {
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[(negative ? start + 1 : start)..<index]), as: UTF8.self)
            guard let parsed = Double(text) else { throw error("number does not parse", at: start) }
            value = parsed
        }
        guard value.isFinite else { throw error("number is out of the range of a double", at: start) }
        return .number(negative ? -value : value)
    }

    /// Folds one decimal digit into the mantissa while it fits 19 digits; later integer
    /// digits only count as a scale (`dropped`), and the slow path takes over.
    private static func fold(_ digit: UInt8, into mantissa: inout UInt64, digits: inout Int, overflowed: inout Bool, dropped: inout Int) {
        if overflowed || digits >= 19 {
            overflowed = true
            dropped += 1
            return
        }
        mantissa = mantissa * 10 + UInt64(digit - UInt8(ascii: "0"))
        if mantissa != 0 { digits += 1 }
    }

    static func shown(_ byte: UInt8) -> String {
        (0x21..<0x7F).contains(byte) ? "'\(Character(Unicode.Scalar(byte)))'" : "0x\(String(byte, radix: 16))"
    }
}
