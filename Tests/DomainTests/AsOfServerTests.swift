import API
import EventLog
import Events
import Projections
import TallyTestSupport
import Testing

/// The server keeps as-of checkpoints of stats and metrics beside its snapshots, through the
/// real composition, and they answer exactly; a runner continued from a snapshot still
/// places them by event time.
@Suite(.timeLimit(.minutes(5))) struct AsOfServerTests {
    static func appendEach(_ events: [TimedEvent], to log: FileLog) async throws {
        for timed in events {
            _ = try await log.append(to: timed.stream, events: [timed.proposed])
        }
    }

    @Test func theServerKeepsCheckpointsThatAnswerAsOfAPoint() async throws {
        try await withTallyFixture(configure: { configuration in
            configuration.snapshots = true
            configuration.checkpointEveryEvents = 40
        }) { fixture in
            // 320 in chunks, then one per poll of the wait below (at most 300: 60 s at 200 ms).
            let all = RandomEvents.make(count: 640, seed: 21)
            let events = Array(all[..<320])
            var trickle = all[320...].makeIterator()
            // Eight chunks of 40, each folded before the next is appended, so the runners see
            // at least eight batches whatever the machine's speed. Where the checkpoints fall
            // inside that depends on how the runners' reads cut the batches; the schedule
            // guarantees one due by each of positions 40, 80, 120 and 160 (a quarter of the
            // last one's position is at most 40 until then), and the one due while another
            // was being written is handed over at the next batch.
            for chunk in stride(from: 0, to: events.count, by: 40) {
                try await Self.appendEach(Array(events[chunk..<chunk + 40]), to: fixture.log)
                let end = LogPosition(chunk + 40)
                #expect(await fixture.hub.stats.waitForPosition(end, timeout: .seconds(60)))
                #expect(await fixture.hub.metrics.waitForPosition(end, timeout: .seconds(60)))
            }
            let store = CheckpointStore(snapshotDirectory: try #require(fixture.configuration.snapshotDirectory))
            // A checkpoint that fell due while another was being written goes out at the next
            // batch; on a slow disk that can be after the last chunk, so the wait gives the
            // runners one more event at a time until it has. (With 80 of them, a loaded CI
            // machine ran out of events while a write was still going, and the due checkpoint
            // had no batch left to go out with.)
            try await waitUntil("the runners wrote at least four checkpoints of stats and of metrics", poll: .milliseconds(200)) {
                if store.entries(for: SystemStatsProjection.name).count >= 4 && store.entries(for: MetricsProjection.name).count >= 4 { return true }
                if let next = trickle.next() { try await Self.appendEach([next], to: fixture.log) }
                return false
            }
            #expect(store.entries(for: UnlockedProfilesProjection.name).isEmpty)
            let written = store.entries(for: SystemStatsProjection.name).map(\.position)
            let first = try #require(written.min())
            #expect(first <= 40, "\(written)")
            // At each checkpoint, just after it, between two, and at the head.
            let points = Set(written.flatMap { [$0, $0 + 1, $0 + 17] }.filter { $0 <= 320 } + [320])
            for until in points.sorted() {
                let answer = try await AsOf.fold(SystemStatsProjection.self, from: fixture.log, checkpoints: store, at: .position(until))
                #expect(answer.checkpoint != nil && answer.refused.isEmpty, "\(until): \(answer.refused)")
                let full = try await SystemStatsProjection.rebuild(from: fixture.log, until: until)
                #expect(answer.projection.makeView() == full.projection.makeView(), "position \(until)")
                let metrics = try await AsOf.fold(MetricsProjection.self, from: fixture.log, checkpoints: store, at: .position(until))
                #expect(metrics.checkpoint != nil, "metrics at \(until)")
                let fullMetrics = try await MetricsProjection.rebuild(from: fixture.log, until: until)
                #expect(MetricsComparison(metrics.projection) == MetricsComparison(fullMetrics.projection), "position \(until)")
            }
            let earliest = try #require(store.entries(for: SystemStatsProjection.name).min { $0.position < $1.position })
            let time = try #require(earliest.maxRecordedAt) + 1
            let timed = try await AsOf.fold(SystemStatsProjection.self, from: fixture.log, checkpoints: store, at: .before(time))
            let (expected, position) = try await AsOfCheckpointTests.reference(SystemStatsProjection.self, fixture.log, before: time)
            #expect(timed.checkpoint != nil)
            #expect(timed.projection.makeView() == expected.makeView() && timed.position == position)
        }
    }

    @Test func aRunnerContinuedFromItsSnapshotStillRecordsEventTime() async throws {
        try await withViewFixture { fixture in
            let events = RandomEvents.make(count: 300, seed: 33)
            try await fixture.append(Array(events[0..<150]), chunk: 10)
            let snapshots = SnapshotStore(directory: fixture.snapshotDirectory)
            let checkpoints = CheckpointStore(snapshotDirectory: fixture.snapshotDirectory)
            let options = ProjectionRunnerOptions(publishMinimumIntervalMilliseconds: 1, checkpointEveryEvents: 30)
            let first = ProjectionRunner<SystemStatsProjection, FileLog>(store: fixture.log, snapshots: snapshots, checkpoints: checkpoints, options: options)
            let running = Task { try await first.run() }
            #expect(await first.waitForPosition(150, timeout: .seconds(30)))
            running.cancel()
            try await running.value
            // The final snapshot records the largest event time folded.
            guard case .valid(let snapshot) = SnapshotStore.readFile(atPath: snapshots.path(for: SystemStatsProjection.name)) else {
                Issue.record("no snapshot written")
                return
            }
            #expect(snapshot.position == 150 && snapshot.maxRecordedAt == events[0..<150].map(\.at).max())

            try await fixture.append(Array(events[150...]), chunk: 10)
            let second = ProjectionRunner<SystemStatsProjection, FileLog>(store: fixture.log, snapshots: snapshots, checkpoints: checkpoints, options: options)
            let again = Task { try await second.run() }
            #expect(await second.waitForPosition(300, timeout: .seconds(30)))
            again.cancel()
            try await again.value
            let later = checkpoints.entries(for: SystemStatsProjection.name).filter { $0.position > 150 }
            #expect(!later.isEmpty && later.allSatisfy { $0.maxRecordedAt != nil }, "\(later)")
            for entry in later {
                let expected = events[0..<Int(entry.position)].map(\.at).max()
                #expect(entry.maxRecordedAt == expected, "\(entry)")
            }
        }
    }
}
