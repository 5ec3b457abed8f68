/// What the log keeps in memory about one sealed segment, persisted beside it as
/// `NAME.idx` so that opening a large log does not decode it. Rebuilt from the segment
/// when missing, unreadable or stale (the segment's size or chain differs).
struct SegmentIndex: Equatable {
    static let magic: UInt32 = 0x4959_4C54  // "TLYI"
    static let version: UInt16 = 1

    var firstPosition: LogPosition
    var segmentSize: Int
    var previousHash: [UInt8]
    var lastHash: [UInt8]
    var batches: [BatchLocation]
    /// Positions of each stream's events in this segment, in version order.
    var streams: [String: [LogPosition]]
    /// Results of the idempotency keys first used in this segment.
    var idempotency: [String: AppendResult]
    /// A read-only open leaves `streams` and `idempotency` undecoded: the index file's bytes
    /// (checksum already verified) and where that section starts. See `withStreams()`.
    var undecodedStreams: (bytes: [UInt8], offset: Int)?

    static func == (a: SegmentIndex, b: SegmentIndex) -> Bool {
        a.firstPosition == b.firstPosition && a.segmentSize == b.segmentSize && a.previousHash == b.previousHash
            && a.lastHash == b.lastHash && a.batches == b.batches && a.streams == b.streams && a.idempotency == b.idempotency
            && a.undecodedStreams?.bytes == b.undecodedStreams?.bytes && a.undecodedStreams?.offset == b.undecodedStreams?.offset
    }

    var nextPosition: LogPosition { batches.last.map { $0.lastPosition + 1 } ?? firstPosition }

    func encode() -> [UInt8] {
        var w = ByteWriter(capacity: 64 + batches.count * 24)
        w.writeLE(Self.magic)
        w.writeLE(Self.version)
        w.writeLE(UInt16(0))
        w.writeLE(firstPosition)
        w.writeLE(UInt64(segmentSize))
        w.bytes.append(contentsOf: previousHash)
        w.bytes.append(contentsOf: lastHash)
        w.writeVarint(UInt64(batches.count))
        for batch in batches {
            w.writeVarint(UInt64(batch.offset))
            w.writeVarint(batch.firstPosition)
            w.writeVarint(UInt64(batch.eventCount))
            w.writeVarint(UInt64(batch.dataLength))
        }
        w.writeVarint(UInt64(streams.count))
        for (name, positions) in streams.sorted(by: { $0.key < $1.key }) {
            w.writeLengthPrefixed(name)
            w.writeVarint(UInt64(positions.count))
            var previous: LogPosition = 0
            for position in positions {
                w.writeVarint(position - previous)
                previous = position
            }
        }
        w.writeVarint(UInt64(idempotency.count))
        for (key, result) in idempotency.sorted(by: { $0.key < $1.key }) {
            w.writeLengthPrefixed(key)
            w.writeVarint(result.positions.lowerBound)
            w.writeVarint(result.positions.upperBound)
            w.writeVarint(UInt64(result.streamVersions.count))
            for (stream, version) in result.streamVersions.sorted(by: { $0.key < $1.key }) {
                w.writeLengthPrefixed(stream)
                w.writeVarint(version)
            }
        }
        let crc = CRC32C.checksum(w.bytes)
        w.writeLE(crc)
        return w.bytes
    }

    /// Decodes an index file, checking the CRC and every count against the bytes present.
    /// `deferringStreams` stops after the batches (see `undecodedStreams`).
    static func decode(_ bytes: [UInt8], deferringStreams: Bool = false) throws -> SegmentIndex {
        guard bytes.count >= 4 + 8 + 8 + 64 + 4 else { throw EventLogError(.corrupted, "index file is too short") }
        return try bytes.withUnsafeBytes { (all) throws -> SegmentIndex in
            let body = UnsafeRawBufferPointer(rebasing: all[0..<all.count - 4])
            let stored = all.loadUnaligned(fromByteOffset: all.count - 4, as: UInt32.self).littleEndian
            guard CRC32C.checksum(body) == stored else { throw EventLogError(.corrupted, "index checksum mismatch") }
            var r = ByteReader(body)
            guard try r.readLE(UInt32.self, "index magic") == magic else { throw EventLogError(.corrupted, "not a segment index") }
            guard try r.readLE(UInt16.self, "index version") == version else { throw EventLogError(.corrupted, "unsupported index version") }
            _ = try r.readLE(UInt16.self, "index flags")
            let first = try r.readLE(UInt64.self, "first position")
            let size = try r.readLE(UInt64.self, "segment size")
            guard size <= UInt64(Int.max) else { throw EventLogError(.corrupted, "index segment size out of range") }
            let previous = Array(try r.readFixed(32, "previous hash"))
            let last = Array(try r.readFixed(32, "last hash"))
            // Every entry takes at least one byte, so no count may exceed the bytes left.
            let batchCount = Int(try r.readVarint("batch count", max: UInt64(r.remaining)))
            var batches: [BatchLocation] = []
            batches.reserveCapacity(batchCount)
            for _ in 0..<batchCount {
                let offset = try r.readVarint("batch offset", max: size)
                let position = try r.readVarint("batch position")
                let count = try r.readVarint("batch event count", max: UInt64(EventLimits.maxBatchEvents))
                let length = try r.readVarint("batch data length", max: UInt64(UInt32.max))
                guard count >= 1, position >= 1 else { throw EventLogError(.corrupted, "empty batch in index") }
                batches.append(BatchLocation(firstPosition: position, eventCount: UInt32(count), offset: Int(offset), dataLength: UInt32(length)))
            }
            if deferringStreams {
                return SegmentIndex(
                    firstPosition: first, segmentSize: Int(size), previousHash: previous, lastHash: last,
                    batches: batches, streams: [:], idempotency: [:], undecodedStreams: (bytes, r.offset)
                )
            }
            let (streams, keys) = try decodeStreams(&r)
            guard r.remaining == 0 else { throw EventLogError(.corrupted, "index has \(r.remaining) trailing bytes") }
            return SegmentIndex(
                firstPosition: first, segmentSize: Int(size), previousHash: previous, lastHash: last,
                batches: batches, streams: streams, idempotency: keys
            )
        }
    }

