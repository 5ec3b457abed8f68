/// The active segment's checkpoint file, `NAME.ckp`: what a scan of the segment's first
/// bytes would find (batches, streams, idempotency keys), so that opening scans only the
/// tail written after the last checkpoint instead of the whole segment (up to its full
/// size). The file is a run of records, each the delta of one stretch of batches; the
/// writer appends one every `FileLog.Options.checkpointBytes` of segment and at close.
/// Format: docs/log-format.md, "The active segment's checkpoint".
///
/// A checkpoint is a cache, never the truth: a record is used only if its checksums,
/// version and bounds hold, it continues the one before it exactly, and the segment's batch
/// at its end carries the chain hash it claims (read and checked whole; if it does not, the
/// checkpoint is another segment's and none of it is used). Anything else (damaged, torn,
/// stale, another version) stops the loading there, and the segment is scanned from the
/// last record that held.
enum ActiveCheckpoint {
    static let magic: UInt32 = 0x4359_4C54  // "TLYC"
    /// Version 1 held each record's streams and keys as one list that open decoded whole;
    /// version 2 records are index images read like a sealed segment's index.
    static let version: UInt16 = 2
    /// Magic … header checksum: see docs/log-format.md.
    static let headerSize = 124

    /// The checkpointed prefix of a segment: one opened index per record (stream and key
    /// entries stay on disk), the batches they hold, and the bytes of the checkpoint file
    /// that hold them (appending continues there).
    struct Loaded {
        var records: [SealedSegmentIndex]
        var validLength: Int
        var batches: [BatchLocation] { records.flatMap(\.batches) }
        var segmentSize: Int { records.last?.segmentSize ?? 0 }
        var nextPosition: LogPosition { records.last!.nextPosition }
        var lastHash: [UInt8] { records.last!.lastHash }
    }

    /// Encodes one record: the delta `delta` (batches from `delta.firstPosition`, starting at
    /// byte `startOffset` of the segment whose first position is `segmentFirst`) as a record
    /// header followed by the delta's index image (`SegmentIndex.encode`).
    static func encode(_ delta: SegmentIndex, startOffset: Int, segmentFirst: LogPosition) -> [UInt8] {
        let payload = delta.encode()
        var w = ByteWriter(capacity: headerSize + payload.count)
        w.writeLE(magic)
        w.writeLE(version)
        w.writeLE(UInt16(0))
        w.writeLE(segmentFirst)
        w.writeLE(UInt64(startOffset))
        w.writeLE(UInt64(delta.segmentSize))
        w.writeLE(delta.firstPosition)
        w.writeLE(delta.nextPosition)
        w.bytes.append(contentsOf: delta.previousHash)
        w.bytes.append(contentsOf: delta.lastHash)
        w.writeLE(UInt32(payload.count))
        w.writeLE(CRC32C.checksum(payload[0..<SealedSegmentIndex.headerSize]))
        w.writeLE(CRC32C.checksum(w.bytes))
        w.bytes.append(contentsOf: payload)
        return w.bytes
    }

    /// The longest run of records of `path` that holds for `segment` (first position
    /// `firstPosition`, chain hash `previousHash` before it); nil when none does. Reads each
    /// record's header, its index's header, batches, fences and filters, and the segment's
    /// batch at its end; not its stream or key entries. Never throws: a checkpoint that
    /// cannot be read is one not to use.
    static func load(path: String, segment: SystemFile, firstPosition: LogPosition, previousHash: [UInt8]) -> Loaded? {
        guard Directory.exists(path), let file = try? SystemFile.open(path, writable: false) else { return nil }
        guard let fileSize = try? file.size(), let segmentSize = try? segment.size() else { return nil }
        var records: [SealedSegmentIndex] = []
        var at = 0
        var (end, next, hash) = (0, firstPosition, previousHash)
        while fileSize - at >= headerSize {
            guard let record = try? Record(file: file, at: at, fileSize: fileSize, segmentSize: segmentSize),
                  record.segmentFirst == firstPosition, record.startOffset == end,
                  record.firstPosition == next, record.previousHash == hash,
                  let index = try? record.open(file: file)
            else { break }
            // Only a run whose last batch is really in the segment counts.
            guard endsWithClaimedBatch(index, segment: segment) else { return nil }
            records.append(index)
            at += headerSize + record.payloadLength
            (end, next, hash) = (index.segmentSize, index.nextPosition, index.lastHash)
        }
        return records.isEmpty ? nil : Loaded(records: records, validLength: at)
    }

