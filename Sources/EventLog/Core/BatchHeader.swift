import Crypto

/// The header of one batch, stored in an LZ4 skippable frame just before the batch's data
/// frame. Byte layout (little-endian) in docs/log-format.md.
struct BatchHeader: Equatable, Sendable {
    static let skippableMagic: UInt32 = 0x184D_2A50
    static let magic: UInt32 = 0x4259_4C54  // "TLYB" read as little-endian bytes
    static let formatVersion: UInt16 = 1
    /// Bytes of the header itself (the skippable frame's content).
    static let size = 116
    /// Skippable frame header (magic + size) plus the header.
    static let framedSize = 8 + size
    /// Where the chain hash starts; the hash covers every byte before it plus the data frame.
    static let hashedPrefixSize = 80
    static let zeroHash = [UInt8](repeating: 0, count: 32)

    var firstPosition: LogPosition
    var eventCount: UInt32
    var rawLength: UInt32
    var minRecordedAt: Int64
    var maxRecordedAt: Int64
    var dataLength: UInt32
    var dataChecksum: UInt32
    var previousHash: [UInt8]
    var chainHash: [UInt8]

    var lastPosition: LogPosition { firstPosition + UInt64(eventCount) - 1 }
    var totalSize: Int { Self.framedSize + Int(dataLength) }

    /// The skippable frame holding this header, with `chainHash` as given.
    func encodeFramed() -> [UInt8] {
        var w = ByteWriter(capacity: Self.framedSize)
        w.writeLE(Self.skippableMagic)
        w.writeLE(UInt32(Self.size))
        encodeHashedPrefix(into: &w)
        w.bytes.append(contentsOf: chainHash)
        let crc = w.bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[8..<8 + Self.size - 4])) }
        w.writeLE(crc)
        return w.bytes
    }

    private func encodeHashedPrefix(into w: inout ByteWriter) {
        w.writeLE(Self.magic)
        w.writeLE(Self.formatVersion)
        w.writeLE(UInt16(0))  // flags, none defined
        w.writeLE(firstPosition)
        w.writeLE(eventCount)
        w.writeLE(rawLength)
        w.writeLE(minRecordedAt)
        w.writeLE(maxRecordedAt)
        w.writeLE(dataLength)
        w.writeLE(dataChecksum)
        w.bytes.append(contentsOf: previousHash)
    }

    /// SHA-256 over the header bytes before the chain hash (which include the previous
    /// hash) and the data frame: changing, removing or reordering anything breaks it.
    func computeChainHash(dataFrame: UnsafeRawBufferPointer) -> [UInt8] {
        var w = ByteWriter(capacity: Self.hashedPrefixSize)
        encodeHashedPrefix(into: &w)
        var hasher = SHA256()
        hasher.update(data: w.bytes)
        hasher.update(bufferPointer: dataFrame)
        return Array(hasher.finalize())
    }

    /// Parses a framed header. Checks magic numbers, sizes, the header CRC and every bound;
    /// throws on anything else.
    static func parse(_ framed: UnsafeRawBufferPointer) throws -> BatchHeader {
        guard framed.count >= framedSize else {
            throw EventLogError(.corrupted, "batch header needs \(framedSize) bytes, \(framed.count) remain")
        }
        var r = ByteReader(framed)
        let skippable = try r.readLE(UInt32.self, "skippable frame magic")
        guard skippable == skippableMagic else {
            throw EventLogError(.corrupted, "expected a skippable frame (0x184D2A50), found 0x\(String(skippable, radix: 16))")
        }
        let frameSize = try r.readLE(UInt32.self, "skippable frame size")
        guard frameSize == UInt32(size) else {
            throw EventLogError(.corrupted, "batch header frame size is \(frameSize), expected \(size)")
        }
        let storedCRC = framed.loadUnaligned(fromByteOffset: framedSize - 4, as: UInt32.self).littleEndian
        let computedCRC = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: framed[8..<framedSize - 4]))
        guard storedCRC == computedCRC else { throw EventLogError(.corrupted, "batch header checksum mismatch") }
        guard try r.readLE(UInt32.self, "magic") == magic else { throw EventLogError(.corrupted, "batch header magic is not TLYB") }
        let version = try r.readLE(UInt16.self, "format version")
        guard version == formatVersion else {
            throw EventLogError(.corrupted, "batch format version \(version) is not supported (this build reads \(formatVersion))")
        }
        _ = try r.readLE(UInt16.self, "flags")
        let first = try r.readLE(UInt64.self, "first position")
        let count = try r.readLE(UInt32.self, "event count")
        let raw = try r.readLE(UInt32.self, "raw length")
        let minAt = try r.readLE(Int64.self, "min recorded-at")
        let maxAt = try r.readLE(Int64.self, "max recorded-at")
        let dataLength = try r.readLE(UInt32.self, "data length")
        let dataCRC = try r.readLE(UInt32.self, "data checksum")
        let previous = Array(UnsafeRawBufferPointer(rebasing: framed[8 + 48..<8 + 80]))
        let chain = Array(UnsafeRawBufferPointer(rebasing: framed[8 + 80..<8 + 112]))
        guard first >= 1, count >= 1, count <= UInt32(EventLimits.maxBatchEvents), first <= UInt64.max - UInt64(count) else {
            throw EventLogError(.corrupted, "batch header has first position \(first) and \(count) events")
        }
        guard raw >= count, raw <= UInt32(EventLimits.maxBatchBytes) else {
            throw EventLogError(.corrupted, "batch raw length \(raw) is outside 1...\(EventLimits.maxBatchBytes)")
        }
        guard dataLength >= 1, Int(dataLength) <= maxFrameSize(rawLength: Int(raw)) else {
            throw EventLogError(.corrupted, "batch data length \(dataLength) is impossible for \(raw) raw bytes")
        }
        guard minAt <= maxAt else { throw EventLogError(.corrupted, "batch time range is reversed") }
        return BatchHeader(
            firstPosition: first, eventCount: count, rawLength: raw, minRecordedAt: minAt, maxRecordedAt: maxAt,
            dataLength: dataLength, dataChecksum: dataCRC, previousHash: previous, chainHash: chain
        )
    }

    /// Generous upper bound of an LZ4 frame for `rawLength` bytes (incompressible data plus
    /// frame and block overheads).
    static func maxFrameSize(rawLength: Int) -> Int {
        rawLength + rawLength / 255 + 64 + 8 * (rawLength / (1 << 20) + 1)
    }
}
