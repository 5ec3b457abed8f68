/// A sealed segment and its opened index.
struct SealedSegment {
    var name: String
    var path: String
    var index: SealedSegmentIndex
}

/// The streams and idempotency keys of every sealed segment, on disk: lookups go newest
/// segment first through each index's filter and stop at the first hit, with a bounded
/// cache of stream counts in front. Nothing here grows with the streams or keys in the
/// history (only the per-segment fences, filters and batch lists). Lives in
/// `FileLogState`, under its mutex.
struct SealedIndexes {
    let directory: String
    /// Rebuilt indexes are written back only by a writable open.
    let writable: Bool
    private(set) var segments: [SealedSegment] = []
    private(set) var cache: StreamVersionCache
    /// Sealed segments whose index failed a check at a lookup and was rebuilt from the segment.
    private(set) var rebuiltAtLookup: [String] = []

    init(directory: String, writable: Bool, cacheCapacity: Int) {
        self.directory = directory
        self.writable = writable
        self.cache = StreamVersionCache(capacity: cacheCapacity)
    }

    /// Adds the next sealed segment. `activeStreams` are the streams it holds as the
    /// in-memory map knew them, whose cached counts grow by their events.
    mutating func append(_ segment: SealedSegment, activeStreams: [String: SegmentStream]) {
        for (name, stream) in activeStreams { cache.add(UInt64(stream.positions.count), to: name) }
        segments.append(segment)
    }

    mutating func removeLast() -> SealedSegment? { segments.popLast() }

    /// Events of `stream` in the sealed segments (its next version after them).
    mutating func count(of stream: String) throws -> UInt64 {
        if let cached = cache.count(of: stream) { return cached }
        var found: UInt64 = 0
        for i in segments.indices.reversed() {
            if let entry = try lookUp(i, { try $0.stream(stream) }) {
                found = entry.nextVersion
                break
            }
        }
        cache.set(stream, count: found)
        return found
    }

    /// Positions of `stream`'s versions `version ..< version + limit` held by sealed segments.
    mutating func positions(of stream: String, fromVersion version: UInt64, limit: Int) throws -> [LogPosition] {
        var runs: [SegmentStream] = []
        for i in segments.indices.reversed() {
            guard let entry = try lookUp(i, { try $0.stream(stream) }) else { continue }
            runs.append(entry)
            if entry.firstVersion <= version { break }
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
