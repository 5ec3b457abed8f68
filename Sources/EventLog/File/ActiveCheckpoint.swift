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
    static let version: UInt16 = 1
    /// Magic … header checksum: see docs/log-format.md.
    static let headerSize = 124

    /// The checkpointed prefix of a segment: its index so far, and the bytes of the
    /// checkpoint file that hold it (appending continues there).
    struct Loaded {
        var index: SegmentIndex
        var validLength: Int
    }

    /// Encodes one record: the delta `delta` (batches from `delta.firstPosition`, starting at
    /// byte `startOffset` of the segment whose first position is `segmentFirst`).
    static func encode(_ delta: SegmentIndex, startOffset: Int, segmentFirst: LogPosition) -> [UInt8] {
        var payload = ByteWriter(capacity: delta.batches.count * 4 + delta.streams.count * 32)
        payload.writeVarint(UInt64(delta.batches.count))
        for batch in delta.batches {
            payload.writeVarint(UInt64(batch.eventCount))
            payload.writeVarint(UInt64(batch.dataLength))
        }
        // In name order, so that the same appends write the same bytes (a dictionary's order
        // differs from process to process).
        payload.writeVarint(UInt64(delta.streams.count))
        for (name, stream) in delta.streams.sorted(by: { $0.key < $1.key }) {
            payload.writeLengthPrefixed(name)
            payload.writeVarint(stream.firstVersion)
            payload.writeVarint(UInt64(stream.positions.count))
            var previous = delta.firstPosition - 1
            for position in stream.positions {
                payload.writeVarint(position - previous)
                previous = position
            }
        }
        payload.writeVarint(UInt64(delta.idempotency.count))
        for (key, result) in delta.idempotency.sorted(by: { $0.key < $1.key }) {
            payload.writeLengthPrefixed(key)
            payload.writeVarint(result.positions.lowerBound)
            payload.writeVarint(result.positions.upperBound)
            payload.writeVarint(UInt64(result.streamVersions.count))
            for (stream, version) in result.streamVersions.sorted(by: { $0.key < $1.key }) {
                payload.writeLengthPrefixed(stream)
                payload.writeVarint(version)
            }
        }
        var w = ByteWriter(capacity: headerSize + payload.bytes.count)
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
        w.writeLE(UInt32(payload.bytes.count))
        w.writeLE(CRC32C.checksum(payload.bytes))
        w.writeLE(CRC32C.checksum(w.bytes))
        w.bytes.append(contentsOf: payload.bytes)
        return w.bytes
    }

    /// The longest run of records of `path` that holds for `segment` (first position
    /// `firstPosition`, chain hash `previousHash` before it), merged; nil when none does.
    /// Never throws: a checkpoint that cannot be read is one not to use.
    static func load(path: String, segment: SystemFile, firstPosition: LogPosition, previousHash: [UInt8]) -> Loaded? {
        guard Directory.exists(path), let file = try? SystemFile.open(path, writable: false) else { return nil }
        defer { file.close() }
        guard let fileSize = try? file.size(), let segmentSize = try? segment.size() else { return nil }
        var merged = SegmentIndex(firstPosition: firstPosition, segmentSize: 0, previousHash: previousHash, lastHash: previousHash,
                                  batches: [], streams: [:], idempotency: [:])
        var good = 0
        var at = 0
        while fileSize - at >= headerSize {
            guard let header = try? file.read(count: headerSize, at: at),
                  let record = try? Record(header: header, fileRemaining: fileSize - at - headerSize, segmentSize: segmentSize),
                  record.segmentFirst == firstPosition, record.startOffset == merged.segmentSize,
                  record.firstPosition == merged.nextPosition, record.previousHash == merged.lastHash,
                  let payload = try? file.read(count: record.payloadLength, at: at + headerSize),
                  CRC32C.checksum(payload) == record.payloadChecksum,
                  (try? record.merge(payload: payload, into: &merged)) != nil
            else { break }
            at += headerSize + record.payloadLength
            // Only a prefix whose last batch is really in the segment counts.
            if endsWithClaimedBatch(merged, segment: segment) { good = at } else { return nil }
        }
        return good == 0 ? nil : Loaded(index: merged, validLength: good)
    }

    /// True when the segment's batch at the end of `index` is whole and carries its claimed
    /// position, length and chain hash (header and data checksums, chain hash recomputed).
    private static func endsWithClaimedBatch(_ index: SegmentIndex, segment: SystemFile) -> Bool {
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
        var payloadLength: Int
        var payloadChecksum: UInt32

        init(header: [UInt8], fileRemaining: Int, segmentSize: Int) throws {
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
                guard segmentFirst >= 1, first >= segmentFirst, next > first, start < end, end <= UInt64(segmentSize),
                      Int(length) <= fileRemaining
                else { throw EventLogError(.corrupted, "checkpoint header out of range") }
                fields = Record(segmentFirst: segmentFirst, startOffset: Int(start), endOffset: Int(end), firstPosition: first,
                                nextPosition: next, previousHash: previous, lastHash: last, payloadLength: Int(length),
                                payloadChecksum: checksum)
            }
            self = fields!
        }

        private init(segmentFirst: LogPosition, startOffset: Int, endOffset: Int, firstPosition: LogPosition, nextPosition: LogPosition,
                     previousHash: [UInt8], lastHash: [UInt8], payloadLength: Int, payloadChecksum: UInt32) {
            self.segmentFirst = segmentFirst
            self.startOffset = startOffset
            self.endOffset = endOffset
            self.firstPosition = firstPosition
            self.nextPosition = nextPosition
            self.previousHash = previousHash
            self.lastHash = lastHash
            self.payloadLength = payloadLength
            self.payloadChecksum = payloadChecksum
        }

        /// Decodes the payload and adds it to `index`, or throws leaving `index` unchanged.
        /// Batches must tile `startOffset..<endOffset` and `firstPosition..<nextPosition`;
        /// every stream and key position must lie in that range, in order. The record is
        /// decoded on its own and checked against `index` before `index` changes, so that
        /// `index` is never copied (it holds up to a whole segment's streams).
        func merge(payload: [UInt8], into index: inout SegmentIndex) throws {
            var delta = SegmentIndex(firstPosition: firstPosition, segmentSize: startOffset, previousHash: previousHash, lastHash: previousHash,
                                     batches: [], streams: [:], idempotency: [:])
            try payload.withUnsafeBytes { raw in
                var r = ByteReader(raw)
                let batchCount = Int(try r.readVarint("checkpoint batch count", max: UInt64(r.remaining)))
                guard batchCount >= 1 else { throw EventLogError(.corrupted, "checkpoint without batches") }
                var offset = startOffset
                var position = firstPosition
                for _ in 0..<batchCount {
                    let events = try r.readVarint("batch event count", max: UInt64(EventLimits.maxBatchEvents))
                    let length = try r.readVarint("batch data length", max: UInt64(EventLimits.maxBatchBytes) * 2)
                    guard events >= 1, position <= nextPosition - events else { throw EventLogError(.corrupted, "checkpoint batches past its positions") }
                    let batch = BatchLocation(firstPosition: position, eventCount: UInt32(events), offset: offset, dataLength: UInt32(length))
                    guard batch.totalSize <= endOffset - offset else { throw EventLogError(.corrupted, "checkpoint batches past its end") }
                    delta.batches.append(batch)
                    offset += batch.totalSize
                    position += events
                }
                guard offset == endOffset, position == nextPosition else { throw EventLogError(.corrupted, "checkpoint batches do not tile it") }
                let streamCount = Int(try r.readVarint("checkpoint stream count", max: UInt64(r.remaining)))
                for _ in 0..<streamCount {
                    let name = try r.readString("stream", max: EventLimits.maxStreamBytes)
                    let firstVersion = try r.readVarint("first version", max: UInt64.max >> 1)
                    let count = Int(try r.readVarint("stream event count", max: UInt64(r.remaining)))
                    guard count >= 1 else { throw EventLogError(.corrupted, "checkpoint stream without events") }
                    var positions: [LogPosition] = []
                    positions.reserveCapacity(count)
                    var previous = firstPosition - 1
                    for _ in 0..<count {
                        let step = try r.readVarint("position delta", max: nextPosition - 1 - previous)
                        guard step >= 1 else { throw EventLogError(.corrupted, "checkpoint stream positions not increasing") }
                        previous += step
                        positions.append(previous)
                    }
                    if let held = index.streams[name], held.nextVersion != firstVersion {
                        throw EventLogError(.corrupted, "checkpoint stream versions not contiguous")
                    }
                    guard delta.streams.updateValue(SegmentStream(firstVersion: firstVersion, positions: positions), forKey: name) == nil else {
                        throw EventLogError(.corrupted, "checkpoint stream listed twice")
                    }
                }
                let keyCount = Int(try r.readVarint("checkpoint key count", max: UInt64(r.remaining)))
                for _ in 0..<keyCount {
                    let key = try r.readString("idempotency key", max: EventLimits.maxIdempotencyKeyBytes)
                    let low = try r.readVarint("first position")
                    let high = try r.readVarint("last position")
                    guard low >= firstPosition, low <= high, high < nextPosition else { throw EventLogError(.corrupted, "checkpoint key positions outside it") }
                    let n = Int(try r.readVarint("key stream count", max: UInt64(r.remaining)))
                    guard n >= 1 else { throw EventLogError(.corrupted, "checkpoint key without streams") }
                    var versions: [String: UInt64] = [:]
                    for _ in 0..<n {
                        let stream = try r.readString("stream", max: EventLimits.maxStreamBytes)
                        versions[stream] = try r.readVarint("version")
                    }
                    if index.idempotency[key] == nil, delta.idempotency[key] == nil {
                        delta.idempotency[key] = AppendResult(positions: low...high, streamVersions: versions, deduplicated: true)
                    }
                }
                guard r.remaining == 0 else { throw EventLogError(.corrupted, "checkpoint payload has trailing bytes") }
            }
            delta.segmentSize = endOffset
            delta.lastHash = lastHash
            index.append(delta)
        }
    }
}

