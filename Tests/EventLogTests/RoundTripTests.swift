import TallyTestSupport
import Testing
@testable import EventLog

/// Everything appended comes back exactly: every envelope field, from any position, per
/// stream, and after reopening the log.
@Suite(.timeLimit(.minutes(3))) struct RoundTripTests {
    static let longStream = "c" + String(repeating: "x", count: 253) + "-1"  // 256 bytes, the bound
    static let maxType = String(repeating: "T", count: 128)
    static let maxActor = String(repeating: "a", count: 128)
    static let maxCorrelation = String(repeating: "c", count: 64)
    static let maxCausation = String(repeating: "z", count: 64)
    static let maxKey = String(repeating: "k", count: 128)
    static let mebibyte = noiseBytes(count: 1 << 20, seed: 7)

    @Test func everyFieldRoundTripsForSingleAndMultiStreamAppends() async throws {
        try await withTemporaryDirectory { dir in
            let log = try FileLog(directory: dir.path)

            let r1 = try await log.append(
                to: "user-1", expected: .noStream,
                events: [event("UserRegistered", payload: [1, 2, 3], recordedAt: 1_700_000_000_123_456, actor: "user:1",
                               correlation: "corr-1", causation: "cause-1", schema: 3)],
                idempotencyKey: "key-1")
            #expect(r1 == AppendResult(positions: 1...1, streamVersions: ["user-1": 0], deduplicated: false))

            let before = nowMicros()
            let r2 = try await log.append([
                StreamAppend(stream: "user-1", expected: .exact(0), events: [
                    event("ProfileUnlocked", payload: [], actor: "user:1"),
                    event("CreditsGranted", payload: [0, 255, 0], recordedAt: nil, correlation: "corr-2"),
                ]),
                StreamAppend(stream: "profile-fit.bayann", expected: .noStream, events: [
                    event("Sampled.v2", payload: [9], recordedAt: -42, causation: "evt-1"),
                ]),
            ], idempotencyKey: nil)
            let after = nowMicros()
            #expect(r2 == AppendResult(positions: 2...4, streamVersions: ["user-1": 2, "profile-fit.bayann": 0], deduplicated: false))

            let r3 = try await log.append(
                to: Self.longStream,
                events: [event(Self.maxType, payload: Self.mebibyte, recordedAt: Int64.max, actor: Self.maxActor,
                               correlation: Self.maxCorrelation, causation: Self.maxCausation, schema: UInt16.max)],
                idempotencyKey: Self.maxKey)
            #expect(r3 == AppendResult(positions: 5...5, streamVersions: [Self.longStream: 0], deduplicated: false))
            let r4 = try await log.append(to: "min-time", events: [event(payload: [7], recordedAt: Int64.min)])
            #expect(r4.positions == 6...6)

            let all = try await readAll(log)
            try #require(all.count == 6)
            // The writer stamps one commit time for the whole batch.
            let stamped = all[1].recordedAt
            #expect(stamped >= before && stamped <= after, "stamped \(stamped) outside [\(before), \(after)]")
            #expect(all[2].recordedAt == stamped)

            let expected = [
                RecordedEvent(position: 1, stream: "user-1", streamVersion: 0, type: "UserRegistered", schemaVersion: 3,
                              recordedAt: 1_700_000_000_123_456, actor: "user:1", correlationID: "corr-1", causationID: "cause-1",
                              idempotencyKey: "key-1", payload: [1, 2, 3]),
                RecordedEvent(position: 2, stream: "user-1", streamVersion: 1, type: "ProfileUnlocked", schemaVersion: 1,
                              recordedAt: stamped, actor: "user:1", correlationID: "", causationID: "",
                              idempotencyKey: nil, payload: []),
                RecordedEvent(position: 3, stream: "user-1", streamVersion: 2, type: "CreditsGranted", schemaVersion: 1,
                              recordedAt: stamped, actor: "", correlationID: "corr-2", causationID: "",
                              idempotencyKey: nil, payload: [0, 255, 0]),
                RecordedEvent(position: 4, stream: "profile-fit.bayann", streamVersion: 0, type: "Sampled.v2", schemaVersion: 1,
                              recordedAt: -42, actor: "", correlationID: "", causationID: "evt-1",
                              idempotencyKey: nil, payload: [9]),
                RecordedEvent(position: 5, stream: Self.longStream, streamVersion: 0, type: Self.maxType, schemaVersion: UInt16.max,
                              recordedAt: Int64.max, actor: Self.maxActor, correlationID: Self.maxCorrelation,
                              causationID: Self.maxCausation, idempotencyKey: Self.maxKey, payload: Self.mebibyte),
                RecordedEvent(position: 6, stream: "min-time", streamVersion: 0, type: "Probe", schemaVersion: 1,
                              recordedAt: Int64.min, actor: "", correlationID: "", causationID: "",
                              idempotencyKey: nil, payload: [7]),
            ]
            #expect(all == expected)

            // From the middle of a batch, from 0 (meaning 1), past the head.
            #expect(try await readAll(log, from: 3) == Array(expected[2...]))
            #expect(try await readAll(log, from: 0) == expected)
            #expect(try await readAll(log, from: 7) == [])

            #expect(try await log.streamVersion("user-1") == 2)
            #expect(try await log.streamVersion("profile-fit.bayann") == 0)
            #expect(try await log.streamVersion("user-2") == nil)
            #expect(try await log.readStream("user-1") == Array(expected[0...2]))
            #expect(try await log.readStream(Self.longStream) == [expected[4]])

            let head = try await log.head()
            #expect(head.position == 6)
            #expect(head.chainHash.count == 32 && head.chainHash != BatchHeader.zeroHash)
            try await log.close()

            // Reopened: the same events, head, streams; appends continue after them.
            let reopened = try FileLog(directory: dir.path)
            #expect(reopened.recovery == FileLog.RecoveryReport())
            #expect(try await readAll(reopened) == expected)
            #expect(try await reopened.head() == head)
            #expect(try await reopened.streamVersion("user-1") == 2)
            #expect(try await reopened.readStream("user-1") == Array(expected[0...2]))
            let r5 = try await reopened.append(to: "user-1", expected: .exact(2), events: [textEvent("next")])
            #expect(r5 == AppendResult(positions: 7...7, streamVersions: ["user-1": 3], deduplicated: false))
            #expect(try await reopened.readStream("user-1", fromVersion: 3, limit: 10).map(\.position) == [7])
            try await reopened.close()
        }
    }

    @Test func extremeRecordedAtValuesShareABatch() async throws {
        // Recorded-at is stored as a delta from the previous event of the batch: deltas
        // between far-apart values must not overflow on the way back.
        let times: [Int64] = [Int64.min, Int64.max, 0, Int64.min, -1, Int64.max - 1, 1_700_000_000_000_000]
        try await withTemporaryDirectory { dir in
            let log = try FileLog(directory: dir.path)
            let result = try await log.append(to: "time-1", events: times.map { event(payload: [1], recordedAt: $0) })
            #expect(result.positions == 1...7)
            #expect(try await readAll(log).map(\.recordedAt) == times)
            try await log.close()
            let reopened = try FileLog(directory: dir.path)
            #expect(reopened.recovery == FileLog.RecoveryReport())
            #expect(try await readAll(reopened).map(\.recordedAt) == times)
            #expect(try LogVerifier.verify(directory: dir.path).intact)
            try await reopened.close()
        }
    }

    @Test func largeBatchesReadWholeAndFromAnywhere() async throws {
        // Batches of hundreds of events (the reader decodes those ahead on other tasks).
        try await withTemporaryDirectory { dir in
            let log = try FileLog(directory: dir.path, options: .init(fsync: .never, segmentSize: 64 << 10))
            var expected: [String] = []
            for call in 0..<12 {
                let n = [300, 1, 700, 256, 2, 500][call % 6]
                let texts = (0..<n).map { "c\(call) e\($0)" }
                expected += texts
                _ = try await log.append(to: "big-\(call % 2)", events: texts.map { textEvent($0, type: $0.hasSuffix("0") ? "Zero" : "Other") })
            }
            let all = try await readAll(log)
            #expect(all.map(text) == expected)
            #expect(all.map(\.position) == Array(1...LogPosition(expected.count)))
            for start in [1, 2, 299, 300, 301, 302, 1000, 1500, expected.count] {
                let tail = try await readAll(log, from: LogPosition(start))
                #expect(tail == Array(all[(start - 1)...]), "from \(start)")
            }
            var batches: [[RecordedEvent]] = []
            for try await batch in log.read(from: 1).batches { batches.append(batch) }
            #expect(batches.map(\.count) == (0..<12).map { [300, 1, 700, 256, 2, 500][$0 % 6] })
            #expect(Array(batches.joined()) == all)
            var zeros: [RecordedEvent] = []
            for try await e in log.read(from: 250, filter: EventFilter(types: ["Zero"])) { zeros.append(e) }
            #expect(zeros == all.dropFirst(249).filter { $0.type == "Zero" })
            try await log.close()
        }
    }

    @Test func readStreamFollowsVersionOrderWithFromVersionAndLimit() async throws {
        try await withTemporaryDirectory { dir in
            let log = try FileLog(directory: dir.path, options: .init(fsync: .never))
            var rng = SplitMix64(seed: 11)
            let streams = ["acct-a", "acct-b", "acct-c"]
            var counts: [String: Int] = [:]
            for call in 0..<40 {
                let stream = streams[Int(rng.next() % 3)]
                let n = 1 + Int(rng.next() % 4)
                let version = counts[stream, default: 0]
                let events = (0..<n).map { i in textEvent("\(stream):\(version + i)", type: i % 2 == 0 ? "Even" : "Odd") }
                let result = try await log.append(to: stream, expected: version == 0 ? .noStream : .exact(UInt64(version - 1)),
                                                  events: events)
                #expect(result.streamVersions == [stream: UInt64(version + n - 1)], "call \(call)")
                counts[stream] = version + n
            }
            let all = try await readAll(log)
            #expect(all.map(\.position) == Array(stride(from: 1, through: LogPosition(all.count), by: 1)))
            for stream in streams {
                let mine = all.filter { $0.stream == stream }
                #expect(mine.count == counts[stream])
                #expect(mine.map(\.streamVersion) == (0..<UInt64(mine.count)).map { $0 })
                #expect(mine.map(text) == (0..<mine.count).map { "\(stream):\($0)" })
                #expect(try await log.readStream(stream) == mine)
                #expect(try await log.streamVersion(stream) == UInt64(mine.count - 1))
                for from in [0, 1, mine.count / 2, mine.count - 1] {
                    for limit in [1, 2, 5, Int.max] {
                        let expected = Array(mine[from..<min(mine.count, from + min(limit, mine.count))])
                        #expect(try await log.readStream(stream, fromVersion: UInt64(from), limit: limit) == expected,
                                "\(stream) from \(from) limit \(limit)")
                    }
                }
                #expect(try await log.readStream(stream, fromVersion: UInt64(mine.count), limit: 10) == [])
                #expect(try await log.readStream(stream, fromVersion: 0, limit: 0) == [])
            }
            #expect(try await log.readStream("acct-zzz") == [])
            #expect(try await log.readStream("acct-a", fromVersion: UInt64.max, limit: 5) == [])
            #expect(try await log.readStream("acct-a", fromVersion: 0, limit: -1) == [])

            // A type filter gives exactly the matching events, in order.
            var odd: [RecordedEvent] = []
            for try await e in log.read(from: 1, filter: EventFilter(types: ["Odd"])) { odd.append(e) }
            #expect(odd == all.filter { $0.type == "Odd" })
            try await log.close()
        }
    }
}
