import TallyTestSupport
import Testing
@testable import EventLog

/// Recovery property: cutting the last segment anywhere (what a crash mid-write leaves)
/// reopens to exactly the complete batches before the cut, reports the torn tail precisely,
/// and appends continue at the right position.
@Suite(.timeLimit(.minutes(5))) struct TornTailTests {
    static let options = FileLog.Options(fsync: .never, segmentSize: 64 << 10)

    /// A built log, kept in memory so that each case can lay out a damaged copy.
    struct Original {
        var files: [String: [UInt8]]      // every segment and index
        var segments: [String]
        var events: [RecordedEvent]
        var layout: [BatchInfo]           // of the last segment
        var lastSegmentFirst: LogPosition
        var hashBefore: [UInt8]           // chain hash before the last segment's first batch

        var lastName: String { segments.last! }
        var lastBytes: [UInt8] { files[lastName]! }
    }

    /// ~300 events in 2 segments and dozens of batches; the last two batches are small so
    /// that every one of their offsets can be tried.
    static func build() async throws -> Original {
        try await withTemporaryDirectory { dir in
            let log = try FileLog(directory: dir.path, options: options)
            for call in 0..<70 {
                let n = 1 + call % 6
                let events = (0..<n).map { i in
                    event("Filled", payload: noiseBytes(count: 150 + (call * 13 + i) % 150, seed: UInt64(call * 8 + i)),
                          recordedAt: Int64(call), actor: "a\(call)")
                }
                _ = try await log.append(to: "torn-\(call % 4)", events: events, idempotencyKey: call % 3 == 0 ? "t\(call)" : nil)
            }
            _ = try await log.append(to: "torn-1", events: [textEvent("small a"), textEvent("small b")])
            _ = try await log.append(to: "torn-2", events: [textEvent("small c"), textEvent("small d")])
            let events = try await readAll(log)
            try await log.close()
            let segments = try segmentNames(dir.path)
            var files: [String: [UInt8]] = [:]
            for name in segments { files[name] = try readFile(dir.sub(name)) }
            for name in segments.dropLast() { files[indexName(name)] = try readFile(dir.sub(indexName(name))) }
            let layout = try batchLayout(files[segments.last!]!)
            return Original(files: files, segments: segments, events: events, layout: layout,
                            lastSegmentFirst: layout[0].header.firstPosition, hashBefore: layout[0].header.previousHash)
        }
    }

    /// Writes `original` into `dir` with the last segment cut to `cut` bytes (or replaced).
    static func lay(_ original: Original, into dir: TemporaryDirectory, lastSegment: [UInt8]) throws {
        for (name, bytes) in original.files where name != original.lastName { try writeFile(dir.sub(name), bytes) }
        try writeFile(dir.sub(original.lastName), lastSegment)
    }

    /// Opens a log whose last segment was cut at `cut` and checks recovery, reads, an append
    /// and a clean reopen.
    static func checkCut(_ original: Original, at cut: Int, zeroTail: Int = 0, reopen: Bool) async throws {
        try await withTemporaryDirectory("cut") { dir in
            let bytes = Array(original.lastBytes[0..<cut]) + [UInt8](repeating: 0, count: zeroTail)
            try lay(original, into: dir, lastSegment: bytes)
            let complete = original.layout.filter { $0.end <= cut }
            let boundary = complete.last?.end ?? 0
            let head = complete.last?.header.lastPosition ?? original.lastSegmentFirst - 1
            let hash = complete.last?.header.chainHash ?? original.hashBefore
            let torn = bytes.count - boundary
            let label = "cut at \(cut) of \(original.lastBytes.count) (+\(zeroTail) zero bytes)"

            let log = try FileLog(directory: dir.path, options: options)
            let expectedTail = torn == 0 ? nil
                : FileLog.RecoveryReport.TornTail(segment: original.lastName, offset: boundary, bytes: torn, fromPosition: head + 1)
            #expect(log.recovery == FileLog.RecoveryReport(tornTail: expectedTail, repair: nil, rebuiltIndexes: []), "\(label)")
            #expect(log.currentHead() == LogHead(position: head, chainHash: hash), "\(label)")
            #expect(try fileSize(dir.sub(original.lastName)) == boundary, "\(label): tail not cut")
            let prefix = Array(original.events[0..<Int(head)])
            #expect(try await readAll(log) == prefix, "\(label)")
            let streamCount = prefix.filter { $0.stream == "torn-1" }.count
            let next = try await log.append(to: "torn-1", expected: streamCount == 0 ? .noStream : .exact(UInt64(streamCount - 1)),
                                            events: [textEvent("after \(cut)")])
            #expect(next == AppendResult(positions: head + 1...head + 1, streamVersions: ["torn-1": UInt64(streamCount)], deduplicated: false),
                    "\(label)")
            try await log.close()
            guard reopen else { return }
            let again = try FileLog(directory: dir.path, options: .init(fsync: .never, segmentSize: 64 << 10, readOnly: true))
            #expect(again.recovery == FileLog.RecoveryReport(), "\(label): reopen not clean")
            let events = try await readAll(again)
            #expect(events.dropLast() == prefix[...], "\(label)")
            #expect(events.last?.position == head + 1, "\(label)")
            #expect(events.last.map(text) == "after \(cut)", "\(label)")
            try await again.close()
        }
    }

    @Test func cutAtEveryOffsetOfTheLastTwoBatches() async throws {
        let original = try await Self.build()
        try #require(original.segments.count >= 2, "want a sealed segment before the last one")
        try #require(original.layout.count >= 4)
        let lastTwo = original.layout.suffix(2)
        #expect(lastTwo.allSatisfy { $0.header.totalSize < 400 })
        let end = original.lastBytes.count
        for cut in lastTwo.first!.offset...end {
            // The full reopen check at boundaries, near them and on a sample of the rest.
            let nearBoundary = original.layout.contains { abs($0.offset - cut) <= 2 || abs($0.end - cut) <= 2 }
            try await Self.checkCut(original, at: cut, reopen: nearBoundary || cut % 9 == 0)
        }
    }

    @Test func cutAtRandomOffsetsOfTheLastSegment() async throws {
        let original = try await Self.build()
        var rng = SplitMix64(seed: 20_240_611)
        let limit = original.layout.suffix(2).first!.offset
        var cuts = [0, BatchHeader.framedSize - 1, BatchHeader.framedSize, BatchHeader.framedSize + 1, original.layout[1].offset]
        cuts += (0..<60).map { _ in Int.random(in: 0..<limit, using: &rng) }
        for cut in cuts { try await Self.checkCut(original, at: cut, reopen: true) }
    }

    @Test func zeroFilledTailIsTorn() async throws {
        // A crash after the file grew but before the data landed leaves zero bytes.
        let original = try await Self.build()
        let end = original.lastBytes.count
        for zeros in [1, 100, BatchHeader.framedSize, 4096] {
            try await Self.checkCut(original, at: end, zeroTail: zeros, reopen: true)
        }
    }

    @Test func partlyWrittenLastBatchFollowedByZerosIsDamage() async throws {
        // Documented behaviour (docs/log-format.md): only a file that ends inside a batch, or
        // whose rest is all zero bytes, is a torn tail. A last batch with some of its bytes
        // and zeros after them fails a check, so it is damage: opening refuses and names it,
        // and `repair` cuts it.
        let original = try await Self.build()
        let last = original.layout.last!
        for (label, keep) in [("half a header", 60), ("header and part of the data", BatchHeader.framedSize + 20)] {
            try await withTemporaryDirectory { dir in
                let bytes = Array(original.lastBytes[0..<(last.offset + keep)]) + [UInt8](repeating: 0, count: last.header.totalSize)
                try Self.lay(original, into: dir, lastSegment: bytes)
                let error = await expectLogError(.corrupted, label) { _ = try FileLog(directory: dir.path, options: Self.options) }
                #expect(error?.message.contains("is damaged at byte \(last.offset), position \(last.header.firstPosition):") == true,
                        "\(label): \(String(describing: error))")
                var repair = Self.options
                repair.repair = true
                let log = try FileLog(directory: dir.path, options: repair)
                #expect(log.recovery.repair?.position == last.header.firstPosition, "\(label)")
                #expect(try await readAll(log) == Array(original.events[0..<Int(last.header.firstPosition - 1)]), "\(label)")
                try await log.close()
            }
        }
    }

    @Test func cutInsideASealedSegmentIsDamageNotATornTail() async throws {
        let original = try await Self.build()
        let sealed = original.segments[0]
        let layout = try batchLayout(original.files[sealed]!)
        try await withTemporaryDirectory { dir in
            for victim in [layout[0], layout[layout.count / 2], layout[layout.count - 1]] {
                for cut in [victim.offset + 1, victim.offset + BatchHeader.framedSize + 3, victim.end - 1] {
                    for (name, bytes) in original.files { try writeFile(dir.sub(name), bytes) }
                    try writeFile(dir.sub(sealed), original.files[sealed]![0..<cut])
                    let error = await expectLogError(.corrupted, "cut at \(cut)") {
                        _ = try FileLog(directory: dir.path, options: Self.options)
                    }
                    let message = error?.message ?? ""
                    #expect(message.contains("\(sealed) is damaged at byte \(victim.offset), position \(victim.header.firstPosition):"),
                            "\(message)")
                    // Nothing on disk changed.
                    #expect(try readFile(dir.sub(sealed)) == Array(original.files[sealed]![0..<cut]))
                    #expect(try readFile(dir.sub(original.lastName)) == original.lastBytes)
                }
            }
            // Cut exactly at a batch boundary: the sealed segment reads clean, but the next one
            // no longer continues it.
            for (name, bytes) in original.files { try writeFile(dir.sub(name), bytes) }
            try writeFile(dir.sub(sealed), original.files[sealed]![0..<layout[layout.count - 1].offset])
            let error = await expectLogError(.corrupted) { _ = try FileLog(directory: dir.path, options: Self.options) }
            #expect(error?.message.contains("starts at position \(original.lastSegmentFirst), expected \(layout.last!.header.firstPosition)") == true,
                    "\(String(describing: error))")
        }
    }
}
