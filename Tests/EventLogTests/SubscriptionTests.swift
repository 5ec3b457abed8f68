import TallyTestSupport
import Testing
@testable import EventLog

/// `subscribe(from:)` delivers everything stored and then every new event as it commits,
/// exactly once and in order, and ends when its task is cancelled or the log closes.
@Suite(.timeLimit(.minutes(3))) struct SubscriptionTests {
    /// What a subscriber saw, and how its iteration ended.
    struct Seen: Sendable {
        var events: [RecordedEvent] = []
        var ended = false
        var error: String?
    }

    /// Starts a task that iterates `log.subscribe(from:)`, recording into `seen`, until it
    /// has `stopAt` or the iteration ends.
    static func subscriber(_ log: FileLog, from: LogPosition, stopAt: LogPosition? = nil, into seen: Shared<Seen>) -> Task<Void, Never> {
        Task {
            do {
                for try await event in log.subscribe(from: from) {
                    seen.update { $0.events.append(event) }
                    if let stopAt, event.position >= stopAt { break }
                }
            } catch {
                seen.update { $0.error = "\(error)" }
            }
            seen.update { $0.ended = true }
        }
    }

    /// Events in call `call` of writer `writer`: 1–3, and now and then 300 (a batch large
    /// enough for the reader's read-ahead).
    static func eventCount(writer: Int, call: Int) -> Int {
        writer == 0 && call % 8 == 3 ? 300 : 1 + (writer + call) % 3
    }

    /// 8 writers append `perWriter` appends each, concurrently.
    static func appendConcurrently(_ log: FileLog, writers: Int = 8, perWriter: Int = 25) async throws -> Int {
        try await withThrowingTaskGroup(of: Int.self) { group in
            for w in 0..<writers {
                group.addTask {
                    var written = 0
                    for k in 0..<perWriter {
                        let n = eventCount(writer: w, call: k)
                        _ = try await log.append(to: "tail-\(w)", events: (0..<n).map { textEvent("w\(w) k\(k) e\($0)") })
                        written += n
                        if k % 5 == 0 { await Task.yield() }
                    }
                    return written
                }
            }
            return try await group.reduce(0, +)
        }
    }

    @Test func subscribersRacingAppendsSeeEveryPositionOnceInOrder() async throws {
        try await withTemporaryDirectory { dir in
            let log = try FileLog(directory: dir.path, options: .init(fsync: .never, segmentSize: 64 << 10))
            for i in 0..<60 { _ = try await log.append(to: "tail-pre", events: [textEvent("pre \(i)")]) }
            _ = try await log.append(to: "tail-big", events: (0..<300).map { textEvent("big \($0)") })
            var sum = 360
            for writer in 0..<8 {
                for k in 0..<25 { sum += Self.eventCount(writer: writer, call: k) }
            }
            let total = LogPosition(sum)

            let fromStart = Shared(Seen())
            let fromMiddle = Shared(Seen())
            let fromAhead = Shared(Seen())
            let tasks = [
                Self.subscriber(log, from: 1, stopAt: total, into: fromStart),
                Self.subscriber(log, from: 200, stopAt: total, into: fromMiddle),  // inside a 300-event batch
                Self.subscriber(log, from: 400, stopAt: total, into: fromAhead),   // past the head when started
            ]
            let written = try await Self.appendConcurrently(log)
            #expect(LogPosition(360 + written) == total)

            let allEnded = await eventually { [fromStart, fromMiddle, fromAhead].allSatisfy { $0.value.ended } }
            if !allEnded { tasks.forEach { $0.cancel() } }
            try #require(allEnded, "subscribers did not reach position \(total)")
            let all = try await readAll(log)
            #expect(all.count == Int(total))
            for (label, seen, start) in [("from 1", fromStart, 1), ("from 200", fromMiddle, 200), ("from 400", fromAhead, 400)] {
                let s = seen.value
                #expect(s.error == nil, "\(label): \(s.error ?? "")")
                #expect(s.events.map(\.position) == Array(LogPosition(start)...total), "\(label): gap or duplicate")
                #expect(s.events == Array(all[(start - 1)...]), "\(label): events differ from a read")
            }
            try await log.close()
        }
    }

    @Test func subscriptionEndsWhenItsTaskIsCancelled() async throws {
        try await withTemporaryDirectory { dir in
            let log = try FileLog(directory: dir.path)
            for i in 0..<5 { _ = try await log.append(to: "tail-1", events: [textEvent("e\(i)")]) }
            let seen = Shared(Seen())
            let task = Self.subscriber(log, from: 1, into: seen)
            #expect(await eventually { seen.value.events.count == 5 })
            // Once it is suspended waiting for the next commit, cancel it.
            #expect(await eventually { log.core.commits.count == 1 }, "the subscription never waited for a commit")
            #expect(!seen.value.ended)
            task.cancel()
            #expect(await eventually { seen.value.ended }, "the iteration did not end after cancellation")
            #expect(seen.value.error == nil)
            #expect(seen.value.events.map(text) == ["e0", "e1", "e2", "e3", "e4"])

            // Cancelled before it starts: ends without waiting; and the log keeps working.
            let early = Shared(Seen())
            let cancelledEarly = Task {
                withUnsafeCurrentTask { $0?.cancel() }
                var count = 0
                do { for try await _ in log.subscribe(from: 6) { count += 1 } } catch { early.update { $0.error = "\(error)" } }
                early.update { $0.ended = true }
                return count
            }
            #expect(await cancelledEarly.value == 0)
            #expect(log.core.commits.count == 0, "a cancelled subscription left a waiter behind")
            #expect(early.value.ended && early.value.error == nil)
            #expect(try await log.append(to: "tail-1", events: [textEvent("e5")]).positions == 6...6)
            try await log.close()
        }
    }

    @Test func subscriptionEndsWhenTheLogCloses() async throws {
        try await withTemporaryDirectory { dir in
            let log = try FileLog(directory: dir.path)
            for i in 0..<3 { _ = try await log.append(to: "tail-1", events: [textEvent("e\(i)")]) }
            let waiting = Shared(Seen())
            let behind = Shared(Seen())
            _ = Self.subscriber(log, from: 2, into: waiting)
            #expect(await eventually { waiting.value.events.count == 2 })
            #expect(await eventually { log.core.commits.count == 1 }, "the subscription never waited for a commit")
            let late = try await log.append(to: "tail-1", events: [textEvent("e3")])
            #expect(late.positions == 4...4)
            #expect(await eventually { waiting.value.events.count == 3 })

            try await log.close()
            #expect(await eventually { waiting.value.ended }, "the subscription did not end when the log closed")
            #expect(waiting.value.error == nil)
            #expect(waiting.value.events.map(text) == ["e1", "e2", "e3"])

            // Subscribing to a closed log delivers what is stored, then ends.
            _ = Self.subscriber(log, from: 1, into: behind)
            #expect(await eventually { behind.value.ended })
            #expect(behind.value.error == nil)
            #expect(behind.value.events.map(text) == ["e0", "e1", "e2", "e3"])
        }
    }
}
