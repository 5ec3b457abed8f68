import TallyTestSupport
import Testing
@testable import EventLog

/// Segments roll at the configured size; reads cross sealed segments; a sealed segment's
/// `.idx` is used on open, and rebuilt (byte for byte) when missing, corrupted or stale.
@Suite(.timeLimit(.minutes(3))) struct SegmentIndexTests {
    static let options = FileLog.Options(fsync: .never, segmentSize: 64 << 10)

    /// A log of ~200 KiB over at least three segments, with keyed and multi-stream appends.
    static func writeLog(_ path: String) async throws -> [RecordedEvent] {
        let log = try FileLog(directory: path, options: options)
        for call in 0..<120 {
            var appends = [StreamAppend(stream: "seg-\(call % 7)", events: (0..<4).map { i in
                event("Filled", payload: noiseBytes(count: 300 + (call * 37 + i) % 200, seed: UInt64(call * 10 + i)),
                      recordedAt: Int64(call * 1000 + i), actor: "actor-\(call)")
            })]
            if call % 5 == 0 { appends.append(StreamAppend(stream: "side-\(call % 3)", events: [textEvent("side \(call)")])) }
            _ = try await log.append(appends, idempotencyKey: call % 4 == 0 ? "seg-key-\(call)" : nil)
        }
        let events = try await readAll(log)
        #expect(events.count == 120 * 4 + 24)
        // Not `1...count`: a read cut short (a time limit) must fail this check, not trap.
        #expect(events.map(\.position) == (0..<events.count).map { LogPosition($0 + 1) })
        try await log.close()
        return events
    }

    static func streamsOf(_ events: [RecordedEvent]) -> [String: [RecordedEvent]] {
        Dictionary(grouping: events, by: \.stream)
    }

    /// Opens `path`, checks it reads exactly `events` (whole log, from a segment boundary,
    /// every stream, dedup of an early key), closes it and returns its recovery report.
    static func openAndCheck(_ path: String, _ events: [RecordedEvent], options: FileLog.Options = options,
                             sourceLocation: SourceLocation = #_sourceLocation) async throws -> FileLog.RecoveryReport {
        try await openAndCheckRebuilt(path, events, options: options, sourceLocation: sourceLocation).report
    }

    /// `openAndCheck`, also returning the indexes rebuilt at a lookup (damage in an entry
    /// block is found when the block is read, not on open).
    static func openAndCheckRebuilt(_ path: String, _ events: [RecordedEvent], options: FileLog.Options = options,
                                    sourceLocation: SourceLocation = #_sourceLocation) async throws -> (report: FileLog.RecoveryReport, atLookup: [String]) {
        let log = try FileLog(directory: path, options: options)
        #expect(try await readAll(log) == events, sourceLocation: sourceLocation)
        let secondSegmentFirst = try #require(try SegmentNaming.segments(in: path).dropFirst().first?.firstPosition)
        #expect(try await readAll(log, from: secondSegmentFirst - 1) == Array(events[Int(secondSegmentFirst - 2)...]),
                sourceLocation: sourceLocation)
        for (stream, mine) in streamsOf(events) {
            #expect(try await log.readStream(stream) == mine, "stream \(stream)", sourceLocation: sourceLocation)
            #expect(try await log.streamVersion(stream) == UInt64(mine.count - 1), sourceLocation: sourceLocation)
        }
        #expect(log.currentHead().position == LogPosition(events.count), sourceLocation: sourceLocation)
        if !options.readOnly {
            // Key of call 0 (positions 1...5, in the first, sealed segment).
            let again = try await log.append([StreamAppend(stream: "seg-0", events: [textEvent("dup")])], idempotencyKey: "seg-key-0")
            #expect(again == AppendResult(positions: 1...5, streamVersions: ["seg-0": 3, "side-0": 0], deduplicated: true),
                    sourceLocation: sourceLocation)
        }
        let atLookup = log.indexesRebuiltAtLookup
        try await log.close()
        return (log.recovery, atLookup)
    }

    @Test func segmentsRollAndReadsCrossThem() async throws {
        try await withTemporaryDirectory { dir in
            let events = try await Self.writeLog(dir.path)
            let segments = try SegmentNaming.segments(in: dir.path)
            try #require(segments.count >= 3, "expected at least 3 segments, got \(segments.map(\.name))")
            var next: LogPosition = 1
            for (i, segment) in segments.enumerated() {
                let path = dir.sub(segment.name)
                let layout = try batchLayout(ofSegment: path)
                // Named by its first position; positions continue across segments.
                #expect(segment.firstPosition == next)
                #expect(layout.first?.header.firstPosition == next)
                if let last = layout.last { next = last.header.lastPosition + 1 }
                let isLast = i == segments.count - 1
                #expect(fileExists(dir.sub(indexName(segment.name))) == !isLast, "index of \(segment.name)")
                if !isLast {
                    // Sealed at the first batch that took it to the segment size, not before.
                    let size = try fileSize(path)
                    #expect(size >= 64 << 10)
                    #expect(layout.dropLast().last.map { $0.end < 64 << 10 } ?? true)
                }
            }
            #expect(next == LogPosition(events.count) + 1)
            let report = try await Self.openAndCheck(dir.path, events)
            #expect(report == FileLog.RecoveryReport())
        }
    }

    @Test func segmentsRollUnderConcurrentDurableAppends() async throws {
        // fsync always while segments seal under concurrent appenders: batches in flight to
        // the disk when their segment is sealed must still land, in order.
        try await withTemporaryDirectory { dir in
            let options = FileLog.Options(fsync: .always, segmentSize: 64 << 10)
            let log = try FileLog(directory: dir.path, options: options)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<16 {
                    group.addTask {
                        for call in 0..<40 {
                            let expected: ExpectedVersion = call == 0 ? .noStream : .exact(UInt64(call * 2 - 1))
                            _ = try await log.append(to: "roll-\(writer)", expected: expected, events: [
                                event(payload: noiseBytes(count: 300, seed: UInt64(writer * 1000 + call))),
                                textEvent("w\(writer) c\(call)"),
                            ])
                        }
                    }
                }
                try await group.waitForAll()
            }
            let all = try await readAll(log)
            #expect(all.count == 16 * 40 * 2)
            #expect(all.map(\.position) == (0..<all.count).map { LogPosition($0 + 1) })
            for writer in 0..<16 {
                let stream = try await log.readStream("roll-\(writer)")
                #expect(stream.map(\.streamVersion) == (0..<80).map { UInt64($0) })
                #expect(stream.enumerated().filter { $0.offset % 2 == 1 }.map { text($0.element) } == (0..<40).map { "w\(writer) c\($0)" })
            }
            try await log.close()
            #expect(try segmentNames(dir.path).count >= 4)
            let report = try LogVerifier.verify(directory: dir.path)
            #expect(report.intact && report.events == UInt64(all.count))
            let reopened = try FileLog(directory: dir.path, options: options)
            #expect(reopened.recovery == FileLog.RecoveryReport())
            #expect(try await readAll(reopened) == all)
            try await reopened.close()
        }
    }

    @Test func sealedSegmentIndexIsUsedOnOpen() async throws {
        try await withTemporaryDirectory { dir in
            let events = try await Self.writeLog(dir.path)
            let first = try #require(try segmentNames(dir.path).first)
            let segmentPath = dir.sub(first)
            let idx = try readFile(dir.sub(indexName(first)))
            let original = try readFile(segmentPath)
            let layout = try batchLayout(original)
            // Damage the data of the 3rd batch of the sealed segment without changing its size:
            // a scan would refuse to open, so opening proves the index was trusted instead.
            let victim = layout[2]
            var damaged = original
            damaged[victim.dataRange.lowerBound + victim.dataRange.count / 2] ^= 0x5A
            try writeFile(segmentPath, damaged)

            let log = try FileLog(directory: dir.path, options: Self.options)
            #expect(log.recovery == FileLog.RecoveryReport())
            #expect(try readFile(dir.sub(indexName(first))) == idx)
            #expect(log.currentHead().position == LogPosition(events.count))
            // The reader that reaches the damaged batch throws; it never returns a wrong event.
            let (read, error) = await readUntilError(log)
            // Checked first: a layout past the events fails the test instead of trapping.
            try #require(victim.header.firstPosition >= 1 && victim.header.lastPosition <= UInt64(events.count))
            #expect(read == Array(events[0..<Int(victim.header.firstPosition - 1)]))
            let failure = try #require(error as? EventLogError, "expected a read error, got \(String(describing: error))")
            #expect(failure.code == .corrupted)
            #expect(failure.message.contains("position \(victim.header.firstPosition)"), "\(failure)")
            // Later batches are still readable on their own.
            #expect(try await readAll(log, from: victim.header.lastPosition + 1) == Array(events[Int(victim.header.lastPosition)...]))
            try await log.close()
        }
    }

    /// A read-only open decodes the indexes' streams only on the first stream lookup: reads
    /// by position, by stream and stream versions still answer exactly.
    @Test func readOnlyOpenReadsStreamsThroughLazilyDecodedIndexes() async throws {
        try await withTemporaryDirectory { dir in
            let events = try await Self.writeLog(dir.path)
            var readOnly = Self.options
            readOnly.readOnly = true
            let report = try await Self.openAndCheck(dir.path, events, options: readOnly)
            #expect(report.rebuiltIndexes == [])
        }
    }

    @Test func missingIndexIsRebuiltIdentically() async throws {
        try await withTemporaryDirectory { dir in
            let events = try await Self.writeLog(dir.path)
            let names = try segmentNames(dir.path)
            let originals = try names.dropLast().map { try readFile(dir.sub(indexName($0))) }

            // Read-only: scans instead, changes nothing.
            for name in names.dropLast() { try removeFile(dir.sub(indexName(name))) }
            var readOnly = Self.options
            readOnly.readOnly = true
            let report = try await Self.openAndCheck(dir.path, events, options: readOnly)
            #expect(report.rebuiltIndexes == [])
            for name in names.dropLast() { #expect(!fileExists(dir.sub(indexName(name)))) }

            // Writable: every missing index is rebuilt, byte for byte what the writer wrote.
            let rebuilt = try await Self.openAndCheck(dir.path, events)
            #expect(rebuilt.rebuiltIndexes == Array(names.dropLast()))
            #expect(rebuilt.tornTail == nil && rebuilt.repair == nil)
            for (name, original) in zip(names.dropLast(), originals) {
                #expect(try readFile(dir.sub(indexName(name))) == original, "rebuilt \(name)")
            }
            // And used from then on.
            #expect(try await Self.openAndCheck(dir.path, events) == FileLog.RecoveryReport())
        }
    }

    @Test func corruptedOrStaleIndexIsRebuilt() async throws {
        try await withTemporaryDirectory { dir in
            let events = try await Self.writeLog(dir.path)
            let names = try segmentNames(dir.path)
            let (a, b) = (names[0], names[1])
            let (idxA, idxB) = (dir.sub(indexName(a)), dir.sub(indexName(b)))
            let (originalA, originalB) = (try readFile(idxA), try readFile(idxB))

            var cases: [(String, (inout [UInt8]) throws -> Void)] = [
                ("one flipped byte", { $0[$0.count / 2] ^= 0x01 }),
                ("flipped checksum", { $0[$0.count - 1] ^= 0x80 }),
                ("truncated", { $0.removeLast($0.count / 3) }),
                ("empty", { $0.removeAll() }),
                ("not an index", { $0 = Array(repeating: 0xAB, count: 200) }),
            ]
            // Stale but well-formed: a valid checksum over values that do not match the segment.
            cases.append(("stale size", { bytes in
                // Segment size: header bytes 16..<24.
                try patchIndexHeader(&bytes) { $0[16] &+= 1 }
            }))
            cases.append(("stale previous hash", { bytes in
                // Previous chain hash: header bytes 24..<56.
                try patchIndexHeader(&bytes) { $0[24] ^= 1 }
            }))
            cases.append(("another segment's index", { bytes in bytes = originalB }))

            for (label, damage) in cases {
                var bytes = originalA
                try damage(&bytes)
                try writeFile(idxA, bytes)
                let (report, atLookup) = try await Self.openAndCheckRebuilt(dir.path, events)
                #expect(report.rebuiltIndexes + atLookup == [a], "\(label)")
                #expect(try readFile(idxA) == originalA, "\(label): rebuilt index differs")
                #expect(try readFile(idxB) == originalB, "\(label): untouched index changed")
            }
        }
    }
}

/// Changes an index file's header and recomputes its checksum (bytes 160..<164 over 0..<160),
/// so the file stays well-formed while saying something the segment contradicts.
func patchIndexHeader(_ bytes: inout [UInt8], _ patch: (inout [UInt8]) -> Void) throws {
    let size = SealedSegmentIndex.headerSize
    guard bytes.count >= size else { throw TestFailure("index of \(bytes.count) bytes has no header") }
    var header = Array(bytes[0..<size - 4])
    patch(&header)
    let crc = CRC32C.checksum(header)
    bytes.replaceSubrange(0..<size, with: header + withUnsafeBytes(of: crc.littleEndian) { Array($0) })
}
