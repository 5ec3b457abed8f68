/// A sealed segment and its opened index.
struct SealedSegment {
    var name: String
    var path: String
    var index: SealedSegmentIndex
}

/// The streams and idempotency keys on disk: the active segment's checkpoint records and
/// every sealed segment's index. Lookups go newest first (records, then segments) through
/// each index's filter and stop at the first hit, with a bounded cache of stream counts in
/// front (counts up to the end of the last record). Nothing here grows with the streams or
/// keys in the history (only the per-index fences, filters and batch lists). Lives in
/// `FileLogState`, under its mutex.
struct SealedIndexes {
    let directory: String
    /// Rebuilt indexes are written back only by a writable open.
    let writable: Bool
    private(set) var segments: [SealedSegment] = []
    /// The active segment's checkpoint records, oldest first: each indexes one stretch of it.
    private(set) var records: [SealedSegmentIndex] = []
    /// The active segment's path, which a damaged record is rebuilt from.
    private(set) var activePath = ""
    private(set) var cache: StreamVersionCache
    /// Sealed segments whose index failed a check at a lookup and was rebuilt from the segment.
    private(set) var rebuiltAtLookup: [String] = []

    init(directory: String, writable: Bool, cacheCapacity: Int) {
        self.directory = directory
        self.writable = writable
        self.cache = StreamVersionCache(capacity: cacheCapacity)
    }

    /// Adds the next sealed segment. `activeStreams` are the streams it holds as the
    /// in-memory map knew them (each with its whole count), which the cache takes.
    mutating func append(_ segment: SealedSegment, activeStreams: [String: SegmentStream]) {
        warm(with: activeStreams)
        segments.append(segment)
    }

    mutating func removeLast() -> SealedSegment? { segments.popLast() }

    /// Caches the counts of streams that leave memory for disk: `nextVersion` of the
    /// in-memory map is the stream's whole count, so the next append to one of them (most
    /// streams of a bulk write come back soon) costs a dictionary lookup instead of a filter
    /// probe and a block read per record. The cache stays within its capacity (CLOCK).
    private mutating func warm(with streams: [String: SegmentStream]) {
        for (name, stream) in streams { cache.set(name, count: stream.nextVersion) }
    }

    /// The checkpoint records of the active segment at `path`, as opening found them.
    mutating func setRecords(_ loaded: [SealedSegmentIndex], segmentPath: String) {
        records = loaded
        activePath = segmentPath
    }

    /// Adds the active segment's next record. `streams` are the streams it holds as the
    /// in-memory map knew them (each with its whole count), which the cache takes.
    mutating func appendRecord(_ record: SealedSegmentIndex, streams: [String: SegmentStream]) {
        warm(with: streams)
        records.append(record)
    }

    /// The active segment was sealed (its index holds what its records did): the next one
    /// at `path` starts without records.
    mutating func startActive(segmentPath: String) {
        records = []
        activePath = segmentPath
    }

    /// Events of `stream` in the sealed segments (its next version after them).
    mutating func count(of stream: String) throws -> UInt64 {
        // Nothing on disk yet (a young log): no lookup, and no cache entry to evict.
        if records.isEmpty && segments.isEmpty { return 0 }
        if let cached = cache.count(of: stream) { return cached }
        var found: UInt64 = 0
        search: do {
            for i in records.indices.reversed() {
                if let entry = try lookUpRecord(i, { try $0.stream(stream) }) {
                    found = entry.nextVersion
                    break search
                }
            }
            for i in segments.indices.reversed() {
                if let entry = try lookUp(i, { try $0.stream(stream) }) {
                    found = entry.nextVersion
                    break search
                }
            }
        }
        cache.set(stream, count: found)
        return found
    }

    /// Positions of `stream`'s versions `version ..< version + limit` held by sealed segments.
    mutating func positions(of stream: String, fromVersion version: UInt64, limit: Int) throws -> [LogPosition] {
        var runs: [SegmentStream] = []
        search: do {
            for i in records.indices.reversed() {
                guard let entry = try lookUpRecord(i, { try $0.stream(stream) }) else { continue }
                runs.append(entry)
                if entry.firstVersion <= version { break search }
            }
            for i in segments.indices.reversed() {
                guard let entry = try lookUp(i, { try $0.stream(stream) }) else { continue }
                runs.append(entry)
                if entry.firstVersion <= version { break search }
            }
        }
        var positions: [LogPosition] = []
        for run in runs.reversed() where run.nextVersion > version {
            let start = Int(version > run.firstVersion ? version - run.firstVersion : 0)
            let take = min(run.positions.count - start, limit - positions.count)
            if take <= 0 { break }
            positions += run.positions[start..<start + take]
        }
        return positions
    }

