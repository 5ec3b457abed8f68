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
            let events = RandomEvents.make(count: 320, seed: 21)
            try await Self.appendEach(events, to: fixture.log)
            let store = CheckpointStore(snapshotDirectory: try #require(fixture.configuration.snapshotDirectory))
            try await waitUntil("the runners wrote checkpoints of stats and metrics up to position 280") {
                store.entries(for: SystemStatsProjection.name).contains { $0.position >= 280 }
                    && store.entries(for: MetricsProjection.name).contains { $0.position >= 280 }
            }
            #expect(store.entries(for: UnlockedProfilesProjection.name).isEmpty)
            for until: LogPosition in [45, 130, 281, 320] {
                let answer = try await AsOf.fold(SystemStatsProjection.self, from: fixture.log, checkpoints: store, at: .position(until))
                #expect(answer.checkpoint != nil && answer.refused.isEmpty, "\(until): \(answer.refused)")
                let full = try await SystemStatsProjection.rebuild(from: fixture.log, until: until)
                #expect(answer.projection.makeView() == full.projection.makeView(), "position \(until)")
                let metrics = try await AsOf.fold(MetricsProjection.self, from: fixture.log, checkpoints: store, at: .position(until))
                let fullMetrics = try await MetricsProjection.rebuild(from: fixture.log, until: until)
                #expect(MetricsComparison(metrics.projection) == MetricsComparison(fullMetrics.projection), "position \(until)")
            }
            let time = events.map(\.at).sorted()[200]
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
