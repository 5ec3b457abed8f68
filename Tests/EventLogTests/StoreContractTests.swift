import Synchronization
import Testing
@testable import EventLog

/// The contract of `EventStore`, run unchanged against the embedded log and PostgreSQL:
/// gap-free commit-ordered positions, expected-version conflicts, idempotency keys, reading
/// by position and by stream, tailing, chain hash, verify and digest.
@Suite(.timeLimit(.minutes(5))) struct StoreContractTests {
    @Test(arguments: Backend.allCases)
    func everyFieldRoundTripsAndReadsFromAnywhere(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let single = try await store.append(
                to: "order-1", expected: .noStream,
                events: [
                    event("Placed", payload: [1, 2, 3], recordedAt: 10, actor: "alice", correlation: "c1", causation: "k1", schema: 2),
                    event("Paid", payload: [], recordedAt: 20, actor: "alice", correlation: "c1"),
                ]
            )
            #expect(single.positions == 1...2)
            #expect(single.streamVersions == ["order-1": 1])
            let multi = try await store.append(
                [
                    StreamAppend(stream: "order-1", expected: .exact(1), events: [event("Shipped", payload: [9], recordedAt: 30)]),
                    StreamAppend(stream: "stock-7", expected: .noStream, events: [event("Reserved", payload: [7, 7], recordedAt: 30)]),
                ],
                idempotencyKey: "ship-1"
            )
            #expect(multi.positions == 3...4)
            #expect(multi.streamVersions == ["order-1": 2, "stock-7": 0])
            let stamped = try await store.append(to: "clock-1", events: [event("Tick", payload: [0])])

            let all = try await store.readAll()
            #expect(all.map(\.position) == [1, 2, 3, 4, 5])
            #expect(all[0].stream == "order-1" && all[0].type == "Placed" && all[0].schemaVersion == 2 && all[0].recordedAt == 10)
            #expect(all[0].actor == "alice" && all[0].correlationID == "c1" && all[0].causationID == "k1" && all[0].payload == [1, 2, 3])
            #expect(all[1].payload.isEmpty && all[1].streamVersion == 1 && all[1].idempotencyKey == nil)
            #expect(all[2].idempotencyKey == "ship-1" && all[3].idempotencyKey == "ship-1")
            #expect(all[3].stream == "stock-7" && all[3].streamVersion == 0)
            #expect(all[4].position == stamped.positions.lowerBound && all[4].recordedAt > 1_700_000_000_000_000)

            for start in 1...6 {
                #expect(try await store.readAll(from: LogPosition(start)).map(\.position) == Array(LogPosition(start)..<6))
            }
            let paid = try await store.readAll(filter: EventFilter(types: ["Paid", "Reserved"]))
            #expect(paid.map(\.position) == [2, 4])
            let window = try await store.readAll(filter: EventFilter(since: 20, until: 31))
            #expect(window.map(\.position) == [2, 3, 4])
        }
    }

    @Test(arguments: Backend.allCases)
    func readStreamFollowsVersionsWithFromVersionAndLimit(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            for i in 0..<30 {
                _ = try await store.append(to: "s-\(i % 3)", events: (0..<(1 + i % 4)).map { textEvent("\(i).\($0)") })
            }
            for name in ["s-0", "s-1", "s-2"] {
                let whole = try await store.readStream(name)
                #expect(whole.map(\.streamVersion) == Array(0..<UInt64(whole.count)))
                #expect(whole.allSatisfy { $0.stream == name })
                #expect(zip(whole, whole.dropFirst()).allSatisfy { $0.position < $1.position })
                #expect(try await store.streamVersion(name) == UInt64(whole.count - 1))
                let middle = try await store.readStream(name, fromVersion: 3, limit: 5)
                #expect(middle.map(\.streamVersion) == [3, 4, 5, 6, 7])
                #expect(middle == Array(whole[3..<8]))
                #expect(try await store.readStream(name, fromVersion: UInt64(whole.count), limit: 10).isEmpty)
            }
            #expect(try await store.streamVersion("nobody") == nil)
            #expect(try await store.readStream("nobody").isEmpty)
        }
    }

    @Test(arguments: Backend.allCases)
    func expectedVersionsAreEnforcedAndAConflictWritesNothing(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            _ = try await store.append(to: "a-1", expected: .noStream, events: [textEvent("a0")])
            await expectLogError(.wrongExpectedVersion) { _ = try await store.append(to: "a-1", expected: .noStream, events: [textEvent("x")]) }
            await expectLogError(.wrongExpectedVersion) { _ = try await store.append(to: "a-1", expected: .exact(5), events: [textEvent("x")]) }
            await expectLogError(.wrongExpectedVersion) { _ = try await store.append(to: "b-1", expected: .exact(0), events: [textEvent("x")]) }
            let error = await expectLogError(.wrongExpectedVersion) {
                _ = try await store.append([
                    StreamAppend(stream: "c-1", expected: .noStream, events: [textEvent("c0")]),
                    StreamAppend(stream: "a-1", expected: .exact(7), events: [textEvent("a1")]),
                ], idempotencyKey: nil)
            }
            let cause = try #require(error?.cause as? WrongExpectedVersion)
            #expect(cause.stream == "a-1" && cause.actual == 0)
            #expect(try await store.head().position == 1)
            #expect(try await store.streamVersion("c-1") == nil)
            let next = try await store.append(to: "a-1", expected: .exact(0), events: [textEvent("a1")])
            #expect(next.positions == 2...2)
        }
    }

    @Test(arguments: Backend.allCases)
    func exactlyOneRacerWinsAndTheLoserSeesTheWinner(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            for round in 0..<10 {
                let stream = "race-\(round)"
                let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
                    for racer in 0..<8 {
                        group.addTask {
                            do {
                                _ = try await store.append(to: stream, expected: .noStream, events: [textEvent("r\(racer)")])
                                return true
                            } catch let error as EventLogError where error.code == .wrongExpectedVersion {
                                // The winner must already be readable when the loser hears of it.
                                #expect(try await store.streamVersion(stream) == 0)
                                return false
                            }
                        }
                    }
                    return try await group.reduce(into: [Bool]()) { $0.append($1) }
                }
                #expect(outcomes.filter { $0 }.count == 1, "round \(round)")
                #expect(try await store.readStream(stream).count == 1)
            }
        }
    }

    @Test(arguments: Backend.allCases)
    func manyConcurrentAppendersGetGapFreePositions(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let results = try await withThrowingTaskGroup(of: AppendResult.self) { group in
                for i in 0..<300 {
                    group.addTask { try await store.append(to: "c-\(i % 17)", events: (0..<(1 + i % 3)).map { textEvent("\(i).\($0)") }) }
                }
                return try await group.reduce(into: [AppendResult]()) { $0.append($1) }
            }
            let ranges = results.map(\.positions).sorted { $0.lowerBound < $1.lowerBound }
            var next: LogPosition = 1
            for range in ranges {
                #expect(range.lowerBound == next)
                next = range.upperBound + 1
            }
            let all = try await store.readAll()
            #expect(all.map(\.position) == Array(1..<next))
            for name in (0..<17).map({ "c-\($0)" }) {
                let versions = all.filter { $0.stream == name }.map(\.streamVersion)
                #expect(versions == Array(0..<UInt64(versions.count)))
            }
        }
    }

    @Test(arguments: Backend.allCases)
    func repeatedIdempotencyKeyReturnsTheFirstResult(_ backend: Backend) async throws {
        try await withLocation(backend) { location in
            var store = try location.open()
            let first = try await store.append(to: "k-1", events: [textEvent("one"), textEvent("two")], idempotencyKey: "key-1")
            let again = try await store.append(to: "k-1", events: [textEvent("other")], idempotencyKey: "key-1")
            #expect(again.deduplicated && again.positions == first.positions && again.streamVersions == first.streamVersions)
            // Concurrent appends with one new key: one writes, the others get its result.
            let racing = store
            let racers = try await withThrowingTaskGroup(of: AppendResult.self) { group in
                for i in 0..<20 {
                    group.addTask { try await racing.append(to: "k2-\(i)", events: [textEvent("r\(i)")], idempotencyKey: "key-2") }
                }
                return try await group.reduce(into: [AppendResult]()) { $0.append($1) }
            }
            #expect(racers.filter { !$0.deduplicated }.count == 1)
            #expect(Set(racers.map(\.positions)).count == 1)
            #expect(try await store.head().position == 3)
            try await store.close()

            store = try location.open()
            let reopened = try await store.append(to: "k-1", events: [textEvent("late")], idempotencyKey: "key-1")
            #expect(reopened.deduplicated && reopened.positions == first.positions && reopened.streamVersions == first.streamVersions)
            #expect(try await store.head().position == 3)
            try await store.close()
        }
    }

    @Test(arguments: Backend.allCases)
    func subscribersRacingAppendsSeeEveryPositionOnceInOrder(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            for i in 0..<20 { _ = try await store.append(to: "pre-1", events: [textEvent("pre \(i)")]) }
            let total = 20 + 8 * 25 * 2
            let tails = (0..<3).map { k in
                Task { try await store.tail(from: LogPosition(1 + k * 5), count: total - k * 5) }
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for w in 0..<8 {
                    group.addTask {
                        for k in 0..<25 { _ = try await store.append(to: "w-\(w)", events: [textEvent("\(w).\(k).a"), textEvent("\(w).\(k).b")]) }
                    }
                }
                try await group.waitForAll()
            }
            for (k, tail) in tails.enumerated() {
                let seen = try await tail.value
                #expect(seen.map(\.position) == Array(LogPosition(1 + k * 5)...LogPosition(total)))
            }
            #expect(try await store.readAll() == (try await store.tail(from: 1, count: total)))
        }
    }

    @Test(arguments: Backend.allCases)
    func subscriptionEndsWhenItsTaskIsCancelled(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            _ = try await store.append(to: "x-1", events: [textEvent("1")])
            let started = Mutex(0)
            let tail = Task {
                var n = 0
                for try await _ in store.subscribe(from: 1) {
                    n += 1
                    started.withLock { $0 = n }
                }
                return n
            }
            while started.withLock({ $0 }) == 0 { try await Task.sleep(for: .milliseconds(5)) }
            tail.cancel()
            #expect(try await tail.value == 1)
        }
    }

    @Test(arguments: Backend.allCases)
    func chainHashVerifyAndDigestAgreeAndSurviveReopen(_ backend: Backend) async throws {
        try await withLocation(backend) { location in
            var store = try location.open()
            let empty = try await store.head()
            #expect(empty.position == 0 && empty.chainHash == [UInt8](repeating: 0, count: 32))
            for i in 0..<40 { _ = try await store.append(to: "v-\(i % 5)", events: (0...(i % 3)).map { textEvent("\(i).\($0)") }) }
            let digest = try await store.head()
            #expect(digest.position == 79)
            var report = try await store.verify(expected: digest)
            #expect(report.intact && report.head == digest && report.events == 79)
            for i in 0..<10 { _ = try await store.append(to: "later-1", events: [textEvent("\(i)")]) }
            try await store.close()

            store = try location.open()
            let head = try await store.head()
            #expect(head.position == 89 && head.chainHash != digest.chainHash)
            report = try await store.verify(expected: digest)
            #expect(report.intact && report.head == head, "the log still holds the digest's prefix")
            let wrong = LogHead(position: digest.position, chainHash: [UInt8](repeating: 7, count: 32))
            report = try await store.verify(expected: wrong)
            #expect(!report.intact)
            #expect(report.firstBreak?.hashes == .init(expected: wrong.chainHash, found: digest.chainHash), "\(String(describing: report.firstBreak))")
            try await store.close()
        }
    }
    /// A row whose recorded chain hash was overwritten (what a careless rewrite leaves): the
    /// break is at that row, naming the hash it records and the one its bytes give.
    @Test func postgresRowWithAnotherChainHashIsABreakNamingBothHashes() async throws {
        try await TestPostgres.withDatabase { url in
            let store = try PostgresLog(url: url)
            for i in 0..<6 { _ = try await store.append(to: "t-\(i % 2)", events: [textEvent("\(i)"), textEvent("\(i)b")]) }
            let intact = try await store.verify(expected: nil, progress: nil)
            #expect(intact.intact && intact.events == 12)
            let before = try await store.verify(expected: LogHead(position: 6, chainHash: [UInt8](repeating: 0, count: 32)), progress: nil)
            let original = try #require(before.firstBreak?.hashes?.found, "the chain hash at position 6")
            let forged = [UInt8](repeating: 0xAB, count: 32)
            try PGConnection(url: url).execute("UPDATE tally_batches SET chain_hash = '\\x\(String(repeating: "ab", count: 32))' WHERE position = 5")
            let report = try await store.verify(expected: nil, progress: nil)
            #expect(!report.intact)
            #expect(report.firstBreak?.position == 5, "\(String(describing: report.firstBreak))")
            #expect(report.firstBreak?.hashes == .init(expected: forged, found: original), "\(String(describing: report.firstBreak))")
            #expect(report.head.position == 4)
            await store.close()
        }
    }
}
