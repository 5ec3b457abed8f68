/// Reads a snapshot's state as `SnapshotWriter` wrote it. Every count and length is checked
/// against its bound and against the bytes that remain before anything is allocated, so a
/// damaged state throws `ProjectionError` (`corrupted`) and never traps or over-allocates.
///
/// The state is read through a window: the whole state when it is in memory, or, for a file
/// (`SnapshotChunks`), the chunks read so far from the first one still needed, so that a load
/// holds about one chunk of the file (plus the longest run read at once), not the file.
public struct SnapshotReader {
    /// State bytes `windowStart ..< windowStart + bytes.count`.
    private var bytes: [UInt8]
    private var offset = 0
    private var windowStart = 0
    private let stateBytes: Int
    private let chunks: SnapshotChunks?
    private let expectedSections: UInt32
    private var sections: UInt32 = 0

    /// `sections`: how many sections the trailer says the state holds.
    init(_ bytes: [UInt8], sections: UInt32) {
        self.bytes = bytes
        stateBytes = bytes.count
        chunks = nil
        expectedSections = sections
    }

    /// The state of a checked file, read chunk by chunk.
    init(streaming chunks: SnapshotChunks) {
        bytes = []
        stateBytes = chunks.framing.stateBytes
        self.chunks = chunks
        expectedSections = chunks.framing.sections
    }

    public var remaining: Int { stateBytes - windowStart - offset }

    /// At least `count` bytes from `offset` in the window (`count` ≤ `remaining`, checked by
    /// the caller): the bytes already read are dropped, then chunks are appended.
    private mutating func fill(_ count: Int) throws {
        guard let chunks else { return }
        bytes.removeSubrange(0..<offset)
        windowStart += offset
        offset = 0
        while bytes.count < count {
            guard try chunks.appendNext(to: &bytes) else { throw truncated("a chunk") }
        }
    }

    /// Makes `count` bytes readable at `offset`, or throws when the state holds fewer.
    @inline(__always)
    private mutating func need(_ count: Int, _ what: () -> String) throws {
        if bytes.count - offset >= count { return }
        guard count <= remaining else { throw truncated(what()) }
        try fill(count)
    }

    /// Section `tag`'s element count; each element takes at least `minimumBytes`, so a
    /// count the remaining bytes cannot hold is refused before any allocation.
    public mutating func section(_ tag: UInt8, minimumBytes: Int) throws -> Int {
        let found = try byte("section tag")
        guard found == tag else { throw corrupted("section \(sections + 1) has tag \(found), expected \(tag)") }
        sections += 1
        guard sections <= expectedSections else { throw corrupted("more sections than the \(expectedSections) the trailer records") }
        return try count("section \(tag) element count", minimumBytes: minimumBytes)
    }

    /// A count of elements of at least `minimumBytes` each.
    public mutating func count(_ what: @autoclosure () -> String, minimumBytes: Int) throws -> Int {
        let value = try unsigned(what())
        guard value <= UInt64(remaining / max(1, minimumBytes)) else {
            throw corrupted("\(what()) is \(value), more than the \(remaining) remaining bytes can hold")
        }
        return Int(value)
    }

