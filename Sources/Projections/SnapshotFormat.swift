public import EventLog

/// Snapshot file format 2, byte by byte in docs/snapshot-format.md: a checksummed header,
/// the state in CRC-32C-framed chunks, and a checksummed trailer holding the counts that
/// are only known once the state has streamed out.
enum SnapshotFormat {
    /// Which files share this framing: a snapshot (`TLYS`, format 2) or an as-of checkpoint
    /// (`TLYA`, checkpoint format 1). Each reader accepts only its own kind, so a snapshot
    /// copied among checkpoints (or the reverse) is refused, not misread.
    struct Kind: Sendable, Hashable {
        var magic: [UInt8]
        var version: UInt16
        /// "snapshot", "checkpoint" or "interval rows", for messages.
        var label: String

        /// 1 was JSON of the whole state in one payload; 2 is the chunked binary state.
        static let snapshot = Kind(magic: Array("TLYS".utf8), version: 2, label: "snapshot")
        static let checkpoint = Kind(magic: Array("TLYA".utf8), version: 1, label: "checkpoint")
        static let intervalRows = Kind(magic: Array("TLYR".utf8), version: 1, label: "interval rows")
    }

    static let magic: [UInt8] = Kind.snapshot.magic
    static let trailerMagic: [UInt8] = Array("TLYE".utf8)
    static let version: UInt16 = Kind.snapshot.version
    /// Bytes before the name.
    static let headerSize = 44
    static let trailerSize = 32
    static let chunkFrameSize = 8
    /// The largest chunk size a reader accepts in a header.
    static let maximumChunkSize = 16 * 1024 * 1024

    /// Checks the header, every chunk and the trailer, and joins the chunks' state bytes in
    /// place (so a load holds the file's bytes once). Never traps.
    static func decode(_ file: consuming [UInt8], kind: Kind = .snapshot) -> Result<Snapshot, ProjectionError> {
        var bytes = file
        func bad(_ why: String) -> Result<Snapshot, ProjectionError> { .failure(ProjectionError(.corrupted, why)) }
        func read<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
            var value: T = 0
            for i in (0..<MemoryLayout<T>.size).reversed() { value = value << 8 | T(truncatingIfNeeded: bytes[offset + i]) }
            return value
        }
        guard bytes.count >= 6 else { return bad("truncated: \(bytes.count) bytes, the header alone needs \(headerSize)") }
        guard bytes[0..<4].elementsEqual(kind.magic) else { return bad("not a \(kind.label) file (bad magic)") }
        let format = read(UInt16.self, at: 4)
        guard format == kind.version else {
            let what = kind == .snapshot && format == 1 ? "snapshot format 1 (JSON state)" : "\(kind.label) format \(format)"
            return bad("\(what) is not read by this build, which reads format \(kind.version); the view is rebuilt from the log")
        }
        guard bytes.count >= headerSize else { return bad("truncated: \(bytes.count) bytes, the header alone needs \(headerSize)") }
        let nameLength = Int(read(UInt16.self, at: 6))
        guard nameLength >= 1, nameLength <= bytes.count - headerSize else {
            return bad("name length \(nameLength) does not fit in \(bytes.count) bytes")
        }
        let nameEnd = headerSize + nameLength
        let flags = read(UInt32.self, at: 32)
        // Flag bit 1: the largest recorded-at folded follows the name (8 bytes, in the CRC).
        let headerEnd = nameEnd + (flags & 2 == 2 ? 8 : 0)
        guard headerEnd <= bytes.count else { return bad("truncated: the header's max recorded-at is missing") }
        let headerCRC = CRC32C.checksum(bytes[headerSize..<headerEnd], continuing: CRC32C.checksum(bytes[0..<40]))
        guard headerCRC == read(UInt32.self, at: 40) else { return bad("header checksum mismatch") }
        guard flags & ~3 == 0 else { return bad("unknown flags \(flags)") }
        let chunkSize = Int(read(UInt32.self, at: 36))
        guard (1...maximumChunkSize).contains(chunkSize) else { return bad("chunk size \(chunkSize) outside 1...\(maximumChunkSize)") }
        guard let name = String(validating: bytes[headerSize..<nameEnd], as: UTF8.self) else { return bad("name is not UTF-8") }
        let projectionVersion = read(Int64.self, at: 8)
        guard let intVersion = Int(exactly: projectionVersion) else { return bad("version \(projectionVersion) out of range") }

        let position = read(UInt64.self, at: 16)
        let recordedAt = flags & 1 == 1 ? read(Int64.self, at: 24) : nil
        let maxRecordedAt = flags & 2 == 2 ? read(Int64.self, at: nameEnd) : nil

        // Chunks, each moved down to follow the previous one's state bytes.
        var offset = headerEnd
        var stateEnd = 0
        var chunks: UInt64 = 0
        var chunkCRCs: UInt32 = 0
        while true {
            guard bytes.count - offset >= 4 else { return bad("truncated after \(chunks) chunks: no trailer") }
            if bytes[offset..<offset + 4].elementsEqual(trailerMagic) { break }
            guard bytes.count - offset >= chunkFrameSize else { return bad("truncated inside the frame of chunk \(chunks + 1)") }
            let length = Int(read(UInt32.self, at: offset))
            guard (1...chunkSize).contains(length) else { return bad("chunk \(chunks + 1) length \(length) outside 1...\(chunkSize)") }
            let start = offset + chunkFrameSize
            guard bytes.count - start >= length else {
                return bad("truncated inside chunk \(chunks + 1): \(length) bytes declared, \(bytes.count - start) remain")
            }
            let crc = read(UInt32.self, at: offset + 4)
            guard CRC32C.checksum(bytes[start..<start + length]) == crc else { return bad("chunk \(chunks + 1) checksum mismatch") }
            chunkCRCs = CRC32C.checksum(bytes[(offset + 4)..<(offset + 8)], continuing: chunkCRCs)
            let destination = stateEnd
            bytes.withUnsafeMutableBytes { raw in
                let base = raw.baseAddress!
                (base + destination).copyMemory(from: base + start, byteCount: length)
            }
            stateEnd += length
            chunks += 1
            offset = start + length
        }
        guard bytes.count - offset == trailerSize else {
            return bad("trailer is \(bytes.count - offset) bytes, expected \(trailerSize)")
        }
        guard CRC32C.checksum(bytes[offset..<offset + 28]) == read(UInt32.self, at: offset + 28) else {
            return bad("trailer checksum mismatch")
        }
        guard read(UInt64.self, at: offset + 4) == chunks else { return bad("the trailer records \(read(UInt64.self, at: offset + 4)) chunks, the file holds \(chunks)") }
        guard read(UInt64.self, at: offset + 12) == UInt64(stateEnd) else { return bad("the trailer records \(read(UInt64.self, at: offset + 12)) state bytes, the chunks hold \(stateEnd)") }
        guard read(UInt32.self, at: offset + 24) == chunkCRCs else { return bad("chunk checksums do not match the trailer (chunks lost or reordered)") }
        let sections = read(UInt32.self, at: offset + 20)
        bytes.removeSubrange(stateEnd...)
        var snapshot = Snapshot(name: name, version: intVersion, position: position, recordedAt: recordedAt, payload: bytes, sections: sections)
        snapshot.maxRecordedAt = maxRecordedAt
        return .success(snapshot)
    }
}
