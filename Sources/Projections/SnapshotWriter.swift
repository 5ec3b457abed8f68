public import EventLog

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Streams a projection's state into a snapshot file (format 2, docs/snapshot-format.md):
/// the state's encoder appends values here, and every full chunk of `chunkSize` bytes is
/// framed (length, CRC-32C) and written at once, so at most one chunk of encoded state is
/// ever in memory, never a second whole copy of the state.
///
/// Values never fail to append: a failed `write(2)` is remembered and reported by
/// `finish()`, so the projections' encoders stay free of error handling.
public struct SnapshotWriter {
    /// Bytes of state per chunk: large enough that framing and syscalls cost nothing, small
    /// enough to be a negligible buffer.
    public static let chunkSize = 64 * 1024

    /// Encoded state not yet framed; shorter than `chunkSize` after every append.
    private var pending = ByteWriter(capacity: SnapshotWriter.chunkSize * 2)
    /// Memory mode: the whole file so far. File mode: scratch for one chunk's frame.
    private var output: [UInt8] = []
    private let fd: Int32
    private let path: String
    private var failure: ProjectionError?
    private var chunkCount: UInt64 = 0
    private var stateLength: UInt64 = 0
    /// CRC-32C over the chunks' CRCs (each u32 LE), in order: the trailer's guard against
    /// dropped or reordered chunks.
    private var chunkCRCs: UInt32 = 0
    /// Sections begun so far; checked against the trailer when the state is read back.
    var sectionCount: UInt32 = 0

    /// A writer to `fd` (file mode) or, with `fd` -1, into memory (see `finish`). Writes the
    /// header at once.
    init(fd: Int32, path: String, name: String, version: Int, position: LogPosition, recordedAt: Int64?,
         maxRecordedAt: Int64? = nil, kind: SnapshotFormat.Kind = .snapshot) {
        self.fd = fd
        self.path = path
        var header = ByteWriter(capacity: 64)
        header.bytes.append(contentsOf: kind.magic)
        header.writeLE(kind.version)
        header.writeLE(UInt16(truncatingIfNeeded: name.utf8.count))
        header.writeLE(Int64(version))
        header.writeLE(position)
        header.writeLE(recordedAt ?? 0)
        header.writeLE(UInt32(recordedAt == nil ? 0 : 1) | UInt32(maxRecordedAt == nil ? 0 : 2))
        header.writeLE(UInt32(Self.chunkSize))
        var name = Array(name.utf8)
        if let maxRecordedAt {
            var extra = ByteWriter(capacity: 8)
            extra.writeLE(maxRecordedAt)
            name += extra.bytes
        }
        header.writeLE(CRC32C.checksum(name[...], continuing: CRC32C.checksum(header.bytes[...])))
        header.bytes.append(contentsOf: name)
        emit(header.bytes[...])
    }

    // MARK: - Values (what a projection's encoder calls)

    /// Starts section `tag` of `count` elements: a tag byte and the count, so a reader
    /// checks both before it reads a single element.
    public mutating func section(_ tag: UInt8, count: Int) {
        sectionCount += 1
        pending.writeUInt8(tag)
        pending.writeVarint(UInt64(count))
        flushFullChunks()
    }

    public mutating func byte(_ value: UInt8) {
        pending.writeUInt8(value)
        flushFullChunks()
    }

    /// Unsigned LEB128.
    public mutating func unsigned(_ value: UInt64) {
        pending.writeVarint(value)
        flushFullChunks()
    }

    /// Zig-zag LEB128, for values that may be negative.
    public mutating func signed(_ value: Int64) {
        pending.writeZigZag(value)
        flushFullChunks()
    }

    public mutating func signed(_ value: Int) { signed(Int64(value)) }

    /// The IEEE 754 bit pattern, u64 LE: exact, NaN and signed zero included.
    public mutating func double(_ value: Double) {
        pending.writeLE(value.bitPattern)
        flushFullChunks()
    }

    /// UTF-8, length-prefixed.
    public mutating func string(_ value: String) {
        pending.writeLengthPrefixed(value)
        flushFullChunks()
    }

    /// Raw state bytes (for `SnapshotStore.encode` of an already encoded state).
    mutating func raw(_ bytes: [UInt8]) {
        pending.bytes.append(contentsOf: bytes)
        flushFullChunks()
    }

    // MARK: - Framing

    @inline(__always)
    private mutating func flushFullChunks() {
        guard pending.bytes.count >= Self.chunkSize else { return }
        var start = 0
        while pending.bytes.count - start >= Self.chunkSize {
            writeChunk(start..<start + Self.chunkSize)
            start += Self.chunkSize
        }
        pending.bytes.removeFirst(start)
    }

    private mutating func writeChunk(_ range: Range<Int>) {
        let crc = CRC32C.checksum(pending.bytes[range])
        var frame = ByteWriter(capacity: 8)
        frame.writeLE(UInt32(range.count))
        frame.writeLE(crc)
        chunkCRCs = CRC32C.checksum(frame.bytes[4..<8], continuing: chunkCRCs)
        chunkCount += 1
        stateLength += UInt64(range.count)
        emit(frame.bytes[...])
        emit(pending.bytes[range])
    }

    private mutating func emit(_ bytes: ArraySlice<UInt8>) {
        guard fd >= 0 else {
            output.append(contentsOf: bytes)
            return
        }
        guard failure == nil else { return }
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = systemWrite(fd, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    let code = errno
                    failure = ProjectionError(.io, "write \(path) failed: \(String(cString: strerror(code))) (errno \(code))")
                    return
                }
                offset += written
            }
        }
    }

    /// Frames what is left and writes the trailer. Throws the first write error; returns the
    /// whole file in memory mode, nothing in file mode.
    mutating func finish() throws -> [UInt8] {
        if !pending.bytes.isEmpty {
            writeChunk(0..<pending.bytes.count)
            pending.bytes.removeAll()
        }
        var trailer = ByteWriter(capacity: SnapshotFormat.trailerSize)
        trailer.bytes.append(contentsOf: SnapshotFormat.trailerMagic)
        trailer.writeLE(chunkCount)
        trailer.writeLE(stateLength)
        trailer.writeLE(sectionCount)
        trailer.writeLE(chunkCRCs)
        trailer.writeLE(CRC32C.checksum(trailer.bytes[...]))
        emit(trailer.bytes[...])
        if let failure { throw failure }
        return output
    }
}

/// `write(2)`, out of reach of the writer's own names.
private func systemWrite(_ fd: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, bytes, count)
}