    /// Opens the record written at `offset` of the checkpoint file (by this process): the
    /// writer's view of what it just wrote, checked as `load` checks it.
    static func open(file: SystemFile, at offset: Int, segmentSize: Int) throws -> SealedSegmentIndex {
        let record = try Record(file: file, at: offset, fileSize: try file.size(), segmentSize: segmentSize)
        return try record.open(file: file)
    }
    /// True when the segment's batch at the end of `index` is whole and carries its claimed
    /// position, length and chain hash (header and data checksums, chain hash recomputed).
    private static func endsWithClaimedBatch(_ index: SealedSegmentIndex, segment: SystemFile) -> Bool {
        guard let last = index.batches.last,
              let framed = try? segment.read(count: BatchHeader.framedSize, at: last.offset),
              let header = try? framed.withUnsafeBytes({ (b) throws in try BatchHeader.parse(b) }),
              header.firstPosition == last.firstPosition, header.eventCount == last.eventCount,
              header.dataLength == last.dataLength, header.chainHash == index.lastHash,
              let frame = try? segment.read(count: Int(header.dataLength), at: last.offset + BatchHeader.framedSize)
        else { return false }
        return frame.withUnsafeBytes { f in
            CRC32C.checksum(f) == header.dataChecksum && header.computeChainHash(dataFrame: f) == header.chainHash
        }
    }

    /// One record's header, checked: checksum, magic, version, and every field against the
    /// file's and the segment's bounds.
    private struct Record {
        var segmentFirst: LogPosition
        var startOffset: Int
        var endOffset: Int
        var firstPosition: LogPosition
        var nextPosition: LogPosition
        var previousHash: [UInt8]
        var lastHash: [UInt8]
        /// Where the record's index image starts in the checkpoint file.
        var payloadOffset: Int
        var payloadLength: Int
        var payloadChecksum: UInt32

        init(file: SystemFile, at offset: Int, fileSize: Int, segmentSize: Int) throws {
            guard offset >= 0, fileSize - offset >= ActiveCheckpoint.headerSize else { throw EventLogError(.corrupted, "checkpoint ends inside a record header") }
            let header = try file.read(count: ActiveCheckpoint.headerSize, at: offset)
            var fields: Record?
            try header.withUnsafeBytes { all in
                let stored = all.loadUnaligned(fromByteOffset: ActiveCheckpoint.headerSize - 4, as: UInt32.self).littleEndian
                guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: all[0..<ActiveCheckpoint.headerSize - 4])) == stored else {
                    throw EventLogError(.corrupted, "checkpoint header checksum mismatch")
                }
                var r = ByteReader(all)
                guard try r.readLE(UInt32.self, "checkpoint magic") == ActiveCheckpoint.magic,
                      try r.readLE(UInt16.self, "checkpoint version") == ActiveCheckpoint.version
                else { throw EventLogError(.corrupted, "not a version \(ActiveCheckpoint.version) checkpoint") }
                _ = try r.readLE(UInt16.self, "checkpoint flags")
                let segmentFirst = try r.readLE(UInt64.self, "segment first position")
                let start = try r.readLE(UInt64.self, "start offset")
                let end = try r.readLE(UInt64.self, "end offset")
                let first = try r.readLE(UInt64.self, "first position")
                let next = try r.readLE(UInt64.self, "next position")
                let previous = Array(try r.readFixed(32, "previous hash"))
                let last = Array(try r.readFixed(32, "last hash"))
                let length = try r.readLE(UInt32.self, "payload length")
                let checksum = try r.readLE(UInt32.self, "payload checksum")
                let remaining = fileSize - offset - ActiveCheckpoint.headerSize
                guard segmentFirst >= 1, first >= segmentFirst, next > first, start < end, end <= UInt64(segmentSize),
                      Int(length) >= SealedSegmentIndex.headerSize, Int(length) <= remaining
                else { throw EventLogError(.corrupted, "checkpoint header out of range") }
                fields = Record(segmentFirst: segmentFirst, startOffset: Int(start), endOffset: Int(end), firstPosition: first,
                                nextPosition: next, previousHash: previous, lastHash: last,
                                payloadOffset: offset + ActiveCheckpoint.headerSize, payloadLength: Int(length), payloadChecksum: checksum)
            }
            guard let fields else { throw EventLogError(.corrupted, "checkpoint header unreadable") }
            self = fields
        }

        private init(segmentFirst: LogPosition, startOffset: Int, endOffset: Int, firstPosition: LogPosition, nextPosition: LogPosition,
                     previousHash: [UInt8], lastHash: [UInt8], payloadOffset: Int, payloadLength: Int, payloadChecksum: UInt32) {
            self.segmentFirst = segmentFirst
            self.startOffset = startOffset
            self.endOffset = endOffset
            self.firstPosition = firstPosition
            self.nextPosition = nextPosition
            self.previousHash = previousHash
            self.lastHash = lastHash
            self.payloadOffset = payloadOffset
            self.payloadLength = payloadLength
            self.payloadChecksum = payloadChecksum
        }

        /// Opens the record's index image in place and checks it against the header: the
        /// payload checksum (of the image's header), and the same stretch of the segment
        /// (positions, byte range, chain hashes). Its batches must tile that stretch.
        func open(file: SystemFile) throws -> SealedSegmentIndex {
            let imageHeader = try file.read(count: SealedSegmentIndex.headerSize, at: payloadOffset)
            guard CRC32C.checksum(imageHeader) == payloadChecksum else { throw EventLogError(.corrupted, "checkpoint payload checksum mismatch") }
            let index = try SealedSegmentIndex(source: .region(file, offset: payloadOffset, length: payloadLength), startOffset: startOffset)
            guard index.firstPosition == firstPosition, index.nextPosition == nextPosition, index.segmentSize == endOffset,
                  index.previousHash == previousHash, index.lastHash == lastHash
            else { throw EventLogError(.corrupted, "checkpoint record's index does not match its header") }
            return index
        }
    }
}

