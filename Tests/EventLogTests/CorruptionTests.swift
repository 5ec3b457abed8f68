import TallyTestSupport
import Testing
@testable import EventLog

#if canImport(Glibc)
import Glibc
#endif

/// Recovery property: random bit flips anywhere in a segment never crash the log and never
/// yield a wrong event. Opening either fails with `.corrupted` naming the exact position of
/// the damaged batch, or (a sealed segment trusted through its index) the reader that
/// reaches the batch throws. `repair` cuts there and keeps the cut bytes. One writer only.
@Suite(.timeLimit(.minutes(5))) struct CorruptionTests {
    struct Original {
        var files: [String: [UInt8]]
        var segments: [String]
        var layouts: [String: [BatchInfo]]
        var events: [RecordedEvent]
    }

    static func build(segmentSize: Int) async throws -> Original {
        try await withTemporaryDirectory { dir in
            let log = try FileLog(directory: dir.path, options: .init(fsync: .never, segmentSize: segmentSize))
            for call in 0..<100 {
                let events = (0..<(1 + call % 7)).map { i in
                    event("Flip", payload: noiseBytes(count: 200 + (call * 31 + i) % 500, seed: UInt64(call * 16 + i)),
                          recordedAt: Int64(call * 10 + i), correlation: "c\(call)")
                }
                _ = try await log.append(to: "flip-\(call % 5)", events: events, idempotencyKey: call % 2 == 0 ? "f\(call)" : nil)
            }
            let events = try await readAll(log)
            try await log.close()
            var original = Original(files: [:], segments: try segmentNames(dir.path), layouts: [:], events: events)
            for name in try listDirectory(dir.path) where name != "LOCK" {
                original.files[name] = try readFile(dir.sub(name))
            }
            for name in original.segments { original.layouts[name] = try batchLayout(original.files[name]!) }
            return original
        }
    }

    /// The batch holding byte `offset` of a segment.
    static func batch(at offset: Int, in layout: [BatchInfo]) -> BatchInfo {
        layout.first { $0.offset <= offset && offset < $0.end }!
    }

    /// Flips 1–3 random bits in one segment; returns the damaged bytes and the first batch hit.
    static func flip(_ bytes: [UInt8], layout: [BatchInfo], rng: inout SplitMix64) -> ([UInt8], BatchInfo, [Int]) {
        var damaged = bytes
        var offsets: [Int] = []
        let first = Int.random(in: 0..<bytes.count, using: &rng)
        for k in 0..<Int.random(in: 1...3, using: &rng) {
            // Further flips near the first one (same batch, usually) or anywhere.
            let offset = k == 0 ? first
                : (Bool.random(using: &rng) ? min(bytes.count - 1, first + Int.random(in: 0..<64, using: &rng))
                                            : Int.random(in: 0..<bytes.count, using: &rng))
            damaged[offset] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &rng)
            offsets.append(offset)
        }
        // Two flips of the same bit cancel out: what counts is where the bytes differ.
        let changed = (0..<bytes.count).filter { damaged[$0] != bytes[$0] }
        let hit = changed.first.map { batch(at: $0, in: layout) } ?? layout.last!
        return (damaged, hit, changed)
    }

    @Test func bitFlipsInTheActiveSegmentAreFoundAndNamed() async throws {
        let original = try await Self.build(segmentSize: 128 << 20)  // one segment, scanned on open
        let name = try #require(original.segments.first)
        #expect(original.segments.count == 1)
        let layout = original.layouts[name]!
        let bytes = original.files[name]!
        var rng = SplitMix64(seed: 0xF11B)
        for iteration in 0..<150 {
            let (damaged, hit, changed) = Self.flip(bytes, layout: layout, rng: &rng)
            let label = "iteration \(iteration): bytes \(changed) changed, batch at \(hit.offset) position \(hit.header.firstPosition)"
            try await withTemporaryDirectory("flip") { dir in
                try writeFile(dir.sub(name), damaged)
                let opened: FileLog
                do {
                    opened = try FileLog(directory: dir.path, options: .init(fsync: .never))
                } catch let error as EventLogError {
                    #expect(error.code == .corrupted, "\(label): \(error)")
                    #expect(error.message.contains("\(name) is damaged at byte \(hit.offset), position \(hit.header.firstPosition):"),
                            "\(label): \(error)")
                    #expect(try readFile(dir.sub(name)) == damaged, "\(label): opening changed the segment")
                    // The verifier names the same batch.
                    let report = try LogVerifier.verify(directory: dir.path)
                    #expect(report.firstBreak?.position == hit.header.firstPosition, "\(label)")
                    #expect(report.firstBreak?.offset == hit.offset, "\(label)")
                    if iteration % 8 == 0 { try await Self.checkRepair(original, dir: dir, segment: name, damaged: damaged, hit: hit, label: label) }
                    return
                }
                // Opening succeeded: only possible when nothing checked was changed, or the
                // damage was taken for a torn last batch. Every event read must be original.
                let events = try await readAll(opened)
                if let torn = opened.recovery.tornTail {
                    #expect(hit.offset == layout.last!.offset, "\(label): torn tail \(torn) for damage before the last batch")
                    #expect(events == Array(original.events[0..<Int(hit.header.firstPosition - 1)]), "\(label)")
                } else {
                    #expect(events == original.events, "\(label): opened without a report but reads differ")
                }
                try await opened.close()
            }
        }
    }

    /// Opening with repair cuts at the damaged batch, keeps the cut bytes, and continues there.
    static func checkRepair(_ original: Original, dir: TemporaryDirectory, segment: String, damaged: [UInt8], hit: BatchInfo,
                            label: String, movedAside: [String] = []) async throws {
        let position = hit.header.firstPosition
        let log = try FileLog(directory: dir.path, options: .init(fsync: .never, segmentSize: 64 << 10, repair: true))
        let repair = try #require(log.recovery.repair, "\(label): no repair reported")
        #expect(repair.segment == segment && repair.offset == hit.offset && repair.position == position, "\(label): \(repair)")
        #expect(repair.bytesCut == damaged.count - hit.offset, "\(label)")
        #expect(repair.segmentsMovedAside == movedAside, "\(label)")
        #expect(log.recovery.tornTail == nil)
        #expect(try readFile(dir.sub(segment + ".damaged")) == Array(damaged[hit.offset...]), "\(label): cut bytes not kept")
        #expect(try readFile(dir.sub(segment)) == Array(damaged[0..<hit.offset]), "\(label)")
        for name in movedAside {
            #expect(try readFile(dir.sub(name + ".damaged")) == original.files[name]!, "\(label): \(name) not moved aside whole")
            #expect(!fileExists(dir.sub(name)) && !fileExists(dir.sub(indexName(name))), "\(label)")
        }
        let prefix = Array(original.events[0..<Int(position - 1)])
        #expect(try await readAll(log) == prefix, "\(label)")
        #expect(try await log.append(to: "flip-0", events: [textEvent("after repair")]).positions == position...position, "\(label)")
        try await log.close()
        let reopened = try FileLog(directory: dir.path, options: .init(fsync: .never, segmentSize: 64 << 10))
        #expect(reopened.recovery.repair == nil && reopened.recovery.tornTail == nil, "\(label)")
        #expect(try await readAll(reopened).map(\.position) == Array(1...position), "\(label)")
        try await reopened.close()
    }

    @Test func bitFlipsInSealedSegments() async throws {
        let original = try await Self.build(segmentSize: 64 << 10)
        try #require(original.segments.count >= 3, "want several sealed segments, got \(original.segments)")
        var rng = SplitMix64(seed: 0x5EA1)
        for iteration in 0..<60 {
            let which = Int.random(in: 0..<(original.segments.count - 1), using: &rng)
            let name = original.segments[which]
            let (damaged, hit, changed) = Self.flip(original.files[name]!, layout: original.layouts[name]!, rng: &rng)
            let keepIndex = iteration % 2 == 0
            let label = "iteration \(iteration): \(name) bytes \(changed), position \(hit.header.firstPosition), index kept: \(keepIndex)"
            try await withTemporaryDirectory("sealed") { dir in
                for (file, bytes) in original.files { try writeFile(dir.sub(file), bytes) }
                try writeFile(dir.sub(name), damaged)
                if keepIndex {
                    // The index is trusted (the segment is not rescanned), so the reader that
                    // reaches the damaged batch must throw rather than return it.
                    let log = try FileLog(directory: dir.path, options: .init(fsync: .never, segmentSize: 64 << 10))
                    #expect(log.recovery == FileLog.RecoveryReport(), "\(label)")
                    let (events, error) = await readUntilError(log)
                    #expect(events == Array(original.events[0..<events.count]), "\(label): a wrong event was read")
                    if let error {
                        #expect((error as? EventLogError)?.code == .corrupted, "\(label): \(error)")
                        #expect(events.count == Int(hit.header.firstPosition - 1), "\(label): stopped at \(events.count + 1)")
                    } else {
                        #expect(events == original.events, "\(label)")
                    }
                    try await log.close()
                } else {
                    try removeFile(dir.sub(indexName(name)))
                    let error = await expectLogError(.corrupted, label) {
                        _ = try FileLog(directory: dir.path, options: .init(fsync: .never, segmentSize: 64 << 10))
                    }
                    #expect(error?.message.contains("\(name) is damaged at byte \(hit.offset), position \(hit.header.firstPosition):") == true,
                            "\(label): \(String(describing: error))")
                    if iteration % 6 == 1 {
                        try await Self.checkRepair(original, dir: dir, segment: name, damaged: damaged, hit: hit, label: label,
                                                   movedAside: Array(original.segments[(which + 1)...]))
                    }
                }
                // The verifier trusts no index either way.
                #expect(try LogVerifier.verify(directory: dir.path).firstBreak?.position == (iteration % 6 == 1 && !keepIndex ? nil : hit.header.firstPosition),
                        "\(label)")
            }
        }
    }

    @Test func aMissingMiddleSegmentIsDamage() async throws {
        let original = try await Self.build(segmentSize: 64 << 10)
        try #require(original.segments.count >= 3)
        let missing = original.segments[1]
        let expected = original.layouts[missing]![0].header.firstPosition
        try await withTemporaryDirectory { dir in
            for (file, bytes) in original.files where file != missing && file != indexName(missing) {
                try writeFile(dir.sub(file), bytes)
            }
            let after = original.segments[2]
            let error = await expectLogError(.corrupted) { _ = try FileLog(directory: dir.path) }
            #expect(error?.message.contains("segment \(after) starts at position \(original.layouts[after]![0].header.firstPosition), expected \(expected)") == true,
                    "\(String(describing: error))")
            #expect(try LogVerifier.verify(directory: dir.path).firstBreak?.position == expected)

            let repaired = try FileLog(directory: dir.path, options: .init(fsync: .never, segmentSize: 64 << 10, repair: true))
            #expect(repaired.recovery.repair?.position == expected)
            #expect(repaired.recovery.repair?.segmentsMovedAside == Array(original.segments[2...]))
            #expect(try await readAll(repaired) == Array(original.events[0..<Int(expected - 1)]))
            #expect(try await repaired.append(to: "flip-0", events: [textEvent("on")]).positions == expected...expected)
            try await repaired.close()
            #expect(try LogVerifier.verify(directory: dir.path).intact)
        }
    }

    @Test func aSecondWriterIsLockedOut() async throws {
        try await withTemporaryDirectory { dir in
            let writer = try FileLog(directory: dir.path)
            _ = try await writer.append(to: "lock-1", events: [textEvent("a")])
            let error = await expectLogError(.locked) { _ = try FileLog(directory: dir.path) }
            #expect(error?.message.contains("process \(getpid())") == true, "\(String(describing: error))")
            // Readers are welcome meanwhile.
            let reader = try FileLog(directory: dir.path, options: .init(readOnly: true))
            #expect(try await readAll(reader).map(text) == ["a"])
            try await reader.close()
            _ = try await writer.append(to: "lock-1", events: [textEvent("b")])
            try await writer.close()
            // Once closed, the next writer gets the lock.
            let next = try FileLog(directory: dir.path)
            #expect(try await readAll(next).map(text) == ["a", "b"])
            await expectLogError(.locked) { _ = try FileLog(directory: dir.path) }
            try await next.close()
        }
    }
}