    @inline(__always)
    public mutating func byte(_ what: @autoclosure () -> String) throws -> UInt8 {
        if offset == bytes.count { try need(1, what) }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func bool(_ what: @autoclosure () -> String) throws -> Bool {
        switch try byte(what()) {
        case 0: return false
        case 1: return true
        case let other: throw corrupted("\(what()) is \(other), not 0 or 1")
        }
    }

    /// Unsigned LEB128. `what` (for messages) is built only when the value is bad.
    @inline(__always)
    public mutating func unsigned(_ what: @autoclosure () -> String) throws -> UInt64 {
        if offset < bytes.count, bytes[offset] < 0x80 {
            defer { offset += 1 }
            return UInt64(bytes[offset])
        }
        return try unsignedSlowly(what)
    }

    private mutating func unsignedSlowly(_ what: () -> String) throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let byte = try byte(what())
            if shift == 63 && byte > 1 { throw corrupted("varint for \(what()) overflows 64 bits") }
            result |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return result }
            shift += 7
        }
    }

    /// An unsigned value at most `max`.
    @inline(__always)
    public mutating func unsigned(_ what: @autoclosure () -> String, max: UInt64) throws -> UInt64 {
        let value = try unsigned(what())
        guard value <= max else { throw corrupted("\(what()) is \(value), above the bound \(max)") }
        return value
    }

    @inline(__always)
    public mutating func signed(_ what: @autoclosure () -> String) throws -> Int64 {
        let raw = try unsigned(what())
        return Int64(bitPattern: raw >> 1) ^ -Int64(bitPattern: raw & 1)
    }

    /// A signed value that must fit an `Int`.
    public mutating func int(_ what: @autoclosure () -> String) throws -> Int {
        let value = try signed(what())
        guard let int = Int(exactly: value) else { throw corrupted("\(what()) \(value) does not fit an Int") }
        return int
    }

    public mutating func double(_ what: @autoclosure () -> String) throws -> Double {
        try need(8, what)
        var bits: UInt64 = 0
        for i in (0..<8).reversed() { bits = bits << 8 | UInt64(bytes[offset + i]) }
        offset += 8
        return Double(bitPattern: bits)
    }

    /// A length-prefixed UTF-8 string; invalid UTF-8 is refused, never repaired.
    public mutating func string(_ what: @autoclosure () -> String) throws -> String {
        let length = try unsigned(what())
        guard length <= UInt64(remaining) else { throw truncated(what()) }
        try need(Int(length), what)
        let end = offset + Int(length)
        guard let string = String(validating: bytes[offset..<end], as: UTF8.self) else {
            throw corrupted("\(what()) is not UTF-8")
        }
        offset = end
        return string
    }

    /// A length-prefixed byte run of at most `max` bytes, unchecked as text (the interning
    /// tables check what they need), as a slice sharing the state's buffer.
    mutating func rawBytes(_ what: @autoclosure () -> String, max: Int) throws -> ArraySlice<UInt8> {
        let length = try unsigned(what())
        guard length <= UInt64(max) else { throw corrupted("\(what()) is \(length) bytes, above the bound \(max)") }
        guard length <= UInt64(remaining) else { throw truncated(what()) }
        try need(Int(length), what)
        let end = offset + Int(length)
        defer { offset = end }
        return bytes[offset..<end]
    }

    /// `count` bytes as they are (no length prefix).
    mutating func rawBytes(_ what: @autoclosure () -> String, max: Int, exactly count: Int) throws -> ArraySlice<UInt8> {
        try checkRun(count, max: max, what)
        let end = offset + count
        defer { offset = end }
        return bytes[offset..<end]
    }

    /// `count` bytes as they are (no length prefix), lent to `body` in place: no slice, no
    /// copy. Checked against `max` and the bytes that remain first.
    @inline(__always)
    mutating func withRawBytes<R>(_ what: @autoclosure () -> String, max: Int, exactly count: Int,
                                  _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        try checkRun(count, max: max, what)
        let start = offset
        offset += count
        return try bytes.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[start..<start + count])) }
    }

    @inline(__always)
    private mutating func checkRun(_ count: Int, max: Int, _ what: () -> String) throws {
        guard count >= 0, count <= max else { throw corrupted("\(what()) is \(count) bytes, above the bound \(max)") }
        try need(count, what)
    }

    /// A value of a `CaseIterable` enum, stored as its index in `allCases`.
    public mutating func choice<E: CaseIterable>(_: E.Type, _ what: @autoclosure () -> String) throws -> E {
        let cases = Array(E.allCases)
        let index = Int(try byte(what()))
        guard index < cases.count else { throw corrupted("\(what()) is \(index), there are \(cases.count) cases") }
        return cases[index]
    }

    /// The state must end exactly here, after every section the trailer records.
    func finish() throws {
        guard remaining == 0 else { throw corrupted("\(remaining) bytes after the last section") }
        guard sections == expectedSections else {
            throw corrupted("\(sections) sections read, the trailer records \(expectedSections)")
        }
    }

    public func corrupted(_ why: String) -> ProjectionError {
        ProjectionError(.corrupted, "snapshot state: \(why) (at byte \(windowStart + offset) of \(stateBytes))")
    }

    private func truncated(_ what: String) -> ProjectionError {
        corrupted("the state ends inside \(what)")
    }
}

extension SnapshotWriter {
    /// A `CaseIterable` enum value as its index in `allCases` (the inverse of `SnapshotReader.choice`).
    public mutating func choice<E: CaseIterable & Equatable>(_ value: E) {
        byte(UInt8(E.allCases.firstIndex(of: value).map { E.allCases.distance(from: E.allCases.startIndex, to: $0) } ?? 0))
    }

    public mutating func bool(_ value: Bool) { byte(value ? 1 : 0) }
}
