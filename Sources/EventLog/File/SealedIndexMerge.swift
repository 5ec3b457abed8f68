/// Builds a sealed segment's `NAME.idx` at its seal by merging the indexes of the stretches
/// it was written in (the checkpoint's records, then the batches since the last one), oldest
/// first, without rescanning the segment. Every part is sorted by name, so the merge streams:
/// it holds one block of each part, the block being written, the fences and the filters,
/// never a whole segment's streams. The result is byte for byte an index file of version 2
/// (docs/log-format.md, "Index file"), written atomically like any other.
enum SealedIndexMerge {
    /// Merges `parts` (consecutive stretches of segment `name`, oldest first, the first at
    /// byte 0) into `NAME.idx` and opens it. Throws when the parts do not continue each
    /// other exactly, a block fails its CRC or does not decode, or a write fails; the
    /// caller then indexes the segment by scanning it.
    static func write(parts: [SealedSegmentIndex], segment name: String, directory: String) throws -> SealedSegmentIndex {
        guard let first = parts.first, let last = parts.last, first.batches.first?.offset == 0 else {
            throw EventLogError(.corrupted, "checkpoint records do not start at the segment's first byte")
        }
        for (earlier, later) in zip(parts, parts.dropFirst()) {
            guard later.firstPosition == earlier.nextPosition, later.previousHash == earlier.lastHash,
                  later.batches.first?.offset == earlier.segmentSize
            else { throw EventLogError(.corrupted, "checkpoint records do not continue each other") }
        }
        let path = directory + "/" + SegmentNaming.indexName(forSegment: name)
        let temporary = path + ".tmp"
        let file = try SystemFile.open(temporary, writable: true, create: true)
        var sink = SectionSink(file: file)
        do {
            try file.truncate(to: 0)
            sink.at = SealedSegmentIndex.headerSize
            try sink.section(SegmentIndex.encodeBatches(parts.lazy.flatMap(\.batches)), checksummed: true)
            let streamCount = try mergeStreams(parts, into: &sink)
            let keyCount = try mergeKeys(parts, into: &sink)
            let header = SegmentIndex.encodeHeader(
                firstPosition: first.firstPosition, segmentSize: last.segmentSize, previousHash: first.previousHash, lastHash: last.lastHash,
                counts: (parts.reduce(0) { $0 + $1.batches.count }, streamCount, keyCount), sections: sink.sections
            )
            try header.withUnsafeBytes { (raw) throws in try file.write([raw], at: 0) }
            try file.sync()
            file.close()
            try Directory.rename(temporary, path)
            try Directory.sync(directory)
        } catch {
            file.close()
            Directory.remove(temporary)
            throw error
        }
        return try SealedSegmentIndex(source: .file(try SystemFile.open(path, writable: false)))
    }

    /// Streams of every part, merged by name: a stream in several parts becomes one entry
    /// (its first version from the oldest, positions concatenated), whose versions must
    /// continue from part to part. Writes blocks, fence and filter; returns the entry count.
    private static func mergeStreams(_ parts: [SealedSegmentIndex], into sink: inout SectionSink) throws -> Int {
        var cursors = try parts.map { try $0.streamEntries() }
        var heads = try cursors.indices.map { try cursors[$0].next() }
        var blocks = BlockSink(expected: parts.reduce(0) { $0 + $1.streamCount })
        while let name = smallest(heads.map { $0?.name }) {
            var merged: SegmentStream?
            for i in heads.indices {
                guard let head = heads[i], head.name == name else { continue }
                if var run = merged {
                    guard head.value.firstVersion == run.nextVersion else {
                        throw EventLogError(.corrupted, "checkpoint records' stream versions do not continue")
                    }
                    run.positions += head.value.positions
                    merged = run
                } else {
                    merged = head.value
                }
                heads[i] = try cursors[i].next()
            }
            try blocks.add(name, into: &sink) { w in SegmentIndex.writeStreamEntry(merged!, into: &w) }
        }
        return try blocks.finish(into: &sink)
    }

