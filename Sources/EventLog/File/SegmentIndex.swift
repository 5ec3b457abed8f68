/// One stream's events in one segment: the version of the first, and every position in
/// version order (versions run on without gaps, so the last is `firstVersion + count - 1`).
struct SegmentStream: Sendable, Equatable {
    var firstVersion: UInt64
    var positions: [LogPosition]

    var nextVersion: UInt64 { firstVersion + UInt64(positions.count) }
}

/// What one segment holds, as the writer (or a scan) accumulates it: its batches, its
/// streams and the idempotency keys first used in it. Encoded as `NAME.idx` when the
/// segment is sealed (docs/log-format.md, "Sealed segments and their index"); from then on
/// it is read through `SealedSegmentIndex`, never decoded whole.
struct SegmentIndex: Equatable {
    static let magic: UInt32 = 0x4959_4C54  // "TLYI"
    static let version: UInt16 = 2
    /// Entries are grouped into blocks of about this many bytes; one block is what a lookup reads.
    static let blockTarget = 4096

    var firstPosition: LogPosition
    var segmentSize: Int
    var previousHash: [UInt8]
    var lastHash: [UInt8]
    var batches: [BatchLocation]
    var streams: [String: SegmentStream]
    /// Results of the idempotency keys first used in this segment.
    var idempotency: [String: AppendResult]

    var nextPosition: LogPosition { batches.last.map { $0.lastPosition + 1 } ?? firstPosition }

    /// The index file's bytes: header, batches, stream blocks, fence and filter, key blocks,
    /// fence and filter.
    func encode() -> [UInt8] {
        let batchBytes = Self.encodeBatches(batches)
        let streamNames = streams.keys.sorted(by: utf8Precedes)
        let streamSections = Self.blocks(streamNames) { name, w in Self.writeStreamEntry(streams[name]!, into: &w) }
        let keyNames = idempotency.keys.sorted(by: utf8Precedes)
        let keySections = Self.blocks(keyNames) { key, w in Self.writeKeyEntry(idempotency[key]!, into: &w) }
        let streamFilter = IndexFilter(names: streamNames, count: streamNames.count)
        let keyFilter = IndexFilter(names: keyNames, count: keyNames.count)
        let sections: [[UInt8]] = [
            batchBytes, streamSections.blocks, streamSections.fence, streamFilter.bits, keySections.blocks, keySections.fence, keyFilter.bits,
        ]
        var w = ByteWriter(capacity: SealedSegmentIndex.headerSize + sections.reduce(0) { $0 + $1.count })
        w.bytes = Self.encodeHeader(
            firstPosition: firstPosition, segmentSize: segmentSize, previousHash: previousHash, lastHash: lastHash,
            counts: (batches.count, streams.count, idempotency.count),
            sections: sections.enumerated().map { i, bytes in (bytes.count, Self.blockSections.contains(i) ? 0 : CRC32C.checksum(bytes)) }
        )
        for section in sections { w.bytes.append(contentsOf: section) }
        return w.bytes
    }

    /// The sections whose CRC in the header is 0: each block has its own, in its fence.
    static let blockSections: Set<Int> = [1, 4]

    /// The index header (docs/log-format.md, "Index file"): `sections` are the seven
    /// sections' lengths and CRCs in order.
    static func encodeHeader(firstPosition: LogPosition, segmentSize: Int, previousHash: [UInt8], lastHash: [UInt8],
                             counts: (batches: Int, streams: Int, keys: Int), sections: [(length: Int, checksum: UInt32)]) -> [UInt8] {
        var w = ByteWriter(capacity: SealedSegmentIndex.headerSize)
        w.writeLE(Self.magic)
        w.writeLE(Self.version)
        w.writeLE(UInt16(0))
        w.writeLE(firstPosition)
        w.writeLE(UInt64(segmentSize))
        w.bytes.append(contentsOf: previousHash)
        w.bytes.append(contentsOf: lastHash)
        w.writeLE(UInt32(counts.batches))
        w.writeLE(UInt32(counts.streams))
        w.writeLE(UInt32(counts.keys))
        w.writeUInt8(UInt8(IndexFilter.defaultHashCount))
        w.bytes.append(contentsOf: [0, 0, 0])
        for section in sections {
            w.writeLE(UInt32(section.length))
            w.writeLE(section.checksum)
        }
        w.writeLE(CRC32C.checksum(w.bytes))
        return w.bytes
    }

    /// The batches section: per batch its offset, first position, event count, data length.
    static func encodeBatches<Batches: Sequence>(_ batches: Batches) -> [UInt8] where Batches.Element == BatchLocation {
        var w = ByteWriter(capacity: batches.underestimatedCount * 12)
        for batch in batches {
            w.writeVarint(UInt64(batch.offset))
            w.writeVarint(batch.firstPosition)
            w.writeVarint(UInt64(batch.eventCount))
            w.writeVarint(UInt64(batch.dataLength))
        }
        return w.bytes
    }

