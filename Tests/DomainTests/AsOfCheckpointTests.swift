import EventLog
import Events
import Foundation
@testable import Projections
import Testing

/// As-of answers from checkpoints: equal to a fold from position 1 at random positions and
/// times of random event sequences (whose event time sometimes goes back), series rows equal
/// to separate as-of answers, and damaged, truncated, other-version and other-log
/// checkpoints passed over with a reason while the answer stays exact.
@Suite(.timeLimit(.minutes(5))) struct AsOfCheckpointTests {
    static let seeds: [UInt64] = [3, 11, 2027]

    /// Folds the fixture's log once, writing checkpoints of stats and metrics every `every`
    /// events at batch ends, as `replay rebuild` does. Returns the positions written.
    @discardableResult
    static func writeCheckpoints(_ log: FileLog, to store: CheckpointStore, every: UInt64) async throws -> [LogPosition] {
        var schedule = CheckpointSchedule(everyEvents: every, everyEventMicros: 3_600_000_000)
        var stats = SystemStatsProjection()
        var metrics = MetricsProjection()
        var written: [LogPosition] = []
        for try await batch in log.read(from: 1).batches {
            stats.apply(batch: batch)
            metrics.apply(batch: batch)
            if schedule.folded(batch) {
                let mark = schedule.mark(after: batch[batch.count - 1])
                try store.save(stats, at: mark)
                try store.save(metrics, at: mark)
                schedule.written(at: mark.position)
                written.append(mark.position)
            }
        }
        return written
    }

    /// The plain reference for "as of time T": every event recorded before T, in position order.
    static func reference<P: Projection>(_: P.Type, _ log: FileLog, before time: Int64) async throws -> (P, LogPosition) {
        var projection = P()
        var position: LogPosition = 0
        for try await event in log.read(from: 1) where event.recordedAt < time {
            projection.apply(event)
            position = event.position
        }
        return (projection, position)
    }

    @Test(arguments: seeds) func checkpointedAnswersEqualFullFoldsAtRandomPositionsAndTimes(seed: UInt64) async throws {
        try await withViewFixture("asof-\(seed)") { fixture in
            let events = RandomEvents.make(count: 600, seed: seed)
            try await fixture.append(events, chunk: 13)
            let store = CheckpointStore(snapshotDirectory: fixture.snapshotDirectory)
            let written = try await Self.writeCheckpoints(fixture.log, to: store, every: 40)
            #expect(written.count >= 10)
            #expect(store.entries(for: SystemStatsProjection.name).map(\.position) == written)
            var rng = SplitMix64(seed: seed)
            let head = try await fixture.log.head().position
            var used = 0
            for _ in 0..<12 {
                let until = LogPosition.random(in: 0...head + 5, using: &rng)
                let answer = try await AsOf.fold(SystemStatsProjection.self, from: fixture.log, checkpoints: store, at: .position(until))
                let full = try await SystemStatsProjection.rebuild(from: fixture.log, until: until)
                #expect(answer.projection.makeView() == full.projection.makeView(), "seed \(seed), position \(until)")
                #expect(answer.position == full.position)
                #expect(answer.refused.isEmpty)
                if let mark = answer.checkpoint {
                    used += 1
                    #expect(mark.position <= until && mark.position == written.last { $0 <= until })
                    #expect(answer.eventsFolded == Int(answer.position - mark.position))
                }
                let metrics = try await AsOf.fold(MetricsProjection.self, from: fixture.log, checkpoints: store, at: .position(until))
                let fullMetrics = try await MetricsProjection.rebuild(from: fixture.log, until: until)
                #expect(MetricsComparison(metrics.projection) == MetricsComparison(fullMetrics.projection), "seed \(seed), position \(until)")
            }
            #expect(used > 0)
            let times = events.map(\.at).sorted()
            var timedUse = 0
            for _ in 0..<12 {
                let time = times[Int.random(in: 0..<times.count, using: &rng)] + Int64.random(in: -1...1, using: &rng)
                let answer = try await AsOf.fold(SystemStatsProjection.self, from: fixture.log, checkpoints: store, at: .before(time))
                let (expected, position) = try await Self.reference(SystemStatsProjection.self, fixture.log, before: time)
                #expect(answer.projection.makeView() == expected.makeView(), "seed \(seed), time \(time)")
                #expect(answer.position == position, "seed \(seed), time \(time)")
                if let mark = answer.checkpoint {
                    timedUse += 1
                    #expect(try #require(mark.maxRecordedAt) < time)
                }
                let metrics = try await AsOf.fold(MetricsProjection.self, from: fixture.log, checkpoints: store, at: .before(time))
                let (expectedMetrics, _) = try await Self.reference(MetricsProjection.self, fixture.log, before: time)
                #expect(MetricsComparison(metrics.projection) == MetricsComparison(expectedMetrics), "seed \(seed), time \(time)")
            }
            #expect(timedUse > 0)
            let atHead = try await AsOf.fold(SystemStatsProjection.self, from: fixture.log, checkpoints: store, at: .head)
            #expect(atHead.projection.makeView() == (try await SystemStatsProjection.rebuild(from: fixture.log)).projection.makeView())
            #expect(atHead.position == head && atHead.checkpoint?.position == written.last)
        }
    }

    @Test(arguments: seeds) func seriesRowsEqualSeparateAsOfAnswers(seed: UInt64) async throws {
        try await withViewFixture("series-\(seed)") { fixture in
            let events = RandomEvents.make(count: 500, seed: seed)
            try await fixture.append(events, chunk: 9)
            let store = CheckpointStore(snapshotDirectory: fixture.snapshotDirectory)
            try await Self.writeCheckpoints(fixture.log, to: store, every: 50)
            let times = events.map(\.at).sorted()
            let step: Int64 = 600_000_000
            let start = times[times.count / 10] / step * step
            let ends = (1...300).map { start + Int64($0) * step }
            let series = try await AsOfSeries.fold(SystemStatsProjection.self, from: fixture.log, checkpoints: store, ends: ends)
            #expect(series.rows.count == ends.count)
            for (row, end) in zip(series.rows, ends) {
                let (expected, position) = try await Self.reference(SystemStatsProjection.self, fixture.log, before: end)
                #expect(row.until == end)
                #expect(row.view == expected.makeView(), "seed \(seed), until \(end)")
                #expect(row.position == position, "seed \(seed), until \(end)")
            }
            // Event time goes back now and then in these sequences: some rows had to be answered again.
            #expect(series.reanswered > 0, "seed \(seed)")
        }
    }

    /// Events recorded hours before their neighbours, so several rows' late events overlap
    /// and the second pass holds several forks at once; with checkpoints and without.
    /// With at most two forks at once, most dirty rows wait for later second passes.
    @Test(arguments: [(true, AsOfSeries.maximumForks), (false, AsOfSeries.maximumForks), (true, 2), (false, 1)])
    func seriesRowsWithFarLateEventsEqualSeparateAnswers(checkpointed: Bool, maximumForks: Int) async throws {
        try await withViewFixture("series-late-\(checkpointed)-\(maximumForks)") { fixture in
            var events = RandomEvents.make(count: 400, seed: 77)
            var time = RandomEvents.start
            var rng = SplitMix64(seed: 77)
            for i in events.indices {
                time += 300_000_000
                // One in five is recorded up to ten hours earlier than the log's clock.
                let back = rng.next() % 5 == 0 ? Int64(rng.next() % 36_000_000_000) : 0
                events[i].at = time - back
            }
            try await fixture.append(events, chunk: 7)
            var store: CheckpointStore?
            if checkpointed {
                store = CheckpointStore(snapshotDirectory: fixture.snapshotDirectory)
                try await Self.writeCheckpoints(fixture.log, to: store!, every: 30)
            }
            let ends = (1...40).map { RandomEvents.start + Int64($0) * 3_600_000_000 }
            let series = try await AsOfSeries.fold(SystemStatsProjection.self, from: fixture.log, checkpoints: store, ends: ends,
                                                   maximumForks: maximumForks)
            #expect(series.rows.count == ends.count)
            if maximumForks <= 2 { #expect(series.secondPasses > 1, "\(series.secondPasses) second passes") }
            for (row, end) in zip(series.rows, ends) {
                let (expected, position) = try await Self.reference(SystemStatsProjection.self, fixture.log, before: end)
                #expect(row.view == expected.makeView(), "until \(end)")
                #expect(row.position == position, "until \(end)")
            }
            // Nearly every row has a late event after its crossing.
            #expect(series.reanswered >= ends.count / 2)
        }
    }

    /// `events` recorded ten minutes apart from `RandomEvents.start`, in order.
    static func forwardInTime(_ events: [TimedEvent]) -> [TimedEvent] {
        var events = events
        for i in events.indices { events[i].at = RandomEvents.start + Int64(i + 1) * 600_000_000 }
        return events
    }

    /// One event recorded at the start and appended last: every row is dirty until the end
    /// of the log. At most three forks live at once; the rows still equal separate answers.
    @Test func oneBackdatedEventAppendedLastMakesEveryRowDirtyWithBoundedForks() async throws {
        try await withViewFixture { fixture in
            var events = Self.forwardInTime(RandomEvents.make(count: 301, seed: 12))
            events[events.count - 1].at = RandomEvents.start + 1
            try await fixture.append(events, chunk: 5)
            let store = CheckpointStore(snapshotDirectory: fixture.snapshotDirectory)
            try await Self.writeCheckpoints(fixture.log, to: store, every: 40)
            let ends = (1...20).map { RandomEvents.start + Int64($0) * 3_600_000_000 * 2 }
            let series = try await AsOfSeries.fold(SystemStatsProjection.self, from: fixture.log, checkpoints: store, ends: ends,
                                                   maximumForks: 3)
            #expect(series.reanswered == ends.count - 1, "every row with a crossing")
            #expect(series.secondPasses == (ends.count - 1 + 2) / 3)
            for (row, end) in zip(series.rows, ends) {
                let (expected, position) = try await Self.reference(SystemStatsProjection.self, fixture.log, before: end)
                #expect(row.view == expected.makeView(), "until \(end)")
                #expect(row.position == position, "until \(end)")
            }
        }
    }

    @Test func seriesOverForwardTimeIsOnePass() async throws {
        try await withViewFixture { fixture in
            // Time only moves forward: every row is taken in the one pass.
            let events = Self.forwardInTime(RandomEvents.make(count: 300, seed: 9))
            try await fixture.append(events, chunk: 11)
            let ends = (1...20).map { RandomEvents.start + Int64($0) * 3_600_000_000 * 2 }
            let series = try await AsOfSeries.fold(SystemStatsProjection.self, from: fixture.log, checkpoints: nil, ends: ends)
            #expect(series.reanswered == 0)
            for (row, end) in zip(series.rows, ends) {
                let (expected, position) = try await Self.reference(SystemStatsProjection.self, fixture.log, before: end)
                #expect(row.view == expected.makeView() && row.position == position)
            }
        }
    }

    @Test func damagedOtherVersionAndOtherLogCheckpointsArePassedOverWithAReason() async throws {
        try await withViewFixture { fixture in
            try await fixture.append(RandomEvents.make(count: 400, seed: 5), chunk: 10)
            let store = CheckpointStore(snapshotDirectory: fixture.snapshotDirectory)
            let written = try await Self.writeCheckpoints(fixture.log, to: store, every: 60)
            try #require(written.count >= 5)
            let entries = store.entries(for: SystemStatsProjection.name)
            let until = written[written.count - 1] + 1
            let full = try await SystemStatsProjection.rebuild(from: fixture.log, until: until).projection.makeView()

            func answer() async throws -> AsOfAnswer<SystemStatsProjection> {
                let answer = try await AsOf.fold(SystemStatsProjection.self, from: fixture.log, checkpoints: store, at: .position(until))
                #expect(answer.projection.makeView() == full)
                return answer
            }
            let newest = try #require(entries.last)
            let original = try Data(contentsOf: URL(fileURLWithPath: newest.path))

            // A flipped byte in the state: a chunk checksum fails.
            var damaged = original
            damaged[damaged.count / 2] ^= 0x40
            try damaged.write(to: URL(fileURLWithPath: newest.path))
            var got = try await answer()
            #expect(got.checkpoint?.position == written[written.count - 2])
            #expect(got.refused.count == 1 && got.refused[0].contains("checksum"), "\(got.refused)")

            // Truncated.
            try original.prefix(original.count - 40).write(to: URL(fileURLWithPath: newest.path))
            got = try await answer()
            #expect(got.checkpoint?.position == written[written.count - 2])
            #expect(got.refused.first?.contains("truncated") == true || got.refused.first?.contains("trailer") == true, "\(got.refused)")

            // Another projection version: the header says version 99 (its checksum made to match).
            var otherVersion = original
            otherVersion.replaceSubrange(8..<16, with: withUnsafeBytes(of: Int64(99).littleEndian) { Data($0) })
            let nameLength = Int(otherVersion[6]) | Int(otherVersion[7]) << 8
            let crc = CRC32C.checksum([UInt8](otherVersion[44..<(44 + nameLength)])[...], continuing: CRC32C.checksum([UInt8](otherVersion[0..<40])[...]))
            otherVersion.replaceSubrange(40..<44, with: withUnsafeBytes(of: crc.littleEndian) { Data($0) })
            try otherVersion.write(to: URL(fileURLWithPath: newest.path))
            got = try await answer()
            #expect(got.checkpoint?.position == written[written.count - 2])
            #expect(got.refused.first?.contains("projection version 99") == true, "\(got.refused)")

            // A snapshot file where a checkpoint belongs: another magic.
            let snapshots = SnapshotStore(directory: fixture.snapshotDirectory)
            try snapshots.save(SystemStatsProjection(), position: newest.position, recordedAt: 1)
            try FileManager.default.removeItem(atPath: newest.path)
            try FileManager.default.copyItem(atPath: snapshots.path(for: SystemStatsProjection.name), toPath: newest.path)
            got = try await answer()
            #expect(got.refused.first?.contains("not a checkpoint file") == true, "\(got.refused)")

            // Another log's checkpoints, at the same positions: the bound event differs.
            try FileManager.default.removeItem(atPath: store.directory(for: SystemStatsProjection.name))
            let other = try FileLog(directory: fixture.directory + "/other", options: .init(fsync: .never))
            let otherEvents = RandomEvents.make(count: 400, seed: 6)
            var otherFixture = fixture
            otherFixture.log = other
            try await otherFixture.append(otherEvents, chunk: 10)
            try await Self.writeCheckpoints(other, to: store, every: 60)
            try await other.close()
            got = try await answer()
            #expect(got.checkpoint == nil)
            #expect(!got.refused.isEmpty && got.refused.allSatisfy { $0.contains("another log") }, "\(got.refused)")

            // A name that lies about the max recorded-at is refused too.
            try FileManager.default.removeItem(atPath: store.directory(for: SystemStatsProjection.name))
            try await Self.writeCheckpoints(fixture.log, to: store, every: 60)
            let real = try #require(store.entries(for: SystemStatsProjection.name).last)
            let lying = store.directory(for: SystemStatsProjection.name) + "/"
                + real.path.split(separator: "/").last!.split(separator: "-")[0] + "-1.checkpoint"
            try FileManager.default.moveItem(atPath: real.path, toPath: lying)
            let timed = try await AsOf.fold(SystemStatsProjection.self, from: fixture.log, checkpoints: store, at: .before(Int64.max))
            #expect(timed.refused.first?.contains("differs from its name") == true, "\(timed.refused)")
            #expect(timed.projection.makeView() == (try await SystemStatsProjection.rebuild(from: fixture.log)).projection.makeView())
        }
    }

    @Test func aCheckpointPastTheHeadIsFromAnotherLog() async throws {
        try await withViewFixture { fixture in
            try await fixture.append(RandomEvents.make(count: 100, seed: 8), chunk: 10)
            let store = CheckpointStore(snapshotDirectory: fixture.snapshotDirectory)
            let mark = CheckpointMark(position: 500, recordedAt: 1, maxRecordedAt: 1, fingerprint: 7)
            try store.save(SystemStatsProjection(), at: mark)
            let answer = try await AsOf.fold(SystemStatsProjection.self, from: fixture.log, checkpoints: store, at: .head)
            #expect(answer.checkpoint == nil && answer.position == 100)
            #expect(answer.refused.first?.contains("the log ends before its position 500") == true, "\(answer.refused)")
        }
    }

    @Test func scheduleIsByEventsAndByEventTime() {
        func events(_ times: [Int64], from first: LogPosition) -> [RecordedEvent] {
            times.enumerated().map { i, at in
                RecordedEvent(position: first + LogPosition(i), stream: "s-1", streamVersion: 0, type: "T", schemaVersion: 1, recordedAt: at,
                              actor: "", correlationID: "", causationID: "", idempotencyKey: nil, payload: [])
            }
        }
        var schedule = CheckpointSchedule(everyEvents: 100, everyEventMicros: 1_000)
        do { let due = schedule.folded(events(Array(repeating: 5, count: 99), from: 1)); #expect(!due) }
        do { let due = schedule.folded(events([5], from: 100)); #expect(due) }
        #expect(schedule.mark(after: events([5], from: 100)[0]).maxRecordedAt == 5)
        schedule.written(at: 100)
        // Event time moves on by the spacing, but fewer than a tenth of the events, or fewer
        // than a quarter of the last checkpoint's position (25): not yet.
        do { let due = schedule.folded(events([2_000], from: 101)); #expect(!due) }
        do { let due = schedule.folded(events(Array(repeating: 1_990, count: 9), from: 102)); #expect(!due) }
        do { let due = schedule.folded(events(Array(repeating: 1_990, count: 15), from: 111)); #expect(due) }
        #expect(schedule.maxRecordedAt == 2_000)
        // A fold continued from a state without its max recorded-at never claims one.
        var unknown = CheckpointSchedule(everyEvents: 10, position: 50, maxRecordedAt: nil)
        do { let due = unknown.folded(events(Array(repeating: 1, count: 12), from: 51)); #expect(due) }
        #expect(unknown.mark(after: events([1], from: 62)[0]).maxRecordedAt == nil)
    }

    @Test func checkpointSpacingGrowsWithTheHistorySoTheirBytesDoNot() {
        var schedule = CheckpointSchedule(everyEvents: 100, everyEventMicros: .max)
        var written: [LogPosition] = []
        for first in stride(from: LogPosition(1), through: 1_000_000, by: 10) {
            let batch = (0..<10).map { i in
                RecordedEvent(position: first + LogPosition(i), stream: "s", streamVersion: 0, type: "T", schemaVersion: 1, recordedAt: 0,
                              actor: "", correlationID: "", causationID: "", idempotencyKey: nil, payload: [])
            }
            if schedule.folded(batch) {
                written.append(first + 9)
                schedule.written(at: first + 9)
            }
        }
        #expect(written.prefix(4) == [100, 200, 300, 400], "every everyEvents while that is more than a quarter")
        #expect(zip(written, written.dropFirst()).allSatisfy { $1 - $0 >= max(100, $0 / 4) })
        // A fixed spacing of 100 would have written 10,000 checkpoints, each the whole state.
        #expect(written.count < 50, "\(written.count) checkpoints")
    }

    @Test func fileNamesRoundTripAndOthersAreIgnored() {
        #expect(CheckpointStore.parse(fileName: CheckpointStore.fileName(position: 42, maxRecordedAt: -7))! == (42, -7))
        #expect(CheckpointStore.parse(fileName: CheckpointStore.fileName(position: 1, maxRecordedAt: nil))! == (1, nil))
        for name in ["0042-1.checkpoint", "00000000000000000042-x.checkpoint", "00000000000000000000-1.checkpoint",
                     "00000000000000000042-1.checkpoint.tmp-1-2", "system-stats.snapshot"] {
            #expect(CheckpointStore.parse(fileName: name) == nil, "\(name)")
        }
    }
}