    /// Keys of every part, merged by key; a key in several parts keeps its first use.
    private static func mergeKeys(_ parts: [SealedSegmentIndex], into sink: inout SectionSink) throws -> Int {
        var cursors = try parts.map { try $0.keyEntries() }
        var heads = try cursors.indices.map { try cursors[$0].next() }
        var blocks = BlockSink(expected: parts.reduce(0) { $0 + $1.keyCount })
        while let name = smallest(heads.map { $0?.name }) {
            var kept: AppendResult?
            for i in heads.indices {
                guard let head = heads[i], head.name == name else { continue }
                if kept == nil { kept = head.value }
                heads[i] = try cursors[i].next()
            }
            try blocks.add(name, into: &sink) { w in SegmentIndex.writeKeyEntry(kept!, into: &w) }
        }
        return try blocks.finish(into: &sink)
    }

    private static func smallest(_ names: [[UInt8]?]) -> [UInt8]? {
        var best: [UInt8]?
        for case let name? in names where best.map({ name.lexicographicallyPrecedes($0) }) ?? true { best = name }
        return best
    }

    /// Writes the sections one after another, remembering each one's length and CRC.
    private struct SectionSink {
        let file: SystemFile
        var at = 0
        var sections: [(length: Int, checksum: UInt32)] = []
        /// The section being written in pieces (the blocks), its length so far.
        var open = 0

        mutating func section(_ bytes: [UInt8], checksummed: Bool) throws {
            try piece(bytes)
            sections.append((open, checksummed ? CRC32C.checksum(bytes) : 0))
            open = 0
        }

        mutating func piece(_ bytes: [UInt8]) throws {
            if !bytes.isEmpty { try bytes.withUnsafeBytes { (raw) throws in try file.write([raw], at: at) } }
            at += bytes.count
            open += bytes.count
        }

        /// Ends a section written with `piece` (the blocks: CRC 0, each block has its own).
        mutating func closePieces() {
            sections.append((open, 0))
            open = 0
        }
    }

    /// One table's blocks, written as they fill, with the fence and filter that follow them.
    private struct BlockSink {
        var block = ByteWriter(capacity: SegmentIndex.blockTarget + 512)
        var fence = ByteWriter()
        var filter: IndexFilter.Builder
        var blockFirst: [UInt8]?
        var blockCount = 0
        var offset = 0
        var entries = 0

        init(expected: Int) { filter = IndexFilter.Builder(expected: expected) }

        mutating func add(_ name: [UInt8], into sink: inout SectionSink, entry: (inout ByteWriter) -> Void) throws {
            if blockFirst == nil { blockFirst = name }
            block.writeLengthPrefixed(name)
            entry(&block)
            filter.insert(name)
            blockCount += 1
            entries += 1
            if block.bytes.count >= SegmentIndex.blockTarget { try close(into: &sink) }
        }

        private mutating func close(into sink: inout SectionSink) throws {
            guard let first = blockFirst else { return }
            fence.writeLengthPrefixed(first)
            fence.writeVarint(UInt64(offset))
            fence.writeVarint(UInt64(block.bytes.count))
            fence.writeVarint(UInt64(blockCount))
            fence.writeLE(CRC32C.checksum(block.bytes))
            try sink.piece(block.bytes)
            offset += block.bytes.count
            block.bytes.removeAll(keepingCapacity: true)
            blockFirst = nil
            blockCount = 0
        }

        /// Writes the last block, ends the blocks section, writes fence and filter.
        mutating func finish(into sink: inout SectionSink) throws -> Int {
            try close(into: &sink)
            sink.closePieces()
            try sink.section(fence.bytes, checksummed: true)
            try sink.section(filter.filter.bits, checksummed: true)
            return entries
        }
    }
}
