/// Appends little-endian integers, LEB128 varints and length-prefixed bytes to a buffer.
/// Public so that the domain's payload codec shares the log's byte conventions.
public struct ByteWriter {
    public var bytes: [UInt8]

    public init(capacity: Int = 0) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    @inlinable
    public mutating func writeUInt8(_ value: UInt8) { bytes.append(value) }

    @inlinable
    public mutating func writeLE<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    @inlinable
    public mutating func writeVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    @inlinable
    public mutating func writeZigZag(_ value: Int64) {
        writeVarint(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    @inlinable
    public mutating func writeLengthPrefixed(_ string: String) {
        let written: Void? = string.utf8.withContiguousStorageIfAvailable { utf8 in
            writeVarint(UInt64(utf8.count))
            bytes.append(contentsOf: utf8)
        }
        if written == nil {
            writeVarint(UInt64(string.utf8.count))
            bytes.append(contentsOf: string.utf8)
        }
    }

    @inlinable
    public mutating func writeLengthPrefixed(_ payload: [UInt8]) {
        writeVarint(UInt64(payload.count))
        bytes.append(contentsOf: payload)
    }
}

/// Reads what `ByteWriter` writes, checking every length against the bytes that remain
/// and against the caller's bound. Never traps: malformed input throws `EventLogError`
/// with code `corrupted`.
public struct ByteReader: ~Copyable {
    @usableFromInline let base: UnsafeRawBufferPointer
    @usableFromInline var offset: Int

    public init(_ base: UnsafeRawBufferPointer, offset: Int = 0) {
        self.base = base
        self.offset = offset
    }

    @inlinable
    public var remaining: Int { base.count - offset }

    @inlinable
    public mutating func readUInt8(_ what: StaticString) throws -> UInt8 {
        guard offset < base.count else { throw truncated(what) }
        defer { offset += 1 }
        return base[offset]
    }

    @inlinable
    public mutating func readLE<T: FixedWidthInteger>(_: T.Type, _ what: StaticString) throws -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { throw truncated(what) }
        var value = T.zero
        withUnsafeMutableBytes(of: &value) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: base[offset..<offset + size])) }
        offset += size
        return T(littleEndian: value)
    }

    @inlinable @inline(__always)
    public mutating func readVarint(_ what: StaticString) throws -> UInt64 {
        // Fast path: most varints in an envelope are one byte.
        if offset < base.count {
            let byte = base[offset]
            if byte < 0x80 {
                offset += 1
                return UInt64(byte)
            }
        }
        return try readVarintSlow(what)
    }

    @usableFromInline @inline(never)
    mutating func readVarintSlow(_ what: StaticString) throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard offset < base.count else { throw truncated(what) }
            let byte = base[offset]
            offset += 1
            if shift == 63 && byte > 1 {
                throw EventLogError(.corrupted, "varint for \(what) overflows 64 bits")
            }
            result |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return result }
            shift += 7
            if shift > 63 { throw EventLogError(.corrupted, "varint for \(what) is longer than 10 bytes") }
        }
    }

    @inlinable @inline(__always)
    public mutating func readVarint(_ what: StaticString, max: UInt64) throws -> UInt64 {
        let value = try readVarint(what)
        guard value <= max else { throw Self.aboveBound(what, value, max) }
        return value
    }

    @usableFromInline @inline(never)
    static func aboveBound(_ what: StaticString, _ value: UInt64, _ max: UInt64) -> EventLogError {
        EventLogError(.corrupted, "\(what) is \(value), above the bound \(max)")
    }

    @inlinable
    public mutating func readZigZag(_ what: StaticString) throws -> Int64 {
        let raw = try readVarint(what)
        return Int64(bitPattern: raw >> 1) ^ -Int64(bitPattern: raw & 1)
    }

    /// A length-prefixed byte run of at most `max` bytes, as a slice of the input.
    @inlinable
    public mutating func readLengthPrefixed(_ what: StaticString, max: Int) throws -> UnsafeRawBufferPointer {
        let length = try readVarint(what, max: UInt64(max))
        let count = Int(length)
        guard remaining >= count else { throw truncated(what) }
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: base[offset..<offset + count])
    }

    /// A length-prefixed field's place in the input, bounded like `readLengthPrefixed`.
    @inline(__always)
    mutating func readField(_ what: StaticString, max: Int) throws -> FieldRange {
        let length = try readVarint(what, max: UInt64(max))
        let count = Int(length)
        guard remaining >= count else { throw truncated(what) }
        defer { offset += count }
        return FieldRange(start: UInt32(offset), count: UInt32(count))
    }

    @inlinable
    public mutating func readString(_ what: StaticString, max: Int) throws -> String {
        let raw = try readLengthPrefixed(what, max: max)
        return String(decoding: raw, as: UTF8.self)
    }

    @usableFromInline @inline(never)
    func truncated(_ what: StaticString) -> EventLogError {
        EventLogError(.corrupted, "input ends inside \(what) at byte \(offset) of \(base.count)")
    }
}
