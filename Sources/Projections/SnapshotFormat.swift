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

    /// Where a checked file's state is: its header's fields, each chunk's state bytes (offset
    /// in the file, length, CRC-32C) in order, and the trailer's counts.
    struct Framing: Sendable {
        var name: String
        var version: Int
        var position: LogPosition
        var recordedAt: Int64?
        var maxRecordedAt: Int64?
        var sections: UInt32
        var stateBytes: Int
        var chunks: [(offset: Int, length: Int, crc: UInt32)]
    }

    /// Checks the header, every chunk and the trailer of a file of `size` bytes, read through
    /// `read(offset, count)` (exactly `count` bytes, in bounds: the checks come first; a slice
    /// indexed from any start). Never traps; a file that fails a check is a reason.
    static func frame(size: Int, kind: Kind, read: (Int, Int) throws -> ArraySlice<UInt8>) -> Result<Framing, ProjectionError> {
        func bad(_ why: String) -> Result<Framing, ProjectionError> { .failure(ProjectionError(.corrupted, why)) }
        func le<T: FixedWidthInteger>(_: T.Type, _ bytes: ArraySlice<UInt8>, at offset: Int) -> T {
            var value: T = 0
            for i in (0..<MemoryLayout<T>.size).reversed() { value = value << 8 | T(truncatingIfNeeded: bytes[bytes.startIndex + offset + i]) }
            return value
        }
        /// `range` of `bytes`, counted from its start.
        func part(_ bytes: ArraySlice<UInt8>, _ range: Range<Int>) -> ArraySlice<UInt8> {
            bytes[(bytes.startIndex + range.lowerBound)..<(bytes.startIndex + range.upperBound)]
        }
        do {
            guard size >= 6 else { return bad("truncated: \(size) bytes, the header alone needs \(headerSize)") }
            // The header with the longest name it can have (u16 length) and the optional field.
            let head = try read(0, min(size, headerSize + Int(UInt16.max) + 8))
            guard part(head, 0..<4).elementsEqual(kind.magic) else { return bad("not a \(kind.label) file (bad magic)") }
            let format = le(UInt16.self, head, at: 4)
            guard format == kind.version else {
                let what = kind == .snapshot && format == 1 ? "snapshot format 1 (JSON state)" : "\(kind.label) format \(format)"
                return bad("\(what) is not read by this build, which reads format \(kind.version); the view is rebuilt from the log")
            }
            guard size >= headerSize else { return bad("truncated: \(size) bytes, the header alone needs \(headerSize)") }
            let nameLength = Int(le(UInt16.self, head, at: 6))
            guard nameLength >= 1, nameLength <= size - headerSize else {
                return bad("name length \(nameLength) does not fit in \(size) bytes")
            }
            let nameEnd = headerSize + nameLength
            let flags = le(UInt32.self, head, at: 32)
            // Flag bit 1: the largest recorded-at folded follows the name (8 bytes, in the CRC).
            let headerEnd = nameEnd + (flags & 2 == 2 ? 8 : 0)
            guard headerEnd <= size else { return bad("truncated: the header's max recorded-at is missing") }
            let headerCRC = CRC32C.checksum(part(head, headerSize..<headerEnd), continuing: CRC32C.checksum(part(head, 0..<40)))
            guard headerCRC == le(UInt32.self, head, at: 40) else { return bad("header checksum mismatch") }
            guard flags & ~3 == 0 else { return bad("unknown flags \(flags)") }
            let chunkSize = Int(le(UInt32.self, head, at: 36))
            guard (1...maximumChunkSize).contains(chunkSize) else { return bad("chunk size \(chunkSize) outside 1...\(maximumChunkSize)") }
            guard let name = String(validating: part(head, headerSize..<nameEnd), as: UTF8.self) else { return bad("name is not UTF-8") }
            let projectionVersion = le(Int64.self, head, at: 8)
            guard let intVersion = Int(exactly: projectionVersion) else { return bad("version \(projectionVersion) out of range") }
            var framing = Framing(
                name: name, version: intVersion, position: le(UInt64.self, head, at: 16),
                recordedAt: flags & 1 == 1 ? le(Int64.self, head, at: 24) : nil,
                maxRecordedAt: flags & 2 == 2 ? le(Int64.self, head, at: nameEnd) : nil,
                sections: 0, stateBytes: 0, chunks: []
            )

            var offset = headerEnd
            var chunkCRCs: UInt32 = 0
            while true {
                guard size - offset >= 4 else { return bad("truncated after \(framing.chunks.count) chunks: no trailer") }
                let frame = try read(offset, min(chunkFrameSize, size - offset))
                if part(frame, 0..<4).elementsEqual(trailerMagic) { break }
                let chunk = framing.chunks.count + 1
                guard frame.count == chunkFrameSize else { return bad("truncated inside the frame of chunk \(chunk)") }
                let length = Int(le(UInt32.self, frame, at: 0))
                guard (1...chunkSize).contains(length) else { return bad("chunk \(chunk) length \(length) outside 1...\(chunkSize)") }
                let start = offset + chunkFrameSize
                guard size - start >= length else {
                    return bad("truncated inside chunk \(chunk): \(length) bytes declared, \(size - start) remain")
                }
                let crc = le(UInt32.self, frame, at: 4)
                guard CRC32C.checksum(try read(start, length)) == crc else { return bad("chunk \(chunk) checksum mismatch") }
                chunkCRCs = CRC32C.checksum(part(frame, 4..<8), continuing: chunkCRCs)
                framing.chunks.append((start, length, crc))
                framing.stateBytes += length
                offset = start + length
            }
            guard size - offset == trailerSize else {
                return bad("trailer is \(size - offset) bytes, expected \(trailerSize)")
            }
            let trailer = try read(offset, trailerSize)
            guard CRC32C.checksum(part(trailer, 0..<28)) == le(UInt32.self, trailer, at: 28) else {
                return bad("trailer checksum mismatch")
            }
            let recordedChunks = le(UInt64.self, trailer, at: 4), recordedBytes = le(UInt64.self, trailer, at: 12)
            guard recordedChunks == UInt64(framing.chunks.count) else {
                return bad("the trailer records \(recordedChunks) chunks, the file holds \(framing.chunks.count)")
            }
            guard recordedBytes == UInt64(framing.stateBytes) else {
                return bad("the trailer records \(recordedBytes) state bytes, the chunks hold \(framing.stateBytes)")
            }
            guard le(UInt32.self, trailer, at: 24) == chunkCRCs else { return bad("chunk checksums do not match the trailer (chunks lost or reordered)") }
            framing.sections = le(UInt32.self, trailer, at: 20)
            return .success(framing)
        } catch let error as ProjectionError {
            return .failure(error)
        } catch {
            return .failure(ProjectionError(.io, "cannot be read: \(error)"))
        }
    }

    /// Checks a whole file in memory (`frame`), and joins the chunks' state bytes in place
    /// (so the caller holds the file's bytes once). Never traps.
    static func decode(_ file: consuming [UInt8], kind: Kind = .snapshot) -> Result<Snapshot, ProjectionError> {
        var bytes = file
        let framing: Framing
        switch frame(size: bytes.count, kind: kind, read: { offset, count in bytes[offset..<offset + count] }) {
        case .success(let checked): framing = checked
        case .failure(let error): return .failure(error)
        }
        var stateEnd = 0
        bytes.withUnsafeMutableBytes { raw in
            let base = raw.baseAddress!
            for chunk in framing.chunks {
                (base + stateEnd).copyMemory(from: base + chunk.offset, byteCount: chunk.length)
                stateEnd += chunk.length
            }
        }
        bytes.removeSubrange(stateEnd...)
        var snapshot = Snapshot(name: framing.name, version: framing.version, position: framing.position, recordedAt: framing.recordedAt,
                                payload: bytes, sections: framing.sections)
        snapshot.maxRecordedAt = framing.maxRecordedAt
        return .success(snapshot)
    }
}
