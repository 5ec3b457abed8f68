import EventLog
import Events
import Foundation
import Synchronization
import TallyTestSupport
import Testing
@testable import Projections

/// The stats runner's hourly rows: on random logs whose event time mostly moves forward,
/// sometimes jumps hours and sometimes steps back, every row it gives equals the separate
/// as-of answer, it gives exactly the rows no late event changed, and the rows survive a
/// restart with the snapshot they were written with — and only with it.
@Suite(.timeLimit(.minutes(5))) struct IntervalRowsTests {
    static let hour: Int64 = 3_600_000_000
    typealias StatsRunner = ProjectionRunner<SystemStatsProjection, FileLog>

    /// Hour boundaries the log's event time passed whose row no event of a later batch
    /// changed (`batch[i]` numbers event i's batch; nil: each event its own batch, the
    /// rows every delivery keeps): the rows a fold must hold, before the oldest are trimmed.
    static func expectedEnds(_ times: [Int64], batch: [Int]? = nil) -> [Int64] {
        guard let first = times.first else { return [] }
        let batch = batch ?? Array(times.indices)
        var ends: [Int64] = []
        var max = first
        for (index, at) in times.enumerated().dropFirst() where at > max {
            var end = (max / hour + 1) * hour
            max = at
            let after = times.indices.first { batch[$0] > batch[index] } ?? times.count
            while end <= at {
                if !times[after...].contains(where: { $0 < end }) { ends.append(end) }
                end += hour
            }
        }
        return ends
    }

    /// Every hour the fold passed: no row can be at another time.
    static func crossedEnds(_ times: [Int64]) -> Set<Int64> {
        var ends: Set<Int64> = []
        var max = times[0]
        for at in times.dropFirst() where at > max {
            var end = (max / hour + 1) * hour
            while end <= at {
                ends.insert(end)
                end += hour
            }
            max = at
        }
        return ends
    }

    /// Every event of `log`, in position order.
    static func recorded(_ log: FileLog) async throws -> [RecordedEvent] {
        var recorded: [RecordedEvent] = []
        for try await batch in log.read(from: 1, filter: nil).batches { recorded += batch }
        return recorded
    }

    static func start(_ log: FileLog, _ snapshots: SnapshotStore?, options: IntervalRowsOptions<SystemStats> = SystemStats.hourlyRows,
                      recorder: @escaping @Sendable (ProjectionRunnerEvent) -> Void = { _ in }) -> (StatsRunner, Task<Void, any Error>) {
        let runner = StatsRunner(store: log, snapshots: snapshots, options: .init(snapshotEveryEvents: 1_000_000), intervalRows: options,
                                 onEvent: recorder)
        return (runner, Task { try await runner.run() })
    }

    static func live(_ runner: StatsRunner, at position: LogPosition) async throws -> IntervalRows<SystemStats> {
        let reached = await eventually(timeout: .seconds(60)) { runner.state == .live && runner.current.position == position }
        try #require(reached, "runner at \(runner.current.position), state \(runner.state)")
        return try #require(runner.currentWithRows.rows)
    }

    /// Every row the rows give, over every hour around the log and some times between hours,
    /// against `AsOf.fold`.
    static func checkAnswers(_ rows: IntervalRows<SystemStats>, current: SystemStats, events: [TimedEvent], log: FileLog) async throws -> Int {
        let times = events.map(\.at)
        var answered = 0
        let (first, last) = (times.min()!, times.max()!)
        let firstHour: Int64 = (first / hour - 1) * hour
        let lastHour: Int64 = (last / hour + 2) * hour
        var ends: [Int64] = Array(stride(from: firstHour, through: lastHour, by: Int(hour)))
        ends += [first, first + 1, last, last + 1]
        for end in ends {
            guard let row = rows.row(until: end, current: current) else { continue }
            let fresh = try await AsOf.fold(SystemStatsProjection.self, from: log, checkpoints: nil, at: .before(end))
            #expect(row.until == end)
            #expect(row.view == fresh.projection.makeView(), "until \(EventTime.iso8601(micros: end))")
            #expect(row.position == fresh.position, "until \(EventTime.iso8601(micros: end))")
            answered += 1
        }
        return answered
    }

    @Test(arguments: [3, 11, 23, 31] as [UInt64])
    func everyRowEqualsTheSeparateAsOfAnswer(seed: UInt64) async throws {
        try await withViewFixture { fixture in
            let events = RandomEvents.make(count: 400, seed: seed)
            try await fixture.append(events, chunk: Int(seed % 9) + 1)
            let (runner, task) = Self.start(fixture.log, nil)
            let rows = try await Self.live(runner, at: LogPosition(events.count))
            let times = events.map(\.at)
            // However the store delivers batches: every clean row, and only hours passed.
            let held = Set(rows.rows.map(\.until))
            #expect(Set(Self.expectedEnds(times)).isSubset(of: held))
            #expect(held.isSubset(of: Self.crossedEnds(times)))
            #expect(rows.rows.count >= 5, "a log over many hours keeps rows")
            let answered = try await Self.checkAnswers(rows, current: runner.current.view, events: events, log: fixture.log)
            #expect(answered >= rows.rows.count)
            task.cancel()
            try await task.value
        }
    }

    @Test(arguments: [7, 19, 37] as [UInt64])
    func aBatchsLateEventsAreFoldedIntoItsRowsAndALaterBatchsDropThem(seed: UInt64) async throws {
        try await withViewFixture { fixture in
            let events = RandomEvents.make(count: 400, seed: seed)
            try await fixture.append(events, chunk: 50)
            let recorded = try await Self.recorded(fixture.log)
            try #require(recorded.count == events.count)
            // Batches of 1 to 40 events, as a store might deliver them.
            var rng = SplitMix64(seed: seed)
            var batchOf: [Int] = []
            var rows = IntervalRows<SystemStats>(every: Self.hour, kept: 10_000, position: 0, maxRecordedAt: nil, emptyView: SystemStatsProjection().makeView())
            var projection = SystemStatsProjection()
            var start = 0
            while start < recorded.count {
                let end = min(recorded.count, start + Int.random(in: 1...40, using: &rng))
                batchOf += Array(repeating: batchOf.last.map { $0 + 1 } ?? 0, count: end - start)
                rows.fold(Array(recorded[start..<end]), into: &projection)
                start = end
            }
            #expect(projection.makeView() == (try await SystemStatsProjection.rebuild(from: fixture.log)).projection.makeView())
            let expected = Self.expectedEnds(recorded.map(\.recordedAt), batch: batchOf)
            #expect(rows.rows.map(\.until) == expected)
            #expect(expected.count >= Self.expectedEnds(recorded.map(\.recordedAt)).count)
            let answered = try await Self.checkAnswers(rows, current: projection.makeView(), events: events, log: fixture.log)
            #expect(answered >= rows.rows.count)
        }
    }

    @Test func aLateEventOfTheSameBatchIsInTheRowOneOfALaterBatchDropsIt() async throws {
        try await withViewFixture { fixture in
            let eleven = (RandomEvents.start / Self.hour + 1) * Self.hour
            func grant(_ amount: Int64, at: Int64) -> TimedEvent {
                TimedEvent(.creditsGranted(.init(user: "u1", amount: amount, reason: "t")), at: at)
            }
            let minute: Int64 = 60_000_000
            let events = [grant(1, at: eleven - minute), grant(2, at: eleven + minute), grant(4, at: eleven - 2 * minute),
                          grant(8, at: eleven + Self.hour + minute), grant(16, at: eleven - 3 * minute)]
            try await fixture.append(events, chunk: 5)
            let recorded = try await Self.recorded(fixture.log)
            var rows = IntervalRows<SystemStats>(every: Self.hour, kept: 100, position: 0, maxRecordedAt: nil, emptyView: SystemStatsProjection().makeView())
            var projection = SystemStatsProjection()
            rows.fold(Array(recorded[..<4]), into: &projection)
            // 11:00 holds the grants of 1 and 4 (the second recorded before it, placed after
            // the crossing), at the 4's position; 12:00 holds 1, 2 and 4.
            #expect(rows.rows.map(\.until) == [eleven, eleven + Self.hour])
            #expect(rows.rows.map(\.view.credits.granted) == [5, 7])
            #expect(rows.rows.map(\.position) == [3, 3])
            // Recorded at 10:57, in the next batch: both rows are wrong now.
            rows.fold([recorded[4]], into: &projection)
            #expect(rows.rows.isEmpty)
            #expect(rows.row(until: eleven, current: projection.makeView()) == nil)
            #expect(rows.row(until: eleven + 2 * Self.hour, current: projection.makeView())?.view.credits.granted == 31)
            #expect(rows.row(until: eleven - 3 * minute, current: projection.makeView())?.position == 0)
        }
    }

    /// The stats view with late events folded beside the state (never into a copy of it)
    /// against folding them into a copy, for states after every prefix length and any later
    /// events: new and known usernames, posts and users, repeated ones, every event kind.
    @Test(arguments: [61, 67, 71] as [UInt64])
    func theStatsViewAlsoFoldingLateEventsEqualsFoldingThemIntoACopy(seed: UInt64) async throws {
        try await withViewFixture { fixture in
            let events = RandomEvents.make(count: 500, seed: seed)
            try await fixture.append(events, chunk: 50)
            let recorded = try await Self.recorded(fixture.log)
            var rng = SplitMix64(seed: seed)
            var base = SystemStatsProjection()
            var folded = 0
            for split in stride(from: 0, to: recorded.count, by: 7) {
                base.apply(batch: Array(recorded[folded..<split]))
                folded = split
                for _ in 0..<3 {
                    let late = recorded[split...].filter { _ in Int.random(in: 0..<8, using: &rng) == 0 }.prefix(Int.random(in: 1...40, using: &rng))
                    var copy = base
                    copy.apply(batch: Array(late))
                    #expect(base.view(alsoFolding: Array(late)) == copy.makeView(), "after \(split) events, \(late.count) late")
                }
            }
            // The state itself is unchanged.
            var again = SystemStatsProjection()
            again.apply(batch: Array(recorded[..<folded]))
            #expect(base.makeView() == again.makeView())
        }
    }

    @Test func timesAtTheEndsOfInt64NeverTrap() {
        func event(_ position: LogPosition, _ at: Int64) -> RecordedEvent {
            RecordedEvent(position: position, stream: "s-1", streamVersion: position - 1, type: "Unknown", schemaVersion: 1, recordedAt: at,
                          actor: "", correlationID: "", causationID: "", idempotencyKey: nil, payload: [])
        }
        var rows = IntervalRows<SystemStats>(every: Self.hour, kept: 4, position: 0, maxRecordedAt: nil,
                                             emptyView: SystemStatsProjection().makeView())
        var projection = SystemStatsProjection()
        // No hour below Int64.min + 1 is representable: the first row is at 0.
        rows.fold([event(1, .min), event(2, .min + 1), event(3, -Self.hour), event(4, 0)], into: &projection)
        #expect(rows.rows.map(\.until) == [0])
        // A jump of more than `kept` hours keeps the newest four (and the trim drops 0).
        rows.fold([event(5, 10 * Self.hour)], into: &projection)
        #expect(rows.rows.map(\.until) == [7, 8, 9, 10].map { $0 * Self.hour })
        #expect(rows.rows.allSatisfy { $0.position == 4 })
        // Up to Int64.max: the newest hours below it, and none past it.
        rows.fold([event(6, .max - 1), event(7, .max)], into: &projection)
        let top = Int64.max - Int64.max % Self.hour
        #expect(rows.rows.map(\.until) == [top - 3 * Self.hour, top - 2 * Self.hour, top - Self.hour, top])
        #expect(rows.row(until: top, current: projection.makeView())?.position == 5)
        #expect(rows.position == 7)
    }

    @Test func onlyTheNewestRowsAreKept() async throws {
        try await withViewFixture { fixture in
            // Forward only: every hour passed keeps a row until trimmed.
            let events = (0..<300).map { i in
                TimedEvent(.creditsGranted(.init(user: "u\(i % 5)", amount: 1, reason: "t")), at: RandomEvents.start + Int64(i) * Self.hour / 4)
            }
            try await fixture.append(events, chunk: 13)
            var options = SystemStats.hourlyRows
            options.kept = 16
            let (runner, task) = Self.start(fixture.log, nil, options: options)
            let rows = try await Self.live(runner, at: 300)
            let all = Self.expectedEnds(events.map(\.at))
            #expect(all.count > 60)
            #expect((16...18).contains(rows.rows.count))
            #expect(rows.rows.map(\.until) == Array(all.suffix(rows.rows.count)))
            // Older hours are not answered; the kept ones are, and the current one.
            #expect(rows.row(until: all[0], current: runner.current.view) == nil)
            _ = try await Self.checkAnswers(rows, current: runner.current.view, events: events, log: fixture.log)
            task.cancel()
            try await task.value
        }
    }

    @Test func rowsSurviveARestartWithTheirSnapshotAndContinueAsAFreshFoldWould() async throws {
        try await withViewFixture { fixture in
            let events = RandomEvents.make(count: 500, seed: 53)
            let snapshots = SnapshotStore(directory: fixture.snapshotDirectory)
            try await fixture.append(Array(events[..<300]), chunk: 6)
            let (first, firstTask) = Self.start(fixture.log, snapshots)
            let before = try await Self.live(first, at: 300)
            firstTask.cancel()
            try await firstTask.value
            #expect(FileManager.default.fileExists(atPath: snapshots.rowsPath(for: SystemStatsProjection.name)))

            let ignored = Mutex<[String]>([])
            let (second, secondTask) = Self.start(fixture.log, snapshots) { event in
                if case .snapshotIgnored(let reason) = event { ignored.withLock { $0.append(reason) } }
            }
            let reloaded = try await Self.live(second, at: 300)
            #expect(ignored.withLock { $0 }.isEmpty)
            #expect(reloaded.rows.map(\.until) == before.rows.map(\.until))
            #expect(reloaded.rows.map(\.position) == before.rows.map(\.position))
            #expect(reloaded.rows.map(\.view) == before.rows.map(\.view))
            #expect((reloaded.maxRecordedAt, reloaded.earliest, reloaded.fromStart) == (before.maxRecordedAt, before.earliest, before.fromStart))

            try await fixture.append(Array(events[300...]), chunk: 4)
            let continued = try await Self.live(second, at: 500)
            secondTask.cancel()
            try await secondTask.value
            let (scratch, scratchTask) = Self.start(fixture.log, nil)
            let fresh = try await Self.live(scratch, at: 500)
            scratchTask.cancel()
            try await scratchTask.value
            #expect(continued.rows.map(\.until) == fresh.rows.map(\.until))
            #expect(continued.rows.map(\.position) == fresh.rows.map(\.position))
            #expect(continued.rows.map(\.view) == fresh.rows.map(\.view))
        }
    }

    @Test func aDamagedOrMismatchedRowsFileIsPassedOverWithAReason() async throws {
        try await withViewFixture { fixture in
            let events = RandomEvents.make(count: 300, seed: 59)
            let snapshots = SnapshotStore(directory: fixture.snapshotDirectory)
            let path = snapshots.rowsPath(for: SystemStatsProjection.name)
            try await fixture.append(Array(events[..<200]), chunk: 5)
            let (first, firstTask) = Self.start(fixture.log, snapshots)
            _ = try await Self.live(first, at: 200)
            firstTask.cancel()
            try await firstTask.value
            let older = try Data(contentsOf: URL(fileURLWithPath: path))

            // Rows of another snapshot (position 200, the snapshot is at 300).
            try await fixture.append(Array(events[200...]), chunk: 5)
            let (second, secondTask) = Self.start(fixture.log, snapshots)
            _ = try await Self.live(second, at: 300)
            secondTask.cancel()
            try await secondTask.value
            let newer = try Data(contentsOf: URL(fileURLWithPath: path))
            try older.write(to: URL(fileURLWithPath: path))
            try await Self.expectPassedOver(fixture.log, snapshots, at: 300, because: "not with the snapshot loaded")

            // One flipped byte in the newest rows.
            var damaged = newer
            damaged[damaged.count / 2] ^= 0x40
            try damaged.write(to: URL(fileURLWithPath: path))
            try await Self.expectPassedOver(fixture.log, snapshots, at: 300, because: ".rows")
        }
    }

    static func expectPassedOver(_ log: FileLog, _ snapshots: SnapshotStore, at position: LogPosition, because: String) async throws {
        let ignored = Mutex<[String]>([])
        let (runner, task) = start(log, snapshots) { event in
            if case .snapshotIgnored(let reason) = event { ignored.withLock { $0.append(reason) } }
        }
        let rows = try await live(runner, at: position)
        let reasons = ignored.withLock { $0 }
        #expect(reasons.count == 1 && reasons.allSatisfy { $0.contains(because) }, "\(reasons)")
        // Rows start again at the snapshot: none yet, the current view still answers.
        #expect(rows.rows.isEmpty && rows.knowsPast && !rows.fromStart)
        #expect(rows.row(until: rows.maxRecordedAt! + 1, current: runner.current.view)?.position == position)
        task.cancel()
        try await task.value
    }

    @Test func aRowReadsBackEqualAndEveryTruncationIsAnErrorNeverATrap() throws {
        var stats = SystemStats()
        stats.profiles.total = 7
        stats.profiles.aiCompletionRate = 3.0 / 7
        stats.cdn.byPriority = ["high": .init(queued: 3, succeeded: 2, failed: 1, successRate: 2.0 / 3), "low": .init()]
        stats.health.latest = ["api": .init(status: .degraded, memoryPct: 71.5, cpuPct: 12, diskPct: 40, latencyMs: 3.25, sampledAt: 99, breaker: .open)]
        stats.health.statusCounts = ["ok": 0, "degraded": 1, "down": 0]
        stats.system = .init(status: "degraded", aiSystem: "unknown")
        var writer = SnapshotWriter(fd: -1, path: "", name: "rows", version: 1, position: 1, recordedAt: nil)
        writer.section(1, count: 1)
        stats.write(to: &writer)
        let file = try writer.finish()
        guard case .success(let snapshot) = SnapshotFormat.decode(file) else {
            Issue.record("the rows did not decode")
            return
        }
        var reader = SnapshotReader(snapshot.payload, sections: snapshot.sections)
        _ = try reader.section(1, minimumBytes: 0)
        #expect(try SystemStats(row: &reader) == stats)
        for cut in 0..<snapshot.payload.count - 1 {
            var short = SnapshotReader(Array(snapshot.payload[..<cut]), sections: snapshot.sections)
            #expect(throws: ProjectionError.self) {
                _ = try short.section(1, minimumBytes: 0)
                _ = try SystemStats(row: &short)
            }
        }
    }
}
