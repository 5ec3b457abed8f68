import TallyTestSupport
import Testing
@testable import EventLog

/// The active segment's checkpoint (`NAME.ckp`): opening from it answers exactly as a full
/// scan of the segment does (versions, streams, idempotent retries, head and chain hash),
/// after a crash and after a clean close; a damaged, torn, stale, other-version or other
/// log's checkpoint is ignored where it stops holding, and the log is still right, also
/// after the writer appends to that checkpoint file again; torn tails and damage after the
/// checkpoint are found as before.
@Suite(.timeLimit(.minutes(5))) struct ActiveCheckpointTests {
    /// Small segments that seal now and then, and a checkpoint every 8 KiB.
    static let options = FileLog.Options(fsync: .never, segmentSize: 128 << 10, checkpointBytes: 8 << 10)

    /// What a crash leaves: the files of a log that is still open (no close checkpoint).
    static func crashImage(of source: String, to target: String) throws {
        try Directory.create(target)
        for name in try listDirectory(source) where name != "LOCK" {
            try writeFile(target + "/" + name, try readFile(source + "/" + name))
        }
    }

    static func activeSegment(_ path: String) throws -> String {
        path + "/" + (try #require(try segmentNames(path).last))
    }

    static func checkpointPath(_ path: String) throws -> String {
        let name = try #require(try segmentNames(path).last)
        return path + "/" + SegmentNaming.checkpointName(forSegment: name)
    }

    /// Opens `path` and checks it against the same files without any checkpoint (a full
    /// scan): head and chain hash, every event, every stream and every key's retry. Then
    /// appends, closes and reopens: the writer's checkpoint file (after whatever damage)
    /// must now cover the whole active segment and still answer right. Returns the bytes the
    /// first open took from the checkpoint.
    @discardableResult
    static func checkOpen(_ path: String, keys: [String: AppendResult], seed: UInt64, _ label: String,
                          options: FileLog.Options = Self.options) async throws -> Int {
        let bare = path + "-bare"
        try crashImage(of: path, to: bare)
        for name in try listDirectory(bare) where name.hasSuffix(SegmentNaming.checkpointSuffix) { try removeFile(bare + "/" + name) }
        let scanned = try FileLog(directory: bare, options: options)
        #expect(scanned.checkpointedBytes == 0)
        let reference = (head: scanned.currentHead(), events: try await readAll(scanned), recovery: scanned.recovery)
        try await scanned.close()

        let log = try FileLog(directory: path, options: options)
        let checkpointed = log.checkpointedBytes
        #expect(log.currentHead() == reference.head, "\(label)")
        #expect(log.recovery == reference.recovery, "\(label)")
        #expect(try await readAll(log) == reference.events, "\(label)")
        let held = keys.filter { $0.value.positions.upperBound <= reference.head.position }
        try await SealedIndexTests.checkAgainstScan(log, keys: held, seed: seed, "\(label): from a checkpoint of \(checkpointed) bytes")
        var more: [String: AppendResult] = [:]
        for call in 0..<40 {
            let key = call % 3 == 0 ? "more-\(seed)-\(call)" : nil
            let result = try await log.append(to: "rand-\(call % 9)", events: [event(payload: noiseBytes(count: 300, seed: UInt64(call)))],
                                              idempotencyKey: key)
            if let key { more[key] = result }
        }
        let after = (head: log.currentHead(), events: try await readAll(log))
        try await log.close()

        let reopened = try FileLog(directory: path, options: options)
        #expect(reopened.checkpointedBytes == (try fileSize(try activeSegment(path))), "\(label): the close checkpoint does not cover the segment")
        #expect(reopened.recovery == FileLog.RecoveryReport(), "\(label)")
        #expect(reopened.currentHead() == after.head, "\(label)")
        #expect(try await readAll(reopened) == after.events, "\(label)")
        try await SealedIndexTests.checkAgainstScan(reopened, keys: held.merging(more) { a, _ in a }, seed: seed, "\(label): reopened")
        try await reopened.close()
        return checkpointed
    }

    @Test func openFromACheckpointAnswersAsAFullScan() async throws {
        try await withTemporaryDirectory { dir in
            for seed: UInt64 in [21, 22, 23] {
                let path = dir.sub("log-\(seed)")
                let log = try FileLog(directory: path, options: Self.options)
                let keys = try await SealedIndexTests.writeRandomLog(log, seed: seed, appends: 500, streams: 150)
                try #require(try segmentNames(path).count >= 2, "want a seal")
                let image = dir.sub("crash-\(seed)")
                try Self.crashImage(of: path, to: image)
                try await log.close()

                // After a crash: the checkpoint covers all but less than one interval of the segment.
                let activeSize = try fileSize(try Self.activeSegment(image))
                let checkpointed = try await Self.checkOpen(image, keys: keys, seed: seed, "crash \(seed)")
                #expect(checkpointed > 0 && activeSize - checkpointed < Self.options.checkpointBytes, "crash \(seed): \(checkpointed) of \(activeSize)")
                // After a close: nothing is scanned.
                let closedSize = try fileSize(try Self.activeSegment(path))
                let closed = try await Self.checkOpen(path, keys: keys, seed: seed, "closed \(seed)")
                #expect(closed == closedSize, "closed \(seed): \(closed) of \(closedSize)")
            }
        }
    }

    static let oneSegment = FileLog.Options(fsync: .never, segmentSize: 4 << 20, checkpointBytes: 8 << 10)

    /// A crash image of a one-segment log at `source-SEED-image`; returns its keys.
    static func source(_ dir: TemporaryDirectory, seed: UInt64) async throws -> [String: AppendResult] {
        let source = dir.sub("source-\(seed)")
        let log = try FileLog(directory: source, options: oneSegment)
        let keys = try await SealedIndexTests.writeRandomLog(log, seed: seed, appends: 300, streams: 100)
        try Self.crashImage(of: source, to: source + "-image")
        try await log.close()
        return keys
    }

    /// A copy of the crash image of `source`, damaged by `damage`, checked by `checkOpen`;
    /// `expect` judges the bytes taken from the checkpoint.
    static func damageCase(_ dir: TemporaryDirectory, _ label: String, seed: UInt64, keys: [String: AppendResult],
                           expect: ((Int) -> Bool)? = nil, damage: (_ path: String) throws -> Void) async throws {
        let options = oneSegment
        let source = dir.sub("source-\(seed)")
        let path = dir.sub(label.filter { $0.isLetter || $0.isNumber })
        try Self.crashImage(of: source + "-image", to: path)
        try damage(path)
        let checkpointed = try await Self.checkOpen(path, keys: keys, seed: seed, label, options: options)
        if let expect { #expect(expect(checkpointed), "\(label): \(checkpointed) bytes from the checkpoint") }
    }

    @Test func damagedTornStaleOrOtherVersionCheckpointsAreIgnored() async throws {
        try await withTemporaryDirectory { dir in
            let seed: UInt64 = 31
            var rng = SplitMix64(seed: 0xC4EC)
            let keys = try await Self.source(dir, seed: seed)
            try await Self.damageCase(dir, "intact", seed: seed, keys: keys, expect: { $0 > 0 }) { _ in }
            try await Self.damageCase(dir, "missing", seed: seed, keys: keys, expect: { $0 == 0 }) { try removeFile(try Self.checkpointPath($0)) }
            for i in 0..<12 {
                let at = Int(rng.next() % 1_000_000)
                let bit = UInt8(1) << UInt8(rng.next() % 8)
                try await Self.damageCase(dir, "flip \(i)", seed: seed, keys: keys) { path in
                    var bytes = try readFile(try Self.checkpointPath(path))
                    bytes[at % bytes.count] ^= bit
                    try writeFile(try Self.checkpointPath(path), bytes)
                }
            }
            for i in 0..<8 {
                let cut = Int(rng.next() % 1_000_000)
                // A crash while a record was being appended leaves a torn last record.
                try await Self.damageCase(dir, "torn \(i)", seed: seed, keys: keys) { path in
                    let bytes = try readFile(try Self.checkpointPath(path))
                    try writeFile(try Self.checkpointPath(path), bytes.prefix(cut % bytes.count))
                }
            }
            try await Self.damageCase(dir, "torn record after whole ones", seed: seed, keys: keys, expect: { $0 > 0 }) { path in
                let bytes = try readFile(try Self.checkpointPath(path))
                try writeFile(try Self.checkpointPath(path), bytes + bytes.prefix(ActiveCheckpoint.headerSize + 7))
            }
            // Version 1 (streams and keys decoded whole) and a version from the future.
            for version: UInt8 in [1, 3] {
                try await Self.damageCase(dir, "other version \(version)", seed: seed, keys: keys, expect: { $0 == 0 }) { path in
                    var bytes = try readFile(try Self.checkpointPath(path))
                    bytes[4] = version
                    let crc = CRC32C.checksum(Array(bytes[0..<ActiveCheckpoint.headerSize - 4]))
                    withUnsafeBytes(of: crc.littleEndian) { for k in 0..<4 { bytes[ActiveCheckpoint.headerSize - 4 + k] = $0[k] } }
                    try writeFile(try Self.checkpointPath(path), bytes)
                }
            }
            // Another log's checkpoint beside this segment (same name, same first position).
            _ = try await Self.source(dir, seed: 32)
            try await Self.damageCase(dir, "another log's checkpoint", seed: seed, keys: keys, expect: { $0 == 0 }) { path in
                try writeFile(try Self.checkpointPath(path), try readFile(try Self.checkpointPath(dir.sub("source-32-image"))))
            }
            // A segment cut shorter than its checkpoint (a repair's cut): the records past the cut go.
            try await Self.damageCase(dir, "stale", seed: seed, keys: keys) { path in
                let segment = try Self.activeSegment(path)
                let layout = try batchLayout(ofSegment: segment)
                try writeFile(segment, try readFile(segment).prefix(layout[layout.count / 2].offset))
            }
        }
    }

    /// The writer reads the checkpoint back when it seals (it holds only the batches since
    /// the last record): a checkpoint damaged under it makes the seal scan the segment
    /// instead, and the sealed index still answers as a full scan.
    @Test func aSealWhoseCheckpointIsDamagedScansTheSegment() async throws {
        try await withTemporaryDirectory { dir in
            let path = dir.sub("log")
            let log = try FileLog(directory: path, options: Self.options)
            var keys = try await SealedIndexTests.writeRandomLog(log, seed: 51, appends: 60, streams: 20)
            let segments = try segmentNames(path)
            let checkpoint = try Self.checkpointPath(path)
            let bytes = try readFile(checkpoint)
            try #require(bytes.count > ActiveCheckpoint.headerSize)
            // A stream block of the first record, in place: the writer holds the record's
            // fences and filters, not its blocks, so the seal's merge reads the damage and
            // must not use it.
            let blocks = try CheckpointLookupTests.streamBlocks(bytes, recordAt: 0)
            try CheckpointLookupTests.flipInPlace(checkpoint, at: blocks.lowerBound + 1, bits: 0x01)
            var call = 0
            while try segmentNames(path).count == segments.count, call < 2_000 {
                let result = try await log.append(to: "seal-\(call % 5)", events: [event(payload: noiseBytes(count: 500, seed: UInt64(call)))],
                                                  idempotencyKey: "seal-\(call)")
                keys["seal-\(call)"] = result
                call += 1
            }
            #expect(try segmentNames(path).count > segments.count, "no seal")
            #expect(!fileExists(checkpoint), "the sealed segment's checkpoint is left")
            try await log.close()
            let reopened = try FileLog(directory: path, options: Self.options)
            #expect(reopened.recovery == FileLog.RecoveryReport())
            try await SealedIndexTests.checkAgainstScan(reopened, keys: keys, seed: 51, "sealed over a damaged checkpoint")
            #expect(reopened.indexesRebuiltAtLookup.isEmpty)
            try await reopened.close()
        }
    }

    @Test func tornTailsAndDamageAfterTheCheckpointAreFound() async throws {
        try await withTemporaryDirectory { dir in
            let path = dir.sub("log")
            let log = try FileLog(directory: path, options: Self.options)
            let keys = try await SealedIndexTests.writeRandomLog(log, seed: 41, appends: 240, streams: 60)
            let image = dir.sub("image")
            try Self.crashImage(of: path, to: image)
            try await log.close()
            let segment = try Self.activeSegment(image)
            let layout = try batchLayout(ofSegment: segment)

            var readOnly = Self.options
            readOnly.readOnly = true
            let probe = try FileLog(directory: image, options: readOnly)
            let checkpointed = probe.checkpointedBytes
            try await probe.close()
            let tail = layout.filter { $0.offset >= checkpointed }
            try #require(checkpointed > 0 && tail.count >= 2, "want a checkpoint and two batches after it")

            let torn = dir.sub("torn")
            try Self.crashImage(of: image, to: torn)
            let bytes = try readFile(segment)
            try writeFile(try Self.activeSegment(torn), bytes.prefix(tail.last!.offset + 9))
            let cut = try FileLog(directory: torn, options: Self.options)
            #expect(cut.recovery.tornTail?.offset == tail.last!.offset)
            #expect(cut.checkpointedBytes == checkpointed)
            try await cut.close()
            try await Self.checkOpen(torn, keys: keys, seed: 41, "torn tail")

            let damaged = dir.sub("damaged")
            try Self.crashImage(of: image, to: damaged)
            var flipped = bytes
            flipped[tail[0].dataRange.lowerBound + 3] ^= 0x40
            try writeFile(try Self.activeSegment(damaged), flipped)
            let error = await expectLogError(.corrupted) { _ = try FileLog(directory: damaged, options: Self.options) }
            #expect(error?.message.contains("is damaged at byte \(tail[0].offset), position \(tail[0].header.firstPosition):") == true,
                    "\(String(describing: error))")
        }
    }
}