/// The writer's side of the checkpoint file: the delta since the last record, the records
/// so far (opened in place, shared with `FileLogState`), and where the next record goes. A
/// checkpoint that cannot be written costs only a longer scan at the next open, so failures
/// are swallowed by the caller (the delta is kept and written with the next record).
struct CheckpointWriter {
    let path: String
    let segmentFirst: LogPosition
    private var file: SystemFile?
    /// A read-only descriptor the written records are read through; never closed here, so
    /// that lookups through records still held by the state outlive a seal's `close`.
    private var reader: SystemFile?
    /// Bytes of the checkpoint file that hold valid records; the next record is written there.
    private(set) var length: Int
    /// The records of the segment so far, oldest first.
    private(set) var records: [SealedSegmentIndex]
    /// Batches, streams and keys written since the last record.
    private(set) var delta: SegmentIndex
    /// Segment offset the delta starts at.
    private(set) var deltaStart: Int

    init(path: String, segmentFirst: LogPosition, length: Int, records: [SealedSegmentIndex] = [], delta: SegmentIndex, deltaStart: Int) {
        self.path = path
        self.segmentFirst = segmentFirst
        self.length = length
        self.records = records
        self.delta = delta
        self.deltaStart = deltaStart
    }

    /// Bytes of segment written since the last record.
    var pendingBytes: Int { delta.batches.isEmpty ? 0 : delta.segmentSize - deltaStart }

    mutating func add(batch: BatchLocation, chainHash: [UInt8], streams: [String: SegmentStream], keys: [String: AppendResult]) {
        delta.add(batch: batch, chainHash: chainHash, streams: streams, keys: keys)
    }

    /// Appends the delta as one record, fsyncs it and returns it opened in place (nil when
    /// there was nothing to write). The caller has made the segment's bytes up to the
    /// delta's end durable first: a record never claims bytes a crash could lose.
    mutating func write(segmentSize: Int) throws -> SealedSegmentIndex? {
        guard !delta.batches.isEmpty else { return nil }
        let bytes = ActiveCheckpoint.encode(delta, startOffset: deltaStart, segmentFirst: segmentFirst)
        let file: SystemFile
        if let open = self.file {
            file = open
        } else {
            file = try SystemFile.open(path, writable: true, create: true)
            // Whatever follows the valid records (a torn or stale record) goes.
            try file.truncate(to: length)
            self.file = file
        }
        let record: SealedSegmentIndex
        do {
            try bytes.withUnsafeBytes { (raw) throws in try file.write([raw], at: length) }
            try file.sync()
            if reader == nil { reader = try SystemFile.open(path, writable: false) }
            record = try ActiveCheckpoint.open(file: reader!, at: length, segmentSize: segmentSize)
        } catch {
            try? file.truncate(to: length)
            throw error
        }
        length += bytes.count
        records.append(record)
        deltaStart = delta.segmentSize
        delta = SegmentIndex(firstPosition: delta.nextPosition, segmentSize: deltaStart, previousHash: delta.lastHash,
                             lastHash: delta.lastHash, batches: [], streams: [:], idempotency: [:])
        return record
    }

    func close() { file?.close() }
}