    /// A stream entry after its name: first version, count, absolute position deltas.
    static func writeStreamEntry(_ stream: SegmentStream, into w: inout ByteWriter) {
        w.writeVarint(stream.firstVersion)
        w.writeVarint(UInt64(stream.positions.count))
        var previous: LogPosition = 0
        for position in stream.positions {
            w.writeVarint(position - previous)
            previous = position
        }
    }

    /// A key entry after its key: first and last position, then its streams sorted by name.
    static func writeKeyEntry(_ result: AppendResult, into w: inout ByteWriter) {
        w.writeVarint(result.positions.lowerBound)
        w.writeVarint(result.positions.upperBound)
        w.writeVarint(UInt64(result.streamVersions.count))
        for (stream, version) in result.streamVersions.sorted(by: { utf8Precedes($0.key, $1.key) }) {
            w.writeLengthPrefixed(stream)
            w.writeVarint(version)
        }
    }

    /// Entries of sorted `names` in blocks of about `blockTarget` bytes, and the fence: per
    /// block its first name, offset, length, entry count and CRC-32C.
    private static func blocks(_ names: [String], entry: (String, inout ByteWriter) -> Void) -> (blocks: [UInt8], fence: [UInt8]) {
        var blocks = ByteWriter(capacity: names.count * 24)
        var fence = ByteWriter()
        var blockStart = 0
        var blockFirst: String?
        var blockCount = 0
        func close() {
            guard let first = blockFirst else { return }
            let block = blocks.bytes[blockStart...]
            fence.writeLengthPrefixed(first)
            fence.writeVarint(UInt64(blockStart))
            fence.writeVarint(UInt64(block.count))
            fence.writeVarint(UInt64(blockCount))
            fence.writeLE(block.withUnsafeBytes { CRC32C.checksum($0) })
            blockStart = blocks.bytes.count
            blockFirst = nil
            blockCount = 0
        }
        for name in names {
            if blockFirst == nil { blockFirst = name }
            blocks.writeLengthPrefixed(name)
            entry(name, &blocks)
            blockCount += 1
            if blocks.bytes.count - blockStart >= blockTarget { close() }
        }
        close()
        return (blocks.bytes, fence.bytes)
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
        let (streams, keys) = Self.group(events)
        index.add(batch: batch, chainHash: chainHash, streams: streams, keys: keys)
    }

    /// Adds a batch whose per-stream positions and idempotency results are already grouped.
    mutating func add(batch: BatchLocation, chainHash: [UInt8], streams: [String: SegmentStream], keys: [String: AppendResult]) {
        index.add(batch: batch, chainHash: chainHash, streams: streams, keys: keys)
    }

    /// One scanned batch's events grouped as the writer groups them: per stream its first
    /// version and positions, per idempotency key the first append's result.
    static func group(_ events: [RecordedEvent]) -> (streams: [String: SegmentStream], keys: [String: AppendResult]) {
        var touched: [String: SegmentStream] = [:]
        var keys: [String: AppendResult] = [:]
        var run: (stream: String, event: RecordedEvent, positions: [LogPosition])?
        func flush() {
            guard let current = run else { return }
            touched[current.stream, default: SegmentStream(firstVersion: current.event.streamVersion, positions: [])]
                .positions.append(contentsOf: current.positions)
        }
        for event in events {
            if let current = run, current.event.sameStream(as: event) {
                run!.positions.append(event.position)
            } else {
                flush()
                run = (event.stream, event, [event.position])
            }
            if event.fields.key.count > 0, let key = event.idempotencyKey {
                var entry = keys[key] ?? AppendResult(positions: event.position...event.position, streamVersions: [:], deduplicated: true)
                entry.positions = entry.positions.lowerBound...event.position
                entry.streamVersions[event.stream] = event.streamVersion
                keys[key] = entry
            }
        }
        flush()
        return (touched, keys)
    }
}

extension SegmentIndex {
    /// Adds the batches, streams and keys of `later`, which starts where this index ends.
    mutating func append(_ later: SegmentIndex) {
        batches.append(contentsOf: later.batches)
        if !later.batches.isEmpty {
            lastHash = later.lastHash
            segmentSize = later.segmentSize
        }
        for (name, stream) in later.streams {
            streams[name, default: SegmentStream(firstVersion: stream.firstVersion, positions: [])].positions.append(contentsOf: stream.positions)
        }
        for (key, result) in later.idempotency where idempotency[key] == nil { idempotency[key] = result }
    }

    /// Adds the next batch of the segment with its grouped streams and keys.
    mutating func add(batch: BatchLocation, chainHash: [UInt8], streams: [String: SegmentStream], keys: [String: AppendResult]) {
        batches.append(batch)
        lastHash = chainHash
        segmentSize = batch.offset + batch.totalSize
        for (name, stream) in streams {
            self.streams[name, default: SegmentStream(firstVersion: stream.firstVersion, positions: [])].positions.append(contentsOf: stream.positions)
        }
        for (key, result) in keys where idempotency[key] == nil { idempotency[key] = result }
    }
}
