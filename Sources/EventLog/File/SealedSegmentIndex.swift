import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A block of a sealed segment's index failed its checksum at a lookup: the file is damaged
/// after it was opened. `SealedIndexes` rebuilds the index from the segment and retries.
struct IndexBlockDamaged: Error {
    var reason: String
}

/// A sealed segment's `NAME.idx`, opened: the header and the batch list are read and checked
/// when it is opened (a few kilobytes per segment); the fences and filters at the first
/// lookup; stream and key entries stay on disk and a lookup reads the one block that may hold
/// its name with a positioned read. Immutable once opened, hence `Sendable`.
final class SealedSegmentIndex: @unchecked Sendable {
    /// Magic … header checksum: see docs/log-format.md.
    static let headerSize = 164
    private static let sectionCount = 7

    enum Source {
        case file(SystemFile)
        /// A read-only open that found no usable index keeps the rebuilt bytes in memory.
        case memory([UInt8])
        /// An index embedded in a larger file at `offset`, `length` bytes long: a record of
        /// the active segment's checkpoint (`ActiveCheckpoint`).
        case region(SystemFile, offset: Int, length: Int)
    }

    /// One block of entries, as its fence entry describes it.
    fileprivate struct Fence {
        var nameStart: Int
        var nameLength: Int
        var offset: Int
        var length: Int
        var count: Int
        var checksum: UInt32
    }

    /// One kind of entry (streams or keys): where its blocks lie, their fence and its filter.
    fileprivate struct Table {
        var blocksOffset: Int
        var fenceBytes: [UInt8]
        var fences: [Fence]
        var filter: IndexFilter
    }

    let firstPosition: LogPosition
    let segmentSize: Int
    let previousHash: [UInt8]
    let lastHash: [UInt8]
    let batches: [BatchLocation]
    let streamCount: Int
    let keyCount: Int
    fileprivate let source: Source
    /// Where each table's sections lie; the fence and filter are read (and their CRCs
    /// checked again) at the first lookup in the table, so that opening a log holds only
    /// headers and batch lists, not every segment's filters.
    private let streamSections: TableSections
    private let keySections: TableSections
    private let loaded = Mutex<(streams: Table?, keys: Table?)>((nil, nil))

    private struct TableSections {
        var blocksOffset: Int
        var blocksLength: Int
        var fence: (offset: Int, length: Int, checksum: UInt32)
        var filter: (offset: Int, length: Int, checksum: UInt32)
        var entries: Int
        var maxName: Int
        var hashCount: Int
    }

    fileprivate var streams: Table { get throws { try table(keys: false) } }
    fileprivate var keys: Table { get throws { try table(keys: true) } }

    private func table(keys: Bool) throws -> Table {
        if let held = loaded.withLock({ keys ? $0.keys : $0.streams }) { return held }
        let sections = keys ? keySections : streamSections
        func checked(_ section: (offset: Int, length: Int, checksum: UInt32)) throws -> [UInt8] {
            let bytes = try Self.read(source, count: section.length, at: section.offset)
            guard CRC32C.checksum(bytes) == section.checksum else { throw IndexBlockDamaged(reason: "index fence or filter fails its checksum") }
            return bytes
        }
        let table: Table
        do {
            table = try Self.table(blocksOffset: sections.blocksOffset, blocksLength: sections.blocksLength, fence: try checked(sections.fence),
                                   filter: IndexFilter(bits: try checked(sections.filter), hashCount: sections.hashCount),
                                   entries: sections.entries, maxName: sections.maxName)
        } catch let error as EventLogError {
            throw IndexBlockDamaged(reason: error.message)
        }
        loaded.withLock { if keys { $0.keys = table } else { $0.streams = table } }
        return table
    }

    var nextPosition: LogPosition { batches.last.map { $0.lastPosition + 1 } ?? firstPosition }