    /// The index with its streams and keys decoded (itself when they already are).
    func withStreams() throws -> SegmentIndex {
        guard let (bytes, offset) = undecodedStreams else { return self }
        var index = self
        index.undecodedStreams = nil
        (index.streams, index.idempotency) = try bytes.withUnsafeBytes { all in
            var r = ByteReader(UnsafeRawBufferPointer(rebasing: all[0..<all.count - 4]), offset: offset)
            let decoded = try Self.decodeStreams(&r)
            guard r.remaining == 0 else { throw EventLogError(.corrupted, "index has \(r.remaining) trailing bytes") }
            return decoded
        }
        return index
    }

    private static func decodeStreams(_ r: inout ByteReader) throws -> ([String: [LogPosition]], [String: AppendResult]) {
        let streamCount = Int(try r.readVarint("stream count", max: UInt64(r.remaining)))
        var streams: [String: [LogPosition]] = [:]
        streams.reserveCapacity(streamCount)
        for _ in 0..<streamCount {
            let name = try r.readString("stream", max: EventLimits.maxStreamBytes)
            let count = Int(try r.readVarint("stream event count", max: UInt64(r.remaining)))
            var positions: [LogPosition] = []
            positions.reserveCapacity(count)
            var previous: LogPosition = 0
            for _ in 0..<count {
                let delta = try r.readVarint("position delta")
                guard delta >= 1, previous <= UInt64.max - delta else { throw EventLogError(.corrupted, "stream positions not increasing") }
                previous += delta
                positions.append(previous)
            }
            streams[name] = positions
        }
        let keyCount = Int(try r.readVarint("key count", max: UInt64(r.remaining)))
        var keys: [String: AppendResult] = [:]
        for _ in 0..<keyCount {
            let key = try r.readString("idempotency key", max: EventLimits.maxIdempotencyKeyBytes)
            let low = try r.readVarint("first position")
            let high = try r.readVarint("last position")
            guard low >= 1, low <= high else { throw EventLogError(.corrupted, "idempotency positions reversed") }
            let n = Int(try r.readVarint("stream count", max: UInt64(r.remaining)))
            var versions: [String: UInt64] = [:]
            for _ in 0..<n {
                let stream = try r.readString("stream", max: EventLimits.maxStreamBytes)
                versions[stream] = try r.readVarint("version")
            }
            keys[key] = AppendResult(positions: low...high, streamVersions: versions, deduplicated: true)
        }
        return (streams, keys)
    }
}

extension ByteReader {
    mutating func readFixed(_ count: Int, _ what: StaticString) throws -> UnsafeRawBufferPointer {
        guard remaining >= count else { throw EventLogError(.corrupted, "input ends inside \(what)") }
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: base[offset..<offset + count])
    }
}

/// Accumulates the index of the segment being written or scanned.
struct SegmentIndexBuilder {
    var index: SegmentIndex

    init(firstPosition: LogPosition, previousHash: [UInt8]) {
        index = SegmentIndex(
            firstPosition: firstPosition, segmentSize: 0, previousHash: previousHash, lastHash: previousHash,
            batches: [], streams: [:], idempotency: [:]
        )
    }

    mutating func add(batch: BatchLocation, chainHash: [UInt8], events: [RecordedEvent]) {
        var touched: [String: [LogPosition]] = [:]
        var keys: [String: AppendResult] = [:]
        var run: (stream: String, event: RecordedEvent, positions: [LogPosition])?
        for event in events {
            if let current = run, current.event.sameStream(as: event) {
                run!.positions.append(event.position)
            } else {
                if let current = run { touched[current.stream, default: []].append(contentsOf: current.positions) }
                run = (event.stream, event, [event.position])
            }
            if event.fields.key.count > 0, let key = event.idempotencyKey {
                var entry = keys[key] ?? AppendResult(positions: event.position...event.position, streamVersions: [:], deduplicated: true)
                entry.positions = entry.positions.lowerBound...event.position
                entry.streamVersions[event.stream] = event.streamVersion
                keys[key] = entry
            }
        }
        if let current = run { touched[current.stream, default: []].append(contentsOf: current.positions) }
        add(batch: batch, chainHash: chainHash, streams: touched, keys: keys)
    }

    /// Adds a batch whose per-stream positions and idempotency results are already grouped.
    mutating func add(batch: BatchLocation, chainHash: [UInt8], streams: [String: [LogPosition]], keys: [String: AppendResult]) {
        index.batches.append(batch)
        index.lastHash = chainHash
        index.segmentSize = batch.offset + batch.totalSize
        for (stream, positions) in streams { index.streams[stream, default: []].append(contentsOf: positions) }
        for (key, result) in keys where index.idempotency[key] == nil { index.idempotency[key] = result }
    }
}
