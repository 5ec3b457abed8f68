import EventLog
import Events
import Projections
import Synchronization
import Testing

/// Determinism of the three views on random event sequences: the live view of a runner
/// that tails appends equals a full rebuild, and so does a runner restarted from its
/// snapshot after more appends and a restart of the log.
@Suite struct ProjectionPropertyTests {
    static let seeds: [UInt64] = [1, 7, 42, 2026, 0xDEAD_BEEF]

    @Test(arguments: seeds) func systemStats(seed: UInt64) async throws {
        try await check(SystemStatsProjection.self, seed: seed) { $0 == $1 }
    }

    @Test(arguments: seeds) func unlockedProfiles(seed: UInt64) async throws {
        try await check(UnlockedProfilesProjection.self, seed: seed) { $0 == $1 }
    }

    @Test(arguments: seeds) func metrics(seed: UInt64) async throws {
        try await check(MetricsProjection.self, seed: seed) { MetricsComparison($0) == MetricsComparison($1) }
    }

    /// Folding events one at a time in memory equals the batched rebuild from the log.
    @Test(arguments: seeds) func incrementalFoldEqualsRebuild(seed: UInt64) async throws {
        try await withViewFixture { fixture in
            try await fixture.append(RandomEvents.make(count: 300, seed: seed), chunk: 17)
            var stats = SystemStatsProjection()
            var unlocked = UnlockedProfilesProjection()
            var metrics = MetricsProjection()
            for try await event in fixture.log.read(from: 1) {
                stats.apply(event)
                unlocked.apply(event)
                metrics.apply(event)
            }
            #expect(stats.makeView() == (try await SystemStatsProjection.rebuild(from: fixture.log)).projection.makeView())
            #expect(unlocked.makeView() == (try await UnlockedProfilesProjection.rebuild(from: fixture.log)).projection.makeView())
            #expect(MetricsComparison(metrics) == MetricsComparison((try await MetricsProjection.rebuild(from: fixture.log)).projection))
        }
    }

    private func check<P: Projection>(_: P.Type, seed: UInt64, same: @escaping (P.View, P.View) -> Bool) async throws {
        try await withViewFixture("\(P.name)-\(seed)") { fixture in
            let events = RandomEvents.make(count: 450, seed: seed)
            let thirds = [events[0..<150], events[150..<300], events[300...]].map(Array.init)
            let snapshots = SnapshotStore(directory: fixture.snapshotDirectory)
            let options = ProjectionRunnerOptions(snapshotEveryEvents: 40, publishMinimumIntervalMilliseconds: 1)

            // Live: a runner tails while the second third arrives in small appends.
            try await fixture.append(thirds[0], chunk: 25)
            let live = ProjectionRunner<P, FileLog>(store: fixture.log, snapshots: snapshots, options: options)
            let running = Task { try await live.run() }
            try await fixture.append(thirds[1], chunk: 7)
            let head = try await fixture.log.head().position
            #expect(await live.waitForPosition(head, timeout: .seconds(20)))
            let rebuilt = try await P.rebuild(from: fixture.log)
            #expect(live.current.position == head)
            #expect(same(live.current.view, rebuilt.projection.makeView()), "live view differs from a rebuild (seed \(seed))")
            running.cancel()
            try await running.value

            // Snapshot + tail across a restart: more events while nothing runs, then a new runner.
            try await fixture.append(thirds[2], chunk: 11)
            try await fixture.restart()
            let loaded = Mutex<LogPosition?>(nil)
            let restarted = ProjectionRunner<P, FileLog>(store: fixture.log, snapshots: snapshots, options: options) { event in
                if case .snapshotLoaded(_, let position) = event { loaded.withLock { $0 = position } }
            }
            let again = Task { try await restarted.run() }
            let finalHead = try await fixture.log.head().position
            #expect(await restarted.waitForPosition(finalHead, timeout: .seconds(20)))
            let fromSnapshot = try #require(loaded.withLock { $0 }, "the restarted runner did not start from a snapshot")
            #expect(fromSnapshot >= head)
            let full = try await P.rebuild(from: fixture.log)
            #expect(same(restarted.current.view, full.projection.makeView()), "snapshot + tail differs from a rebuild (seed \(seed))")
            again.cancel()
            try await again.value
        }
    }
}

/// What the metrics view shows, in comparable form (histograms compare by their summaries).
struct MetricsComparison: Equatable {
    var minutes: [MetricsBucket]
    var hours: [MetricsBucket]
    var latency: [LatencySummary]
    var gauges: [String: HealthGauge]
    var transitions: [BreakerTransition]
    var transitionCount: Int64
    var newest: Int64?

    init(_ m: MetricsProjection) {
        minutes = m.minuteBuckets
        hours = m.hourBuckets(last: 720)
        latency = LatencyKind.allCases.flatMap { [m.latency($0), m.latency($0, lastHours: 720), m.latency($0, lastHours: 3)] }
        gauges = m.gauges
        transitions = m.transitions
        transitionCount = m.transitionCount
        newest = m.newestEventTime
    }
}