    /// The first append's result of a key used in a sealed segment.
    mutating func key(_ key: String) throws -> AppendResult? {
        for i in records.indices.reversed() {
            if let result = try lookUpRecord(i, { try $0.key(key) }) { return result }
        }
        for i in segments.indices.reversed() {
            if let result = try lookUp(i, { try $0.key(key) }) { return result }
        }
        return nil
    }

    /// Runs a lookup in segment `i`'s index; an index found damaged is rebuilt from its
    /// segment (never trusted) and the lookup runs again on the rebuilt one.
    private mutating func lookUp<T>(_ i: Int, _ body: (SealedSegmentIndex) throws -> T) throws -> T {
        do {
            return try body(segments[i].index)
        } catch is IndexBlockDamaged {
        } catch let error as EventLogError where error.code == .corrupted {
        }
        let old = segments[i].index
        segments[i].index = try Self.rebuild(
            segment: segments[i].name, directory: directory, firstPosition: old.firstPosition,
            previousHash: old.previousHash, write: writable
        )
        rebuiltAtLookup.append(segments[i].name)
        return try body(segments[i].index)
    }

    /// Runs a lookup in record `i`; a record found damaged is rebuilt in memory from its
    /// stretch of the active segment (the file stays as it is: the next record, the seal or
    /// the next open replaces it) and the lookup runs again.
    private mutating func lookUpRecord<T>(_ i: Int, _ body: (SealedSegmentIndex) throws -> T) throws -> T {
        do {
            return try body(records[i])
        } catch is IndexBlockDamaged {
        } catch let error as EventLogError where error.code == .corrupted {
        }
        records[i] = try Self.rebuildRecord(records[i], segmentPath: activePath)
        rebuiltAtLookup.append((activePath.split(separator: "/").last.map(String.init) ?? activePath) + " (checkpoint record)")
        return try body(records[i])
    }

    /// Scans the stretch of the active segment that `record` describes and returns its
    /// index, held in memory. A stretch that does not scan cleanly is damage: `.corrupted`.
    static func rebuildRecord(_ record: SealedSegmentIndex, segmentPath: String) throws -> SealedSegmentIndex {
        guard let start = record.batches.first?.offset else { throw EventLogError(.corrupted, "checkpoint record without batches") }
        let file = try SystemFile.open(segmentPath, writable: false)
        defer { file.close() }
        var builder = SegmentIndexBuilder(firstPosition: record.firstPosition, previousHash: record.previousHash)
        builder.index.segmentSize = start
        let scan = try SegmentScanner.scan(file, from: start, to: record.segmentSize, expectedFirstPosition: record.firstPosition,
                                           previousHash: record.previousHash) { header, location, events throws in
            builder.add(batch: location, chainHash: header.chainHash, events: events)
        }
        guard case .clean = scan.end, scan.validLength == record.segmentSize, scan.lastHash == record.lastHash else {
            throw EventLogError(.corrupted, "\(segmentPath): bytes \(start)…\(record.segmentSize) do not scan cleanly; inspect it with `replay verify`")
        }
        return try SealedSegmentIndex(source: .memory(builder.index.encode()), startOffset: start)
    }

    /// Scans a sealed segment and returns its index, written to `NAME.idx` atomically (temporary
    /// file, fsync, rename, directory fsync) when `write`, else held in memory. A segment
    /// that does not scan cleanly is damage: `.corrupted`.
    static func rebuild(segment name: String, directory: String, firstPosition: LogPosition, previousHash: [UInt8], write: Bool) throws -> SealedSegmentIndex {
        let file = try SystemFile.open(directory + "/" + name, writable: false)
        defer { file.close() }
        var builder = SegmentIndexBuilder(firstPosition: firstPosition, previousHash: previousHash)
        let scan = try SegmentScanner.scan(file, expectedFirstPosition: firstPosition, previousHash: previousHash) {
            header, location, events throws in builder.add(batch: location, chainHash: header.chainHash, events: events)
        }
        guard case .clean = scan.end, !builder.index.batches.isEmpty else {
            throw EventLogError(.corrupted, "\(directory)/\(name): sealed segment does not scan cleanly; inspect it with `replay verify`")
        }
        return try install(builder.index, segment: name, directory: directory, write: write)
    }

    /// Encodes `index` and opens it: from the written file, or from memory.
    static func install(_ index: SegmentIndex, segment name: String, directory: String, write: Bool) throws -> SealedSegmentIndex {
        let bytes = index.encode()
        guard write else { return try SealedSegmentIndex(source: .memory(bytes)) }
        let path = directory + "/" + SegmentNaming.indexName(forSegment: name)
        try Directory.writeAtomically(bytes, to: path, directory: directory)
        return try SealedSegmentIndex(source: .file(try SystemFile.open(path, writable: false)))
    }
}
