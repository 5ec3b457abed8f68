import Synchronization
import TallyTestSupport
import Testing
@testable import EventLog

/// The on-disk indexes of sealed segments (streams and idempotency keys): they answer as a
/// full scan of the log does, across seals and reopen, with a tiny cache and without one;
/// damaged, missing, other-version and half-written index files are rebuilt, never trusted;
/// and the writer holds only the active segment's streams plus a bounded cache.
@Suite(.timeLimit(.minutes(5))) struct SealedIndexTests {
    static let options = FileLog.Options(fsync: .never, segmentSize: 64 << 10)

    /// A random log: `appends` appends over `streams` streams (some to two streams at once,
    /// some keyed, some with an expected version), payloads of 60…400 incompressible bytes,
    /// so that 64 KiB segments seal many times. Returns the keys' first results.
    static func writeRandomLog(_ log: FileLog, seed: UInt64, appends: Int = 700, streams: Int = 250) async throws -> [String: AppendResult] {
        var rng = SplitMix64(seed: seed)
        var keys: [String: AppendResult] = [:]
        var versions: [String: UInt64] = [:]
        for call in 0..<appends {
            let stream = "rand-\(rng.next() % UInt64(streams))"
            let count = Int(rng.next() % 3) + 1
            var expected = ExpectedVersion.any
            if rng.next() % 3 == 0 { expected = versions[stream].map { .exact($0) } ?? .noStream }
            var batch = [StreamAppend(stream: stream, expected: expected, events: (0..<count).map { i in
                event(payload: noiseBytes(count: 60 + Int(rng.next() % 340), seed: UInt64(call * 8 + i)))
            })]
            let other = "side-\(rng.next() % 40)"
            if rng.next() % 5 == 0, other != stream { batch.append(StreamAppend(stream: other, events: [textEvent("side \(call)")])) }
            let key = rng.next() % 4 == 0 ? "key-\(seed)-\(call)" : nil
            let result = try await log.append(batch, idempotencyKey: key)
            for (name, version) in result.streamVersions { versions[name] = version }
            if let key { keys[key] = result }
        }
        return keys
    }

    /// Checks every stream (and one that does not exist) against a full scan: version,
    /// whole stream, and reads from random versions with random limits; then every key's
    /// retry, which must return the first result and write nothing.
    static func checkAgainstScan(_ log: FileLog, keys: [String: AppendResult], seed: UInt64, _ label: String,
                                 sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let all = try await readAll(log)
        let scanned = Dictionary(grouping: all, by: \.stream)
        var rng = SplitMix64(seed: seed ^ 0x5EED)
        for (stream, events) in scanned {
            #expect(try await log.streamVersion(stream) == UInt64(events.count - 1), "\(label): \(stream)", sourceLocation: sourceLocation)
            #expect(try await log.readStream(stream) == events, "\(label): \(stream)", sourceLocation: sourceLocation)
            let from = rng.next() % UInt64(events.count + 1)
            let limit = Int(rng.next() % 6)
            let expected = Array(events.dropFirst(Int(from)).prefix(limit))
            #expect(try await log.readStream(stream, fromVersion: from, limit: limit) == expected,
                    "\(label): \(stream) from \(from) limit \(limit)", sourceLocation: sourceLocation)
        }
        #expect(try await log.streamVersion("rand-absent") == nil, sourceLocation: sourceLocation)
        #expect(try await log.readStream("rand-absent").isEmpty, sourceLocation: sourceLocation)
        let head = log.currentHead()
        for (key, first) in keys {
            var expected = first
            expected.deduplicated = true
            let again = try await log.append(to: "rand-0", events: [textEvent("retry")], idempotencyKey: key)
            #expect(again == expected, "\(label): retry of \(key)", sourceLocation: sourceLocation)
        }
        #expect(log.currentHead() == head, "\(label): a retry wrote", sourceLocation: sourceLocation)
    }

    @Test func indexesAnswerAsAFullScanAcrossSealsAndReopen() async throws {
        try await withTemporaryDirectory { dir in
            for seed: UInt64 in [1, 2] {
                let path = dir.sub("log-\(seed)")
                let log = try FileLog(directory: path, options: Self.options)
                let keys = try await Self.writeRandomLog(log, seed: seed)
                try #require(try segmentNames(path).count >= 5, "want many seals")
                try await Self.checkAgainstScan(log, keys: keys, seed: seed, "live")
                try await log.close()

                for capacity in [100_000, 3, 0] {
                    var options = Self.options
                    options.streamCacheCapacity = capacity
                    let reopened = try FileLog(directory: path, options: options)
                    #expect(reopened.recovery == FileLog.RecoveryReport())
                    try await Self.checkAgainstScan(reopened, keys: keys, seed: seed, "reopened, cache \(capacity)")
                    // Expected versions of streams whose events are all in sealed segments decide right.
                    let stream = "rand-\(seed)"
                    let version = try #require(try await reopened.streamVersion(stream))
                    await expectLogError(.wrongExpectedVersion) {
                        _ = try await reopened.append(to: stream, expected: .noStream, events: [textEvent("stale")])
                    }
                    let next = try await reopened.append(to: stream, expected: .exact(version), events: [textEvent("next")])
                    #expect(next.streamVersions[stream] == version + 1)
                    #expect(reopened.indexesRebuiltAtLookup.isEmpty)
                    try await reopened.close()
                }
                var readOnly = Self.options
                readOnly.readOnly = true
                let reader = try FileLog(directory: path, options: readOnly)
                let all = try await readAll(reader)
                for (stream, events) in Dictionary(grouping: all, by: \.stream) {
                    #expect(try await reader.readStream(stream) == events)
                }
                try await reader.close()
            }
        }
    }

    /// One copy of a random log and its scan, for the damage cases.
    static func damageCase(_ dir: TemporaryDirectory, _ label: String, seed: UInt64,
                           damage: (_ path: String, _ sealed: [String]) throws -> Void) async throws {
        let path = dir.sub(label.filter { $0.isLetter || $0.isNumber })
        let log = try FileLog(directory: path, options: Self.options)
        let keys = try await Self.writeRandomLog(log, seed: seed, appends: 300, streams: 120)
        try await log.close()
        let sealed = try segmentNames(path).dropLast().map { $0 }
        try #require(sealed.count >= 2)
        let originals = try sealed.map { try readFile(path + "/" + indexName($0)) }
        try damage(path, sealed)

        let reopened = try FileLog(directory: path, options: Self.options)
        try await Self.checkAgainstScan(reopened, keys: keys, seed: seed, label)
        let rebuilt = reopened.recovery.rebuiltIndexes + reopened.indexesRebuiltAtLookup
        try await reopened.close()
        #expect(rebuilt.contains(sealed[0]), "\(label): rebuilt \(rebuilt)")
        for (name, original) in zip(sealed, originals) {
            #expect(try readFile(path + "/" + indexName(name)) == original, "\(label): \(name) not as the writer wrote it")
        }
        // And the rebuilt indexes are trusted on the next open.
        let again = try FileLog(directory: path, options: Self.options)
        #expect(again.recovery == FileLog.RecoveryReport(), "\(label)")
        try await again.close()
    }

    @Test func damagedMissingOrOtherVersionIndexIsRebuilt() async throws {
        try await withTemporaryDirectory { dir in
            func first(_ path: String, _ sealed: [String]) -> String { path + "/" + indexName(sealed[0]) }
            // A flipped bit in every region: header, batches, blocks, fences and filters.
            for eighth in 0..<8 {
                try await Self.damageCase(dir, "flip \(eighth)", seed: 10 + UInt64(eighth)) { path, sealed in
                    var bytes = try readFile(first(path, sealed))
                    let offset = eighth == 0 ? 20 : bytes.count * eighth / 8
                    bytes[offset] ^= 0x10
                    try writeFile(first(path, sealed), bytes)
                }
            }
            try await Self.damageCase(dir, "truncated", seed: 20) { path, sealed in
                let bytes = try readFile(first(path, sealed))
                try writeFile(first(path, sealed), bytes.prefix(bytes.count - 7))
            }
            try await Self.damageCase(dir, "missing", seed: 21) { path, sealed in try removeFile(first(path, sealed)) }
            try await Self.damageCase(dir, "other version", seed: 22) { path, sealed in
                var bytes = try readFile(first(path, sealed))
                try patchIndexHeader(&bytes) { $0[4] = 1 }
                try writeFile(first(path, sealed), bytes)
            }
        }
    }

    /// What a crash leaves at each step of writing an index (temporary file, fsync, rename,
    /// directory fsync): opening still answers right and ends with the writer's index.
    @Test func crashAtEveryStageOfWritingAnIndexStillOpens() async throws {
        try await withTemporaryDirectory { dir in
            func paths(_ path: String, _ sealed: [String]) -> (index: String, temporary: String) {
                let index = path + "/" + indexName(sealed.last!)
                return (index, index + ".tmp")
            }
            try await Self.damageCase(dir, "empty temporary", seed: 30) { path, sealed in
                let (index, temporary) = paths(path, sealed)
                try removeFile(index)
                try writeFile(temporary, [])
                try removeFile(path + "/" + indexName(sealed[0]))
            }
            try await Self.damageCase(dir, "half written temporary", seed: 31) { path, sealed in
                let (index, temporary) = paths(path, sealed)
                let bytes = try readFile(index)
                try removeFile(index)
                try writeFile(temporary, bytes.prefix(bytes.count / 2))
                try removeFile(path + "/" + indexName(sealed[0]))
            }
            try await Self.damageCase(dir, "synced, not renamed", seed: 32) { path, sealed in
                let (index, temporary) = paths(path, sealed)
                let bytes = try readFile(index)
                try removeFile(index)
                try writeFile(temporary, bytes)
                try removeFile(path + "/" + indexName(sealed[0]))
            }
            try await Self.damageCase(dir, "renamed, stale temporary beside", seed: 33) { path, sealed in
                let (index, temporary) = paths(path, sealed)
                try writeFile(temporary, try readFile(index).prefix(100))
                try writeFile(path + "/" + indexName(sealed[0]), try readFile(path + "/" + indexName(sealed[0])).prefix(50))
            }
            try await Self.damageCase(dir, "torn index file", seed: 34) { path, sealed in
                let index = path + "/" + indexName(sealed[0])
                let bytes = try readFile(index)
                try writeFile(index, bytes.prefix(SealedSegmentIndex.headerSize + 3))
            }
        }
    }

    /// The writer's in-memory streams are the active segment's only, and the cache of sealed
    /// streams never holds more than its capacity, while the number of streams grows.
    @Test func writerMemoryStaysBoundedWhileStreamsGrow() async throws {
        try await withTemporaryDirectory { dir in
            var options = Self.options
            options.streamCacheCapacity = 40
            let log = try FileLog(directory: dir.path, options: options)
            func held() -> (active: Set<String>, activeFirst: LogPosition, cached: Int, sealed: Int) {
                log.core.state.withLock { s in
                    (Set(s.streams.keys), s.segments[s.activeSegment].firstPosition, s.sealed.cache.count, s.sealed.segments.count)
                }
            }
            var maxActive = 0
            for round in 0..<6 {
                for i in 0..<250 {
                    let stream = "grow-\(round)-\(i)"
                    _ = try await log.append(to: stream, expected: .noStream, events: [event(payload: noiseBytes(count: 200, seed: UInt64(round * 1000 + i)))])
                }
                // Appends with expected versions to old streams: decided through the sealed
                // indexes and the cache.
                for i in stride(from: 0, to: 250, by: 3) {
                    let stream = "grow-0-\(i)"
                    let version = try #require(try await log.streamVersion(stream))
                    _ = try await log.append(to: stream, expected: .exact(version), events: [textEvent("again \(round)")])
                }
                let now = held()
                let all = try await readAll(log, from: now.activeFirst)
                #expect(now.active == Set(all.map(\.stream)), "round \(round): the map holds exactly the active segment's streams")
                #expect(now.cached <= 40, "round \(round): cache holds \(now.cached)")
                maxActive = max(maxActive, now.active.count)
            }
            let final = held()
            #expect(final.sealed >= 10, "want many seals, got \(final.sealed)")
            #expect(maxActive < 6 * 250 / 3, "the active map grew with the history: \(maxActive)")
            #expect(final.cached == 40)
            try await log.close()
        }
    }

    /// Under `fsync always` a segment can be sealed while its last batches still wait for
    /// their sync: stream reads racing those seals see every stream whole and in version
    /// order, never a position past the head and never a version that is not durable yet.
    @Test func streamReadsRacingDurableSealsSeeWholeStreams() async throws {
        try await withTemporaryDirectory { dir in
            let log = try FileLog(directory: dir.path, options: FileLog.Options(fsync: .always, segmentSize: 64 << 10))
            let writers = 8
            let calls = 60
            let done = Locked(0)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<writers {
                    group.addTask {
                        for call in 0..<calls {
                            let expected: ExpectedVersion = call == 0 ? .noStream : .exact(UInt64(call - 1))
                            _ = try await log.append(to: "race-\(writer)", expected: expected, events: [
                                event(payload: noiseBytes(count: 1000, seed: UInt64(writer * 1000 + call))),
                            ])
                        }
                        done.withLock { $0 += 1 }
                    }
                }
                group.addTask {
                    var finished = false
                    while !finished {
                        finished = done.withLock { $0 } == writers
                        for writer in 0..<writers {
                            let stream = "race-\(writer)"
                            let version = try await log.streamVersion(stream)
                            let events = try await log.readStream(stream)
                            #expect(events.map(\.streamVersion) == (0..<UInt64(events.count)).map { $0 })
                            #expect(UInt64(events.count) >= (version.map { $0 + 1 } ?? 0))
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(try segmentNames(dir.path).count >= 4)
            for writer in 0..<writers {
                #expect(try await log.readStream("race-\(writer)").count == calls)
            }
            try await log.close()
        }
    }
}
