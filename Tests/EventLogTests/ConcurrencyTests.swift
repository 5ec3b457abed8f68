import TallyTestSupport
import Testing
@testable import EventLog

/// Group commit under many concurrent appenders: gap-free positions, consistent stream
/// versions, and optimistic concurrency that lets exactly one racer win.
@Suite(.timeLimit(.minutes(5))) struct ConcurrencyTests {
    @Test func thousandConcurrentAppendersGetGapFreePositions() async throws {
        try await withTemporaryDirectory { dir in
            let log = try FileLog(directory: dir.path)  // fsync always: the real durable path
            let appenders = 1_000
            let results = try await withThrowingTaskGroup(of: (Int, AppendResult).self) { group in
                for i in 0..<appenders {
                    group.addTask {
                        let n = 1 + i % 3
                        let events = (0..<n).map { j in textEvent("\(i):\(j)") }
                        return (i, try await log.append(to: "conc-\(i % 37)", events: events))
                    }
                }
                var all: [(Int, AppendResult)] = []
                for try await result in group { all.append(result) }
                return all
            }
            let total = (0..<appenders).reduce(0) { $0 + 1 + $1 % 3 }
            #expect(results.count == appenders)

            // The ranges tile 1...total exactly: no duplicate, no gap.
            let ranges = results.map(\.1.positions).sorted { $0.lowerBound < $1.lowerBound }
            var next: LogPosition = 1
            for range in ranges {
                #expect(range.lowerBound == next, "range \(range) after \(next - 1)")
                next = range.upperBound + 1
            }
            #expect(next == LogPosition(total) + 1)
            #expect(log.currentHead().position == LogPosition(total))

            // Each appender's events sit exactly at its positions, with the versions it was told.
            let all = try await readAll(log)
            #expect(all.count == total)
            #expect(all.map(\.position) == Array(1...LogPosition(total)))
            for (i, result) in results {
                #expect(result.deduplicated == false)
                let mine = all[Int(result.positions.lowerBound - 1)...Int(result.positions.upperBound - 1)]
                #expect(mine.map(text) == (0..<(1 + i % 3)).map { "\(i):\($0)" })
                #expect(mine.allSatisfy { $0.stream == "conc-\(i % 37)" })
                #expect(result.streamVersions == ["conc-\(i % 37)": mine.last!.streamVersion])
            }
            // Stream versions are 0, 1, 2 … in position order, for every stream.
            for s in 0..<37 {
                let stream = try await log.readStream("conc-\(s)")
                #expect(stream.map(\.streamVersion) == (0..<UInt64(stream.count)).map { $0 })
                #expect(stream.map(\.position) == stream.map(\.position).sorted())
                #expect(stream == all.filter { $0.stream == "conc-\(s)" })
            }
            try await log.close()
        }
    }

    @Test func closeWhileAppendingLosesNothingAcknowledged() async throws {
        try await withTemporaryDirectory { dir in
            let log = try FileLog(directory: dir.path)
            let tasks = (0..<300).map { i in
                Task { try await log.append(to: "closing-\(i % 7)", events: [textEvent("\(i)")]) }
            }
            await Task.yield()
            try await log.close()
            var acknowledged: [(Int, AppendResult)] = []
            for (i, task) in tasks.enumerated() {
                switch await task.result {
                case .success(let result): acknowledged.append((i, result))
                case .failure(let error): #expect((error as? EventLogError)?.code == .closed, "\(i): \(error)")
                }
            }
            // Whatever was acknowledged is stored, gap-free, where it was acknowledged.
            let reopened = try FileLog(directory: dir.path)
            let all = try await readAll(reopened)
            #expect(all.count == acknowledged.count)
            #expect(all.map(\.position) == (0..<all.count).map { LogPosition($0 + 1) })
            for (i, result) in acknowledged {
                let stored = all[Int(result.positions.lowerBound) - 1]
                #expect(text(stored) == "\(i)" && stored.stream == "closing-\(i % 7)")
            }
            try await reopened.close()
        }
    }

    @Test func groupCommitSplitsAtTheBatchBound() async throws {
        // 70 concurrent appends of one 1 MiB event: more than one batch may hold (64 MiB).
        try await withTemporaryDirectory { dir in
            let log = try FileLog(directory: dir.path, options: .init(fsync: .never))
            let mebibyte = [UInt8](repeating: 0x61, count: 1 << 20)
            let results = try await withThrowingTaskGroup(of: AppendResult.self) { group in
                for i in 0..<70 {
                    group.addTask { try await log.append(to: "huge-\(i)", events: [event(payload: mebibyte, actor: "\(i)")]) }
                }
                return try await group.reduce(into: [AppendResult]()) { $0.append($1) }
            }
            #expect(Set(results.map(\.positions.lowerBound)) == Set(1...70))
            try await log.close()
            let layout = try batchLayout(ofSegment: dir.sub(try segmentNames(dir.path)[0]))
            #expect(layout.count >= 2)
            #expect(layout.allSatisfy { Int($0.header.rawLength) <= EventLimits.maxBatchBytes })
            #expect(layout.reduce(0) { $0 + Int($1.header.eventCount) } == 70)
            let reopened = try FileLog(directory: dir.path, options: .init(fsync: .never, readOnly: true))
            var count = 0
            for try await e in reopened.read(from: 1) {
                count += 1
                #expect(e.payloadCount == 1 << 20 && e.stream == "huge-\(e.actor)")
            }
            #expect(count == 70)
            try await reopened.close()
        }
    }

    /// Runs `racers` appends at once; returns the successes (racer, result) and the failures.
    static func race(_ racers: Int, _ append: @escaping @Sendable (Int) async throws -> AppendResult)
        async -> (wins: [(Int, AppendResult)], losses: [(Int, any Error)]) {
        await withTaskGroup(of: (Int, Result<AppendResult, any Error>).self) { group in
            for i in 0..<racers {
                group.addTask {
                    do { return (i, .success(try await append(i))) } catch { return (i, .failure(error)) }
                }
            }
            var wins: [(Int, AppendResult)] = []
            var losses: [(Int, any Error)] = []
            for await (i, outcome) in group {
                switch outcome {
                case .success(let r): wins.append((i, r))
                case .failure(let e): losses.append((i, e))
                }
            }
            return (wins, losses)
        }
    }

    static func expectWrongVersion(_ error: any Error, stream: String, expected: ExpectedVersion, actual: UInt64?,
                                   sourceLocation: SourceLocation = #_sourceLocation) {
        guard let error = error as? EventLogError else {
            Issue.record("expected EventLogError, got \(error)", sourceLocation: sourceLocation)
            return
        }
        #expect(error.code == .wrongExpectedVersion, "\(error)", sourceLocation: sourceLocation)
        let cause = error.cause as? WrongExpectedVersion
        #expect(cause == WrongExpectedVersion(stream: stream, expected: expected, actual: actual), "\(error)",
                sourceLocation: sourceLocation)
    }

    @Test func exactlyOneRacerWinsAnExpectedVersion() async throws {
        try await withTemporaryDirectory { dir in
            let log = try FileLog(directory: dir.path)
            // Round 1: 50 racers create the stream (2 events each).
            let first = await Self.race(50) { i in
                try await log.append(to: "race-1", expected: .noStream, events: [textEvent("r1:\(i):a"), textEvent("r1:\(i):b")])
            }
            try #require(first.wins.count == 1, "winners: \(first.wins.map(\.0))")
            #expect(first.losses.count == 49)
            let (winner1, result1) = first.wins[0]
            #expect(result1 == AppendResult(positions: 1...2, streamVersions: ["race-1": 1], deduplicated: false))
            for (_, error) in first.losses {
                Self.expectWrongVersion(error, stream: "race-1", expected: .noStream, actual: 1)
            }

            // Round 2: 50 racers expect version 1 (3 events each).
            let second = await Self.race(50) { i in
                try await log.append(to: "race-1", expected: .exact(1), events: (0..<3).map { textEvent("r2:\(i):\($0)") })
            }
            try #require(second.wins.count == 1, "winners: \(second.wins.map(\.0))")
            let (winner2, result2) = second.wins[0]
            #expect(result2 == AppendResult(positions: 3...5, streamVersions: ["race-1": 4], deduplicated: false))
            for (_, error) in second.losses {
                Self.expectWrongVersion(error, stream: "race-1", expected: .exact(1), actual: 4)
            }

            // Only the winners' events exist.
            let expected = ["r1:\(winner1):a", "r1:\(winner1):b"] + (0..<3).map { "r2:\(winner2):\($0)" }
            #expect(try await readAll(log).map(text) == expected)
            #expect(try await log.readStream("race-1").map(\.streamVersion) == [0, 1, 2, 3, 4])
            #expect(log.currentHead().position == 5)
            try await log.close()
        }
    }

    /// A loser told "wrong expected version" reads the stream at once and must see the
    /// winner's events: the conflict is told only once they are readable, even while the
    /// winning batch is still being made durable.
    @Test func aLoserThatReadsAtOnceSeesTheWinner() async throws {
        try await withTemporaryDirectory { dir in
            let log = try FileLog(directory: dir.path)  // fsync always: the winner waits on its sync
            for round in 0..<40 {
                let stream = "loser-\(round)"
                let outcome = await Self.race(8) { i in
                    do {
                        return try await log.append(to: stream, expected: .noStream, events: [textEvent("\(i)")])
                    } catch let error as EventLogError where error.code == .wrongExpectedVersion {
                        let seen = try await log.streamVersion(stream)
                        #expect(seen == 0, "round \(round): a loser read version \(String(describing: seen)) right after its conflict")
                        throw error
                    }
                }
                #expect(outcome.wins.count == 1)
                #expect(outcome.losses.count == 7)
            }
            try await log.close()
        }
    }

    @Test func conflictInAMultiStreamAppendWritesNothing() async throws {
        try await withTemporaryDirectory { dir in
            let log = try FileLog(directory: dir.path)
            _ = try await log.append(to: "pair-a", events: [textEvent("a0")])
            _ = try await log.append(to: "pair-b", events: [textEvent("b0"), textEvent("b1")])
            let head = log.currentHead()

            // The second stream conflicts (no stream / wrong version): the first is not written.
            let attempts: [([StreamAppend], String, ExpectedVersion, UInt64?)] = [
                ([StreamAppend(stream: "pair-a", expected: .any, events: [textEvent("x")]),
                  StreamAppend(stream: "pair-b", expected: .exact(0), events: [textEvent("y")])], "pair-b", .exact(0), 1),
                ([StreamAppend(stream: "pair-a", expected: .exact(0), events: [textEvent("x")]),
                  StreamAppend(stream: "pair-b", expected: .noStream, events: [textEvent("y")])], "pair-b", .noStream, 1),
                ([StreamAppend(stream: "pair-new", expected: .noStream, events: [textEvent("x")]),
                  StreamAppend(stream: "pair-c", expected: .exact(0), events: [textEvent("y")])], "pair-c", .exact(0), nil),
            ]
            for (appends, stream, expected, actual) in attempts {
                let error = await expectLogError(.wrongExpectedVersion) { _ = try await log.append(appends, idempotencyKey: nil) }
                if let error { Self.expectWrongVersion(error, stream: stream, expected: expected, actual: actual) }
                #expect(log.currentHead() == head)
            }
            #expect(try await log.streamVersion("pair-a") == 0)
            #expect(try await log.streamVersion("pair-new") == nil)
            #expect(try await readAll(log).map(text) == ["a0", "b0", "b1"])

            // Racing: every racer appends to the shared stream and its own new one; losers leave
            // no trace in their own stream.
            let race = await Self.race(40) { i in
                try await log.append([
                    StreamAppend(stream: "pair-a", expected: .exact(0), events: [textEvent("shared \(i)")]),
                    StreamAppend(stream: "solo-\(i)", expected: .noStream, events: [textEvent("solo \(i)")]),
                ], idempotencyKey: nil)
            }
            try #require(race.wins.count == 1)
            let (winner, result) = race.wins[0]
            #expect(result == AppendResult(positions: 4...5, streamVersions: ["pair-a": 1, "solo-\(winner)": 0], deduplicated: false))
            for (i, error) in race.losses {
                Self.expectWrongVersion(error, stream: "pair-a", expected: .exact(0), actual: 1)
                #expect(try await log.streamVersion("solo-\(i)") == nil)
            }
            #expect(try await readAll(log).map(text) == ["a0", "b0", "b1", "shared \(winner)", "solo \(winner)"])
            try await log.close()

            // And after reopening, the same.
            let reopened = try FileLog(directory: dir.path)
            #expect(try await readAll(reopened).map(text) == ["a0", "b0", "b1", "shared \(winner)", "solo \(winner)"])
            for i in 0..<40 where i != winner { #expect(try await reopened.streamVersion("solo-\(i)") == nil) }
            try await reopened.close()
        }
    }
}
