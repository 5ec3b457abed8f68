import Synchronization
import TallyTestSupport
import Testing
@testable import EventLog

/// The active segment's checkpoint records are looked up on disk, like sealed indexes: a
/// log opened from them answers every lookup (versions, whole and partial stream reads,
/// expected-version conflicts, idempotent retries) exactly as the same files without any
/// checkpoint or index do; a record cut at any byte is not used and the open still answers
/// right; a record's block damaged after open is rebuilt from the segment at the lookup;
/// and memory holds only the streams after the last record plus the bounded cache.
@Suite(.timeLimit(.minutes(8))) struct CheckpointLookupTests {
    /// One large active segment with many records, and small segments that seal now and then.
    static let oneSegment = FileLog.Options(fsync: .never, segmentSize: 8 << 20, checkpointBytes: 6 << 10)
    static let sealing = FileLog.Options(fsync: .never, segmentSize: 96 << 10, checkpointBytes: 6 << 10)

    /// Copies `path` without its checkpoint and index files: what a full scan finds.
    static func bareCopy(of path: String, to target: String) throws {
        try Directory.create(target)
        for name in try listDirectory(path) where name.hasSuffix(SegmentNaming.segmentSuffix) {
            try writeFile(target + "/" + name, try readFile(path + "/" + name))
        }
    }

    /// Every stream's version and events, reads from random versions, an append expecting
    /// the wrong version (must conflict and write nothing), and every key's retry: the same
    /// in `log` as in `reference`.
    static func expectSameAnswers(_ log: FileLog, _ reference: FileLog, keys: [String], seed: UInt64, _ label: String) async throws {
        #expect(log.currentHead() == reference.currentHead(), "\(label)")
        let all = try await readAll(reference)
        var streams = Set(all.map(\.stream))
        streams.insert("rand-absent")
        var rng = SplitMix64(seed: seed)
        for stream in streams.sorted() {
            let version = try await reference.streamVersion(stream)
            #expect(try await log.streamVersion(stream) == version, "\(label): \(stream)")
            #expect(try await log.readStream(stream) == (try await reference.readStream(stream)), "\(label): \(stream)")
            let from = rng.next() % UInt64((version ?? 0) + 2)
            let limit = Int(rng.next() % 5) + 1
            #expect(try await log.readStream(stream, fromVersion: from, limit: limit)
                    == (try await reference.readStream(stream, fromVersion: from, limit: limit)), "\(label): \(stream) from \(from)")
        }
        if !log.options.readOnly {
            let head = log.currentHead()
            for stream in streams.sorted().prefix(30) {
                let wrong: ExpectedVersion = (try await reference.streamVersion(stream)).map { .exact($0 + 1) } ?? .exact(0)
                await #expect(throws: EventLogError.self, "\(label): \(stream) wrong expected version") {
                    _ = try await log.append([StreamAppend(stream: stream, expected: wrong, events: [textEvent("no")])], idempotencyKey: nil)
                }
            }
            for key in keys {
                let first = try #require(try await keyResult(reference, key), "\(label): \(key)")
                let again = try await log.append(to: "rand-0", events: [textEvent("retry")], idempotencyKey: key)
                #expect(again == first, "\(label): retry of \(key)")
            }
            #expect(log.currentHead() == head, "\(label): a conflict or retry wrote")
        }
    }

    /// The first result of `key` as the reference log's state knows it (a retry there would write).
    static func keyResult(_ log: FileLog, _ key: String) async throws -> AppendResult? {
        try log.core.state.withLock { s in try s.publishedKey(key) }
    }

    @Test func randomLogsAnswerAsAFullScanAtEveryReopen() async throws {
        try await withTemporaryDirectory { dir in
            for (seed, options) in [(UInt64(61), Self.oneSegment), (62, Self.sealing), (63, Self.sealing)] {
                let path = dir.sub("log-\(seed)")
                var rng = SplitMix64(seed: seed)
                var keys: [String] = []
                for round in 0..<4 {
                    let log = try FileLog(directory: path, options: options)
                    keys += try await Self.appendRandom(log, &rng, count: 120 + Int(rng.next() % 120), streams: 80, tag: "\(seed)-\(round)")
                    // Half the rounds end in a crash (no close record), half in a close.
                    let crashed = rng.next() % 2 == 0
                    let image = dir.sub("image-\(seed)-\(round)")
                    if crashed { try ActiveCheckpointTests.crashImage(of: path, to: image) }
                    try await log.close()
                    let opened = crashed ? image : path
                    let bare = dir.sub("bare-\(seed)-\(round)")
                    try Self.bareCopy(of: opened, to: bare)
                    let reference = try FileLog(directory: bare, options: options)
                    let reopened = try FileLog(directory: opened, options: options)
                    #expect(reopened.checkpointedBytes > 0, "seed \(seed) round \(round): nothing from the checkpoint")
                    #expect(reopened.heldCounts.records >= 1, "seed \(seed) round \(round)")
                    try await Self.expectSameAnswers(reopened, reference, keys: keys.filter { _ in rng.next() % 3 == 0 }, seed: seed, "seed \(seed) round \(round)")
                    try await reopened.close()
                    try await reference.close()
                }
            }
        }
    }

    /// A crash while the last record was being appended leaves any prefix of it: opening
    /// (read-only, and then writable, which appends after the good records) ignores it and
    /// answers as before. Every byte of the record's header and its index image's header is
    /// tried, and cuts across the rest.
    @Test func aRecordCutAtAnyByteIsIgnored() async throws {
        try await withTemporaryDirectory { dir in
            let source = dir.sub("source")
            let log = try FileLog(directory: source, options: Self.oneSegment)
            let keys = try await SealedIndexTests.writeRandomLog(log, seed: 71, appends: 160, streams: 60)
            try await log.close()
            let name = try #require(try segmentNames(source).last)
            let checkpoint = SegmentNaming.checkpointName(forSegment: name)
            let bytes = try readFile(source + "/" + checkpoint)
            let starts = try Self.recordStarts(bytes)
            try #require(starts.count >= 3, "want several records, got \(starts.count)")
            let last = try #require(starts.last)
            let bare = dir.sub("bare")
            try Self.bareCopy(of: source, to: bare)
            var readOnly = Self.oneSegment
            readOnly.readOnly = true
            let reference = try FileLog(directory: bare, options: readOnly)
            let headerEnd = last + ActiveCheckpoint.headerSize + SealedSegmentIndex.headerSize
            var cuts = Array(last..<headerEnd)
            cuts += stride(from: headerEnd, to: bytes.count, by: 53)
            cuts.append(bytes.count - 1)
            for cut in cuts {
                let path = dir.sub("cut")
                try Directory.create(path)
                for file in try listDirectory(source) where file != "LOCK" {
                    try writeFile(path + "/" + file, file == checkpoint ? Array(bytes.prefix(cut)) : try readFile(source + "/" + file))
                }
                let opened = try FileLog(directory: path, options: readOnly)
                #expect(opened.checkpointedBytes == (try Self.recordEnd(bytes, at: starts[starts.count - 2])), "cut at \(cut)")
                #expect(try readFile(path + "/" + checkpoint).count == cut, "a read-only open wrote (cut at \(cut))")
                if cut % 7 == 0 || cut < last + 8 {
                    try await Self.expectSameAnswers(opened, reference, keys: [], seed: UInt64(cut), "cut at \(cut)")
                } else {
                    for stream in ["rand-0", "rand-17", "side-3"] {
                        #expect(try await opened.streamVersion(stream) == (try await reference.streamVersion(stream)), "cut at \(cut): \(stream)")
                    }
                }
                try await opened.close()
                if cut == last + 9 || cut == bytes.count - 1 {
                    let writable = try FileLog(directory: path, options: Self.oneSegment)
                    try Self.bareCopy(of: source, to: dir.sub("bare-w-\(cut)"))
                    let fresh = try FileLog(directory: dir.sub("bare-w-\(cut)"), options: Self.oneSegment)
                    try await Self.expectSameAnswers(writable, fresh, keys: Array(keys.keys), seed: 5, "writable, cut at \(cut)")
                    try await fresh.close()
                    try await writable.close()
                }
                try removeDirectory(path)
            }
            try await reference.close()
        }
    }

    /// A record whose stream block is damaged after open (the fences and filters were read,
    /// the block was not) is rebuilt from the segment at the lookup, and answers right; a
    /// seal over it merges nothing damaged (it scans the segment instead).
    @Test func aDamagedRecordBlockIsRebuiltAtTheLookup() async throws {
        try await withTemporaryDirectory { dir in
            let path = dir.sub("log")
            let log = try FileLog(directory: path, options: Self.oneSegment)
            let keys = try await SealedIndexTests.writeRandomLog(log, seed: 81, appends: 150, streams: 40)
            try await log.close()
            let bare = dir.sub("bare")
            try Self.bareCopy(of: path, to: bare)
            let reference = try FileLog(directory: bare, options: Self.oneSegment)
            let reopened = try FileLog(directory: path, options: Self.oneSegment)
            let checkpoint = path + "/" + SegmentNaming.checkpointName(forSegment: try #require(try segmentNames(path).last))
            let bytes = try readFile(checkpoint)
            for start in try Self.recordStarts(bytes) {
                let blocks = try Self.streamBlocks(bytes, recordAt: start)
                try Self.flipInPlace(checkpoint, at: blocks.lowerBound + blocks.count / 2, bits: 0x20)
            }
            try await Self.expectSameAnswers(reopened, reference, keys: Array(keys.keys), seed: 81, "damaged blocks")
            #expect(reopened.indexesRebuiltAtLookup.contains { $0.contains("checkpoint record") }, "\(reopened.indexesRebuiltAtLookup)")
            try await reopened.close()
            try await reference.close()
        }
    }

    /// Appends to many more distinct streams than the cache holds, in one large active
    /// segment: the streams held in memory stay within one checkpoint interval's, the cache
    /// within its capacity, and old streams are still decided right (expected versions).
    @Test func memoryStaysBoundedWhileTheActiveSegmentFills() async throws {
        try await withTemporaryDirectory { dir in
            var options = Self.oneSegment
            options.streamCacheCapacity = 50
            let log = try FileLog(directory: dir.path, options: options)
            // Each batch here touches one stream and takes at least a header's bytes, so one
            // interval holds at most this many streams (and the batch that crosses it).
            let bound = options.checkpointBytes / BatchHeader.framedSize + 1
            var maxTail = 0
            for round in 0..<8 {
                for i in 0..<300 {
                    _ = try await log.append(to: "grow-\(round)-\(i)", expected: .noStream,
                                             events: [event(payload: noiseBytes(count: 200, seed: UInt64(round * 1000 + i)))])
                    let held = log.heldCounts
                    maxTail = max(maxTail, held.tailStreams)
                    #expect(held.tailStreams <= bound && held.tailKeys <= bound && held.cachedStreams <= 50, "round \(round) append \(i): \(held)")
                }
                for i in stride(from: 0, to: 300, by: 7) {
                    let stream = "grow-0-\(i)"
                    let version = try #require(try await log.streamVersion(stream))
                    _ = try await log.append(to: stream, expected: .exact(version), events: [textEvent("again \(round)")])
                    await #expect(throws: EventLogError.self) {
                        _ = try await log.append(to: stream, expected: .exact(version), events: [textEvent("stale")])
                    }
                }
            }
            let held = log.heldCounts
            #expect(try segmentNames(dir.path).count == 1, "want one active segment")
            #expect(held.records > 50, "want many records, got \(held.records)")
            #expect(held.cachedStreams == 50)
            #expect(maxTail > 0)
            try await log.close()
            let reopened = try FileLog(directory: dir.path, options: options)
            let after = reopened.heldCounts
            #expect(after.tailStreams == 0 && after.tailKeys == 0 && after.cachedStreams == 0, "\(after)")
            #expect(try await reopened.streamVersion("grow-0-0") == 8)
            #expect(try await reopened.streamVersion("grow-7-299") == 0)
            try await reopened.close()
        }
    }

    /// Damages a byte of the file itself (the open log's descriptors see it; a rewrite
    /// through a new file would not be seen by them).
    static func flipInPlace(_ path: String, at offset: Int, bits: UInt8) throws {
        let file = try SystemFile.open(path, writable: true)
        defer { file.close() }
        var byte = try file.read(count: 1, at: offset)
        byte[0] ^= bits
        try byte.withUnsafeBytes { (raw) throws in try file.write([raw], at: offset) }
    }

    /// `count` random appends over `streams` streams that continue across calls: some to two
    /// streams at once, some keyed, some expecting the version the log reports (so decisions
    /// go through the records and indexes). Returns the keys used.
    static func appendRandom(_ log: FileLog, _ rng: inout SplitMix64, count: Int, streams: Int, tag: String) async throws -> [String] {
        var keys: [String] = []
        for call in 0..<count {
            let stream = "rand-\(rng.next() % UInt64(streams))"
            var expected = ExpectedVersion.any
            if rng.next() % 3 == 0 { expected = try await log.streamVersion(stream).map { .exact($0) } ?? .noStream }
            let events = (0..<Int(rng.next() % 3) + 1).map { i in event(payload: noiseBytes(count: 60 + Int(rng.next() % 340), seed: rng.next() &+ UInt64(i))) }
            var batch = [StreamAppend(stream: stream, expected: expected, events: events)]
            let other = "side-\(rng.next() % 40)"
            if rng.next() % 5 == 0, other != stream { batch.append(StreamAppend(stream: other, events: [textEvent("side \(tag) \(call)")])) }
            let key = rng.next() % 4 == 0 ? "key-\(tag)-\(call)" : nil
            _ = try await log.append(batch, idempotencyKey: key)
            if let key { keys.append(key) }
        }
        return keys
    }

    // MARK: - Reading the checkpoint file's layout

    /// Byte offsets of the records in a checkpoint file, from their headers' lengths.
    static func recordStarts(_ bytes: [UInt8]) throws -> [Int] {
        var starts: [Int] = []
        var at = 0
        while bytes.count - at >= ActiveCheckpoint.headerSize {
            starts.append(at)
            at = try recordEnd(bytes, at: at, inFile: true)
        }
        return starts
    }

    /// The end of the record at `at`: in the file (`inFile`) or in the segment (its end offset).
    static func recordEnd(_ bytes: [UInt8], at: Int, inFile: Bool = false) throws -> Int {
        if inFile { return at + ActiveCheckpoint.headerSize + Int(try u32(bytes, at + 112)) }
        return Int(try u64(bytes, at + 24))
    }

    /// The stream blocks of the record at `start`: after its index image's header and batches.
    static func streamBlocks(_ bytes: [UInt8], recordAt start: Int) throws -> Range<Int> {
        let image = start + ActiveCheckpoint.headerSize
        let batches = Int(try u32(bytes, image + 104))
        let blocks = Int(try u32(bytes, image + 112))
        let from = image + SealedSegmentIndex.headerSize + batches
        return from..<from + blocks
    }

    static func u32(_ bytes: [UInt8], _ at: Int) throws -> UInt32 {
        try #require(at + 4 <= bytes.count)
        return (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[at + $1]) << (8 * UInt32($1)) }
    }

    static func u64(_ bytes: [UInt8], _ at: Int) throws -> UInt64 {
        try #require(at + 8 <= bytes.count)
        return (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[at + $1]) << (8 * UInt64($1)) }
    }
}

func removeDirectory(_ path: String) throws { try removeFile(path) }