    /// Opens and checks an index: magic, version, header checksum, the file's size against
    /// the sections, the checksums of the batches, fences and filters, and every fence entry
    /// (blocks contiguous, names strictly increasing, counts adding up). Throws `.corrupted`.
    /// The batches must start at segment byte `startOffset` (0 for a sealed segment; a
    /// checkpoint record describes a stretch of the active segment from there).
    init(source: Source, startOffset: Int = 0) throws {
        self.source = source
        let size = try Self.size(of: source)
        guard size >= Self.headerSize else { throw EventLogError(.corrupted, "index file is too short") }
        let header = try Self.read(source, count: Self.headerSize, at: 0)
        var sectionLengths: [Int] = []
        var sectionChecksums: [UInt32] = []
        var counts: (batches: Int, streams: Int, keys: Int) = (0, 0, 0)
        var hashCount = 0
        var first: LogPosition = 0
        var segmentSize = 0
        var previous: [UInt8] = []
        var last: [UInt8] = []
        try header.withUnsafeBytes { all in
            let stored = all.loadUnaligned(fromByteOffset: Self.headerSize - 4, as: UInt32.self).littleEndian
            guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: all[0..<Self.headerSize - 4])) == stored else {
                throw EventLogError(.corrupted, "index header checksum mismatch")
            }
            var r = ByteReader(all)
            guard try r.readLE(UInt32.self, "index magic") == SegmentIndex.magic else { throw EventLogError(.corrupted, "not a segment index") }
            guard try r.readLE(UInt16.self, "index version") == SegmentIndex.version else { throw EventLogError(.corrupted, "unsupported index version") }
            _ = try r.readLE(UInt16.self, "index flags")
            first = try r.readLE(UInt64.self, "first position")
            let rawSize = try r.readLE(UInt64.self, "segment size")
            guard first >= 1, rawSize <= UInt64(Int.max) else { throw EventLogError(.corrupted, "index header out of range") }
            segmentSize = Int(rawSize)
            previous = Array(try r.readFixed(32, "previous hash"))
            last = Array(try r.readFixed(32, "last hash"))
            counts.batches = Int(try r.readLE(UInt32.self, "batch count"))
            counts.streams = Int(try r.readLE(UInt32.self, "stream count"))
            counts.keys = Int(try r.readLE(UInt32.self, "key count"))
            hashCount = Int(try r.readUInt8("filter hashes"))
            _ = try r.readFixed(3, "reserved")
            guard (1...32).contains(hashCount) else { throw EventLogError(.corrupted, "index filter hash count \(hashCount) out of range") }
            for _ in 0..<Self.sectionCount {
                sectionLengths.append(Int(try r.readLE(UInt32.self, "section length")))
                sectionChecksums.append(try r.readLE(UInt32.self, "section checksum"))
            }
        }
        guard size == Self.headerSize + sectionLengths.reduce(0, +) else {
            throw EventLogError(.corrupted, "index file is \(size) bytes, its sections say \(Self.headerSize + sectionLengths.reduce(0, +))")
        }
        var offsets: [Int] = []
        var at = Self.headerSize
        for length in sectionLengths {
            offsets.append(at)
            at += length
        }
        func checkedSection(_ i: Int, _ what: String) throws -> [UInt8] {
            let bytes = try Self.read(source, count: sectionLengths[i], at: offsets[i])
            guard CRC32C.checksum(bytes) == sectionChecksums[i] else { throw EventLogError(.corrupted, "index \(what) checksum mismatch") }
            return bytes
        }
        let batchBytes = try checkedSection(0, "batches")
        let batches = try Self.decodeBatches(batchBytes, count: counts.batches, segmentSize: segmentSize, first: first, start: startOffset)
        self.firstPosition = first
        self.segmentSize = segmentSize
        self.previousHash = previous
        self.lastHash = last
        self.batches = batches
        self.streamCount = counts.streams
        self.keyCount = counts.keys
        // The fences and filters are read and checked at the first lookup in their table
        // (`table(keys:)`), and a lookup that finds them damaged rebuilds the index from its
        // segment (`SealedIndexes.lookUp`). Checking them here too read 1.3 MB per segment of
        // a generated log at every open, for commands (a proof, an inspect) that look up
        // nothing.
        guard counts.streams == 0 || sectionLengths[3] > 0, counts.keys == 0 || sectionLengths[6] > 0 else {
            throw EventLogError(.corrupted, "index filter is empty")
        }
        self.streamSections = TableSections(
            blocksOffset: offsets[1], blocksLength: sectionLengths[1], fence: (offsets[2], sectionLengths[2], sectionChecksums[2]),
            filter: (offsets[3], sectionLengths[3], sectionChecksums[3]), entries: counts.streams, maxName: EventLimits.maxStreamBytes,
            hashCount: hashCount
        )
        self.keySections = TableSections(
            blocksOffset: offsets[4], blocksLength: sectionLengths[4], fence: (offsets[5], sectionLengths[5], sectionChecksums[5]),
            filter: (offsets[6], sectionLengths[6], sectionChecksums[6]), entries: counts.keys, maxName: EventLimits.maxIdempotencyKeyBytes,
            hashCount: hashCount
        )
    }

    /// The stream's events in this segment, or nil when it has none.
    func stream(_ name: String) throws -> SegmentStream? {
        guard streamCount > 0 else { return nil }
        let (first, next) = (firstPosition, nextPosition)
        return try lookUp(name, in: try streams, maxName: EventLimits.maxStreamBytes, skip: Self.skipStream) { r in try Self.decodeStream(&r, first: first, next: next) }
    }

    /// The first append's result of an idempotency key first used in this segment, or nil.
    func key(_ key: String) throws -> AppendResult? {
        guard keyCount > 0 else { return nil }
        let (first, next) = (firstPosition, nextPosition)
        return try lookUp(key, in: try keys, maxName: EventLimits.maxIdempotencyKeyBytes, skip: Self.skipKey) { r in try Self.decodeKey(&r, first: first, next: next) }
    }

    /// A stream entry after its name; every position inside `first ..< next`.
    static func decodeStream(_ r: inout ByteReader, first: LogPosition, next: LogPosition) throws -> SegmentStream {
        let firstVersion = try r.readVarint("first version", max: UInt64.max >> 1)
        let count = Int(try r.readVarint("stream event count", max: UInt64(r.remaining)))
        guard count >= 1 else { throw EventLogError(.corrupted, "index stream entry without events") }
        var positions: [LogPosition] = []
        positions.reserveCapacity(count)
        var previous: LogPosition = 0
        for _ in 0..<count {
            let delta = try r.readVarint("position delta")
            guard delta >= 1, previous <= UInt64.max - delta else { throw EventLogError(.corrupted, "stream positions not increasing") }
            previous += delta
            guard previous >= first, previous < next else { throw EventLogError(.corrupted, "stream position \(previous) outside the segment") }
            positions.append(previous)
        }
        guard firstVersion <= (UInt64.max >> 1) - UInt64(count) else { throw EventLogError(.corrupted, "stream versions out of range") }
        return SegmentStream(firstVersion: firstVersion, positions: positions)
    }

    /// Reads past a stream entry after its name without building it: a lookup passes over
    /// the entries before the one it wants, and decoding each one's positions into an array
    /// was most of a lookup's cost. Lengths and counts are still checked.
    static func skipStream(_ r: inout ByteReader) throws {
        _ = try r.readVarint("first version", max: UInt64.max >> 1)
        let count = try r.readVarint("stream event count", max: UInt64(r.remaining))
        guard count >= 1 else { throw EventLogError(.corrupted, "index stream entry without events") }
        for _ in 0..<count { _ = try r.readVarint("position delta") }
    }

    /// Reads past a key entry after its key without building it (see `skipStream`).
    static func skipKey(_ r: inout ByteReader) throws {
        _ = try r.readVarint("first position")
        _ = try r.readVarint("last position")
        let n = try r.readVarint("stream count", max: UInt64(r.remaining))
        guard n >= 1 else { throw EventLogError(.corrupted, "idempotency entry without streams") }
        for _ in 0..<n {
            _ = try r.readLengthPrefixed("stream", max: EventLimits.maxStreamBytes)
            _ = try r.readVarint("version")
        }
    }

    /// A key entry after its key; its positions inside `first ..< next`.
    static func decodeKey(_ r: inout ByteReader, first: LogPosition, next: LogPosition) throws -> AppendResult {
        let low = try r.readVarint("first position")
        let high = try r.readVarint("last position")
        guard low >= first, low <= high, high < next else { throw EventLogError(.corrupted, "idempotency positions outside the segment") }
        let n = Int(try r.readVarint("stream count", max: UInt64(r.remaining)))
        guard n >= 1 else { throw EventLogError(.corrupted, "idempotency entry without streams") }
        var versions: [String: UInt64] = [:]
        for _ in 0..<n {
            let stream = try r.readString("stream", max: EventLimits.maxStreamBytes)
            versions[stream] = try r.readVarint("version")
        }
        return AppendResult(positions: low...high, streamVersions: versions, deduplicated: true)
    }

    /// Every stream entry in name order (bytewise), a block at a time: for merging indexes.
    func streamEntries() throws -> EntryCursor<SegmentStream> {
        let (first, next) = (firstPosition, nextPosition)
        return EntryCursor(index: self, table: try streams, maxName: EventLimits.maxStreamBytes) { r in try Self.decodeStream(&r, first: first, next: next) }
    }

    /// Every key entry in key order (bytewise), a block at a time.
    func keyEntries() throws -> EntryCursor<AppendResult> {
        let (first, next) = (firstPosition, nextPosition)
        return EntryCursor(index: self, table: try keys, maxName: EventLimits.maxIdempotencyKeyBytes) { r in try Self.decodeKey(&r, first: first, next: next) }
    }

    /// Walks one table's entries in order, holding one block at a time; each block's CRC
    /// is checked when it is read, and names must strictly increase across the whole table.
    struct EntryCursor<Value> {
        fileprivate let index: SealedSegmentIndex
        fileprivate let table: Table
        let maxName: Int
        let decode: (inout ByteReader) throws -> Value
        private var block: [UInt8] = []
        private var blockNumber = -1
        private var offsetInBlock = 0
        private var leftInBlock = 0
        private var previous: [UInt8]?

        fileprivate init(index: SealedSegmentIndex, table: Table, maxName: Int, decode: @escaping (inout ByteReader) throws -> Value) {
            self.index = index
            self.table = table
            self.maxName = maxName
            self.decode = decode
        }

        /// The next entry, or nil after the last.
        mutating func next() throws -> (name: [UInt8], value: Value)? {
            while leftInBlock == 0 {
                guard offsetInBlock == block.count else { throw IndexBlockDamaged(reason: "index block has bytes after its entries") }
                blockNumber += 1
                guard blockNumber < table.fences.count else { return nil }
                let fence = table.fences[blockNumber]
                block = try SealedSegmentIndex.read(index.source, count: fence.length, at: table.blocksOffset + fence.offset)
                guard CRC32C.checksum(block) == fence.checksum else {
                    throw IndexBlockDamaged(reason: "index block at byte \(table.blocksOffset + fence.offset) fails its checksum")
                }
                offsetInBlock = 0
                leftInBlock = fence.count
            }
            let (maxName, decode, start) = (self.maxName, self.decode, offsetInBlock)
            let (entry, consumed): ((name: [UInt8], value: Value), Int) = try block.withUnsafeBytes { raw in
                var r = ByteReader(UnsafeRawBufferPointer(rebasing: raw[start...]))
                let name = Array(try r.readLengthPrefixed("index entry name", max: maxName))
                guard !name.isEmpty else { throw EventLogError(.corrupted, "index entry with an empty name") }
                let value = try decode(&r)
                return ((name, value), r.offset)
            }
            if let previous, !previous.lexicographicallyPrecedes(entry.name) { throw EventLogError(.corrupted, "index entries not in name order") }
            previous = entry.name
            offsetInBlock += consumed
            leftInBlock -= 1
            return entry
        }
    }

    /// Filter, fence, one block: the entry named `name`, decoded by `decode`.
    private func lookUp<T>(_ name: String, in table: Table, maxName: Int, skip: (inout ByteReader) throws -> Void,
                           decode: (inout ByteReader) throws -> T) throws -> T? {
        guard !table.fences.isEmpty, table.filter.mayContain(name) else { return nil }
        var name = name
        return try name.withUTF8 { wanted -> T? in
            let target = UnsafeRawBufferPointer(wanted)
            // The last block whose first name is <= name.
            var low = 0
            var high = table.fences.count - 1
            let firstOfFirst = table.fences[0]
            guard table.fenceBytes.withUnsafeBytes({ Self.compare(UnsafeRawBufferPointer(rebasing: $0[firstOfFirst.nameStart..<firstOfFirst.nameStart + firstOfFirst.nameLength]), target) }) <= 0 else {
                return nil
            }
            while low < high {
                let mid = (low + high + 1) / 2
                let f = table.fences[mid]
                let c = table.fenceBytes.withUnsafeBytes { Self.compare(UnsafeRawBufferPointer(rebasing: $0[f.nameStart..<f.nameStart + f.nameLength]), target) }
                if c <= 0 { low = mid } else { high = mid - 1 }
            }
            let fence = table.fences[low]
            let block = try Self.read(source, count: fence.length, at: table.blocksOffset + fence.offset)
            guard CRC32C.checksum(block) == fence.checksum else {
                throw IndexBlockDamaged(reason: "index block at byte \(table.blocksOffset + fence.offset) fails its checksum")
            }
            return try block.withUnsafeBytes { raw -> T? in
                var r = ByteReader(raw)
                for _ in 0..<fence.count {
                    let entryName = try r.readLengthPrefixed("index entry name", max: maxName)
                    let c = Self.compare(entryName, target)
                    if c > 0 { return nil }
                    if c == 0 { return try decode(&r) }
                    try skip(&r)
                }
                return nil
            }
        }
    }

    private static func compare(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int {
        let n = min(a.count, b.count)
        if n > 0 {
            let c = memcmp(a.baseAddress!, b.baseAddress!, n)
            if c != 0 { return Int(c) }
        }
        return a.count - b.count
    }

    private static func table(blocksOffset: Int, blocksLength: Int, fence: [UInt8], filter: IndexFilter, entries: Int, maxName: Int) throws -> Table {
        var fences: [Fence] = []
        var total = 0
        var end = 0
        try fence.withUnsafeBytes { raw in
            var r = ByteReader(raw)
            var previous: UnsafeRawBufferPointer?
            while r.remaining > 0 {
                let name = try r.readLengthPrefixed("fence name", max: maxName)
                let offset = Int(try r.readVarint("block offset", max: UInt64(blocksLength)))
                let length = Int(try r.readVarint("block length", max: UInt64(blocksLength)))
                let count = Int(try r.readVarint("block entry count", max: UInt64(length)))
                let checksum = try r.readLE(UInt32.self, "block checksum")
                guard offset == end, count >= 1, length >= 1 else { throw EventLogError(.corrupted, "index fence entry out of order") }
                if let previous, compare(previous, name) >= 0 { throw EventLogError(.corrupted, "index fence names not increasing") }
                previous = name
                end = offset + length
                total += count
                fences.append(Fence(nameStart: name.baseAddress.map { $0 - raw.baseAddress! } ?? 0, nameLength: name.count,
                                    offset: offset, length: length, count: count, checksum: checksum))
            }
        }
        guard end == blocksLength, total == entries else { throw EventLogError(.corrupted, "index fence does not cover its \(entries) entries") }
        guard entries == 0 || !filter.bits.isEmpty else { throw EventLogError(.corrupted, "index filter is empty") }
        return Table(blocksOffset: blocksOffset, fenceBytes: fence, fences: fences, filter: filter)
    }

    private static func decodeBatches(_ bytes: [UInt8], count: Int, segmentSize: Int, first: LogPosition, start: Int) throws -> [BatchLocation] {
        guard count >= 1, count <= bytes.count else { throw EventLogError(.corrupted, "index batch count \(count) out of range") }
        return try bytes.withUnsafeBytes { raw in
            var r = ByteReader(raw)
            var batches: [BatchLocation] = []
            batches.reserveCapacity(count)
            var next = first
            var end = start
            for _ in 0..<count {
                let offset = Int(try r.readVarint("batch offset", max: UInt64(segmentSize)))
                let position = try r.readVarint("batch position")
                let events = try r.readVarint("batch event count", max: UInt64(EventLimits.maxBatchEvents))
                let length = try r.readVarint("batch data length", max: UInt64(UInt32.max))
                guard events >= 1, position == next, offset == end, position <= UInt64.max - events else { throw EventLogError(.corrupted, "index batches not contiguous") }
                let batch = BatchLocation(firstPosition: position, eventCount: UInt32(events), offset: offset, dataLength: UInt32(length))
                batches.append(batch)
                next = batch.lastPosition + 1
                end = offset + batch.totalSize
            }
            guard r.remaining == 0, end == segmentSize else { throw EventLogError(.corrupted, "index batches do not cover the segment") }
            return batches
        }
    }

    private static func size(of source: Source) throws -> Int {
        switch source {
        case .file(let file): return try file.size()
        case .memory(let bytes): return bytes.count
        case .region(let file, _, let length):
            guard length <= (try file.size()) else { throw EventLogError(.corrupted, "index region past the end of its file") }
            return length
        }
    }

    fileprivate static func read(_ source: Source, count: Int, at offset: Int) throws -> [UInt8] {
        switch source {
        case .file(let file): return try file.read(count: count, at: offset)
        case .region(let file, let base, let length):
            guard offset >= 0, count >= 0, offset <= length - count else { throw EventLogError(.corrupted, "index read past its end") }
            return try file.read(count: count, at: base + offset)
        case .memory(let bytes):
            guard offset >= 0, count >= 0, offset <= bytes.count - count else { throw EventLogError(.corrupted, "index read past its end") }
            return Array(bytes[offset..<offset + count])
        }
    }
}
