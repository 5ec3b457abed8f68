/// Member-by-member reading of an object, for callers that know their keys (the event line
/// reader): keys come as raw bytes, values are read one at a time, no tree is built.
extension JSONParser {
    /// A key or string as read: its raw bytes when it holds no escapes, else decoded.
    enum Text {
        case raw(UnsafeRawBufferPointer)
        case decoded(String)

        func equals(_ name: [UInt8]) -> Bool {
            switch self {
            case .raw(let bytes):
                guard bytes.count == name.count else { return false }
                return name.withUnsafeBytes { bytesEqual(bytes, $0) }
            case .decoded(let text):
                return text.utf8.elementsEqual(name)
            }
        }

        var string: String {
            switch self {
            case .raw(let bytes): String(decoding: bytes, as: UTF8.self)
            case .decoded(let text): text
            }
        }
    }

    /// A reader over `bytes`, refusing more than `maxBytes`.
    init(scanning bytes: UnsafeRawBufferPointer, maxBytes: Int, maxDepth: Int = defaultMaxDepth) throws {
        guard bytes.count <= maxBytes else {
            throw DomainError(.malformedJSON, "document is \(bytes.count) bytes; the bound is \(maxBytes) at byte \(maxBytes)")
        }
        self.init(bytes: bytes, maxDepth: maxDepth)
    }

    /// Consumes `{`; false (with the `}`) when the object is empty.
    mutating func beginObject() throws -> Bool {
        skipWhitespace()
        guard peek == UInt8(ascii: "{") else { throw error(atEnd ? "unexpected end of input, expected an object" : "expected an object") }
        index += 1
        skipWhitespace()
        guard peek != UInt8(ascii: "}") else {
            index += 1
            return false
        }
        return true
    }

    /// The next member's key and the ':' after it; the caller then reads exactly one value.
    mutating func memberKey() throws -> Text {
        guard peek == UInt8(ascii: "\"") else {
            throw error(atEnd ? "unexpected end of input, expected an object key" : "expected a string key, got \(Self.shown(peek))")
        }
        let key = try stringText()
        skipWhitespace()
        guard peek == UInt8(ascii: ":") else { throw error(atEnd ? "unexpected end of input, expected ':'" : "expected ':' after an object key") }
        index += 1
        skipWhitespace()
        return key
    }

    /// After a member's value: true when another member follows, false after the closing `}`.
    mutating func nextMember() throws -> Bool {
        skipWhitespace()
        switch peek {
        case UInt8(ascii: ","):
            index += 1
            skipWhitespace()
            return true
        case UInt8(ascii: "}"):
            index += 1
            return false
        default:
            throw error(atEnd ? "unexpected end of input, expected ',' or '}'" : "expected ',' or '}' after an object member")
        }
    }

    /// Only whitespace may follow the document.
    mutating func finish() throws {
        skipWhitespace()
        guard atEnd else { throw error("unexpected text after the document") }
    }

    /// The string at the current position (`"` expected), without copying it when it holds
    /// no escapes. UTF-8 is validated either way.
    mutating func stringText() throws -> Text {
        let quote = index
        index += 1
        while index < bytes.count {
            skipPlainASCII()
            guard index < bytes.count else { break }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                return .raw(UnsafeRawBufferPointer(rebasing: bytes[(quote + 1)..<(index - 1)]))
            }
            if byte == UInt8(ascii: "\\") {
                index = quote
                return .decoded(try parseString())
            }
            if byte < 0x20 { throw error("raw control character 0x\(String(byte, radix: 16)) in a string; escape it") }
            if byte < 0x80 { index += 1 } else { index += try utf8Sequence(at: index) }
        }
        throw error("unexpected end of input inside a string that starts", at: quote)
    }
}

/// Byte equality of two buffers, as a plain loop the optimiser vectorises.
func bytesEqual(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
    guard a.count == b.count else { return false }
    for i in 0..<a.count where a[i] != b[i] { return false }
    return true
}

extension JSONParser {
    /// Skips string bytes that need no attention (printable ASCII other than `"` and `\`),
    /// eight at a time.
    @inline(__always)
    mutating func skipPlainASCII() {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        while bytes.count - index >= 8 {
            let word = bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            let quote = word ^ (ones &* 0x22)
            let backslash = word ^ (ones &* 0x5C)
            let special = (word | ((word &- ones &* 0x20) & ~word) | ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash)) & highs
            if special != 0 { return }
            index += 8
        }
    }
}
