import TallyTestSupport
import Testing
@testable import EventLog

/// A repeated idempotency key returns the first append's result and writes nothing:
/// sequentially, under concurrency, and after reopening (keys from `.idx` and from scans).
@Suite(.timeLimit(.minutes(3))) struct IdempotencyTests {
    @Test func repeatedKeyReturnsFirstResultAndWritesNothing() async throws {
        try await withTemporaryDirectory { dir in
            let log = try FileLog(directory: dir.path)
            _ = try await log.append(to: "idem-0", events: [textEvent("before")])
            let first = try await log.append([
                StreamAppend(stream: "idem-1", expected: .noStream, events: [textEvent("one"), textEvent("two")]),
                StreamAppend(stream: "idem-2", events: [textEvent("three")]),
            ], idempotencyKey: "order-17")
            #expect(first == AppendResult(positions: 2...4, streamVersions: ["idem-1": 1, "idem-2": 0], deduplicated: false))
            let head = log.currentHead()
            let segment = dir.sub(try segmentNames(dir.path)[0])
            let size = try fileSize(segment)
            var dedup = first
            dedup.deduplicated = true

            // Same key, whatever the content: different events, other streams, an expected
            // version that would now conflict.
            let repeats: [[StreamAppend]] = [
                [StreamAppend(stream: "idem-1", expected: .noStream, events: [textEvent("one"), textEvent("two")]),
                 StreamAppend(stream: "idem-2", events: [textEvent("three")])],
                [StreamAppend(stream: "idem-9", events: [textEvent("other")])],
                [StreamAppend(stream: "idem-1", expected: .exact(0), events: [textEvent("stale")])],
            ]
            for appends in repeats {
                #expect(try await log.append(appends, idempotencyKey: "order-17") == dedup)
                #expect(log.currentHead() == head)
                #expect(try fileSize(segment) == size)
            }
            #expect(try await log.streamVersion("idem-9") == nil)
            let events = try await readAll(log)
            #expect(events.map(text) == ["before", "one", "two", "three"])
            #expect(events.map(\.idempotencyKey) == [nil, "order-17", "order-17", "order-17"])

            // A key is remembered only once written: a refused append leaves it free.
            await expectLogError(.wrongExpectedVersion) {
                _ = try await log.append(to: "idem-1", expected: .noStream, events: [textEvent("no")], idempotencyKey: "order-18")
            }
            let retried = try await log.append(to: "idem-1", expected: .exact(1), events: [textEvent("yes")], idempotencyKey: "order-18")
            #expect(retried == AppendResult(positions: 5...5, streamVersions: ["idem-1": 2], deduplicated: false))
            // Keys are case-sensitive and distinct.
            #expect(try await log.append(to: "idem-1", events: [textEvent("k")], idempotencyKey: "ORDER-17").deduplicated == false)
            try await log.close()
        }
    }

    @Test func concurrentAppendsWithOneKeyWriteOnce() async throws {
        try await withTemporaryDirectory { dir in
            let log = try FileLog(directory: dir.path)
            let results = try await withThrowingTaskGroup(of: (Int, AppendResult).self) { group in
                for i in 0..<100 {
                    group.addTask {
                        (i, try await log.append(to: "pay-1", events: [textEvent("attempt \(i) a"), textEvent("attempt \(i) b")],
                                                 idempotencyKey: "charge-1"))
                    }
                }
                var all: [(Int, AppendResult)] = []
                for try await r in group { all.append(r) }
                return all
            }
            let written = results.filter { !$0.1.deduplicated }
            try #require(written.count == 1, "appends that wrote: \(written.map(\.0))")
            let winner = written[0].0
            for (_, result) in results {
                #expect(result.positions == 1...2)
                #expect(result.streamVersions == ["pay-1": 1])
            }
            #expect(try await readAll(log).map(text) == ["attempt \(winner) a", "attempt \(winner) b"])
            #expect(log.currentHead().position == 2)

            // Many keys at once, each used by several racers: each key writes exactly once.
            let mixed = try await withThrowingTaskGroup(of: (String, AppendResult).self) { group in
                for i in 0..<200 {
                    let key = "multi-\(i % 20)"
                    group.addTask { (key, try await log.append(to: "pay-\(i % 20)", events: [textEvent(key)], idempotencyKey: key)) }
                }
                var all: [(String, AppendResult)] = []
                for try await r in group { all.append(r) }
                return all
            }
            let byKey = Dictionary(grouping: mixed, by: \.0)
            #expect(byKey.count == 20)
            for (key, uses) in byKey {
                #expect(uses.count == 10)
                #expect(uses.filter { !$0.1.deduplicated }.count == 1, "\(key)")
                #expect(Set(uses.map(\.1.positions)).count == 1, "\(key)")
            }
            let events = try await readAll(log)
            #expect(events.count == 22)
            #expect(Set(events.dropFirst(2).map(text)) == Set((0..<20).map { "multi-\($0)" }))
            try await log.close()
        }
    }

    @Test func keysSurviveReopenFromIndexesAndScans() async throws {
        try await withTemporaryDirectory { dir in
            let options = FileLog.Options(fsync: .never, segmentSize: 64 << 10)
            let log = try FileLog(directory: dir.path, options: options)
            var firsts: [String: AppendResult] = [:]
            for call in 0..<150 {
                var appends = [StreamAppend(stream: "keyed-\(call % 5)", events: (0..<3).map {
                    event(payload: noiseBytes(count: 350, seed: UInt64(call * 3 + $0)))
                })]
                if call % 4 == 0 { appends.append(StreamAppend(stream: "extra-\(call % 3)", events: [textEvent("x\(call)")])) }
                let key = "call-\(call)"
                let result = try await log.append(appends, idempotencyKey: key)
                #expect(!result.deduplicated)
                firsts[key] = result
            }
            try await log.close()
            let names = try segmentNames(dir.path)
            try #require(names.count >= 3, "want keys in sealed segments, got \(names)")

            func checkAllKeys(_ label: String, rebuilt: [String]) async throws {
                let reopened = try FileLog(directory: dir.path, options: options)
                #expect(reopened.recovery.rebuiltIndexes == rebuilt, "\(label)")
                let head = reopened.currentHead()
                for (key, first) in firsts {
                    var expected = first
                    expected.deduplicated = true
                    let again = try await reopened.append(to: "keyed-0", events: [textEvent("again")], idempotencyKey: key)
                    #expect(again == expected, "\(label): \(key)")
                }
                #expect(reopened.currentHead() == head, "\(label): a repeated key wrote")
                try await reopened.close()
            }
            try await checkAllKeys("from indexes", rebuilt: [])
            for name in names.dropLast() { try removeFile(dir.sub(indexName(name))) }
            try await checkAllKeys("from scans", rebuilt: Array(names.dropLast()))
        }
    }
}