/// The writer's side of the checkpoint file: the delta since the last record, and where
/// the next record goes. A checkpoint that cannot be written costs only a longer scan at
/// the next open, so failures are swallowed (the delta is kept and written with the next).
struct CheckpointWriter {
    let path: String
    let segmentFirst: LogPosition
    private var file: SystemFile?
    /// Bytes of the checkpoint file that hold valid records; the next record is written there.
    private(set) var length: Int
    /// Batches, streams and keys written since the last record.
    private(set) var delta: SegmentIndex
    /// Segment offset the delta starts at.
    private(set) var deltaStart: Int

    init(path: String, segmentFirst: LogPosition, length: Int, delta: SegmentIndex, deltaStart: Int) {
        self.path = path
        self.segmentFirst = segmentFirst
        self.length = length
        self.delta = delta
        self.deltaStart = deltaStart
    }

    /// Bytes of segment written since the last record.
    var pendingBytes: Int { delta.batches.isEmpty ? 0 : delta.segmentSize - deltaStart }

    mutating func add(batch: BatchLocation, chainHash: [UInt8], streams: [String: SegmentStream], keys: [String: AppendResult]) {
        delta.add(batch: batch, chainHash: chainHash, streams: streams, keys: keys)
    }

    /// Appends the delta as one record and fsyncs it. The caller has made the segment's
    /// bytes up to the delta's end durable first: a record never claims bytes a crash could lose.
    mutating func write() throws {
        guard !delta.batches.isEmpty else { return }
        let bytes = ActiveCheckpoint.encode(delta, startOffset: deltaStart, segmentFirst: segmentFirst)
        if file == nil {
            let opened = try SystemFile.open(path, writable: true, create: true)
            // Whatever follows the valid records (a torn or stale record) goes.
            try opened.truncate(to: length)
            file = opened
        }
        do {
            try bytes.withUnsafeBytes { (raw) throws in try file!.write([raw], at: length) }
            try file!.sync()
        } catch {
            try? file!.truncate(to: length)
            throw error
        }
        length += bytes.count
        deltaStart = delta.segmentSize
        delta = SegmentIndex(firstPosition: delta.nextPosition, segmentSize: deltaStart, previousHash: delta.lastHash,
                             lastHash: delta.lastHash, batches: [], streams: [:], idempotency: [:])
    }

    func close() { file?.close() }
}
