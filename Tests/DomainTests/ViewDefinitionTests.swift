import EventLog
import Events
import Projections
import Testing

/// Each view's definitions (issue 3), on small hand-made logs whose answers are worked out
/// by hand.
@Suite(.timeLimit(.minutes(5))) struct ViewDefinitionTests {
    /// A whole minute (and hour) of event time, so buckets start at t0.
    static let t0: Int64 = 1_789_999_200_000_000
    static func at(minutes: Int64) -> Int64 { t0 + minutes * 60_000_000 }

    static let sample: [TimedEvent] = [
        TimedEvent(.creditsGranted(.init(user: "u1", amount: 5, reason: "signup")), at: at(minutes: 0)),
        TimedEvent(.creatorSearched(.init(user: "u1", username: "alice", servedFrom: .cache, durationMs: 10, found: true)), at: at(minutes: 1)),
        TimedEvent(.creatorSearched(.init(user: "u1", username: "bob", servedFrom: .fresh, durationMs: 300, found: true)), at: at(minutes: 1)),
        TimedEvent(.creatorSearched(.init(user: "u2", username: "alice", servedFrom: .cache, durationMs: 20, found: true)), at: at(minutes: 2)),
        TimedEvent(.profileRefreshed(.init(username: "carol", followers: 1_000, following: 3, postsCount: 9, verified: true, category: "food")), at: at(minutes: 2)),
        TimedEvent(.profileUnlocked(.init(user: "u1", username: "alice", creditsSpent: 1)), at: at(minutes: 3)),
        TimedEvent(.profileUnlocked(.init(user: "u1", username: "bob", creditsSpent: 1)), at: at(minutes: 4)),
        // A repeated pair: one more event, not one more distinct unlock.
        TimedEvent(.profileUnlocked(.init(user: "u1", username: "alice", creditsSpent: 1)), at: at(minutes: 5)),
        TimedEvent(.postAnalysisCompleted(.init(username: "alice", postID: "p1", sentiment: 0.2, language: "en", category: "art", durationMs: 100)), at: at(minutes: 6)),
        TimedEvent(.postAnalysisFailed(.init(username: "alice", postID: "p2", error: "timeout", durationMs: 900)), at: at(minutes: 6)),
        TimedEvent(.postAnalysisFailed(.init(username: "bob", postID: "p3", error: "timeout", durationMs: 800)), at: at(minutes: 7)),
        // p3 recovers, p1 fails after a success: it stays analysed but is failed-unrecovered.
        TimedEvent(.postAnalysisCompleted(.init(username: "bob", postID: "p3", sentiment: -0.5, language: "en", category: "art", durationMs: 200)), at: at(minutes: 8)),
        TimedEvent(.postAnalysisFailed(.init(username: "alice", postID: "p1", error: "oom", durationMs: 50)), at: at(minutes: 9)),
        TimedEvent(.cdnJobQueued(.init(jobID: "j1", priority: .high, kind: "avatar", username: "dave")), at: at(minutes: 10)),
        TimedEvent(.cdnJobSucceeded(.init(jobID: "j1", priority: .high, kind: "avatar", durationMs: 40, bytes: 5_000)), at: at(minutes: 10)),
        TimedEvent(.cdnJobQueued(.init(jobID: "j2", priority: .low, kind: "post")), at: at(minutes: 11)),
        TimedEvent(.cdnJobFailed(.init(jobID: "j2", priority: .low, kind: "post", durationMs: 70, error: "502", attempt: 1, willRetry: true)), at: at(minutes: 11)),
        TimedEvent(.cdnJobSucceeded(.init(jobID: "j2", priority: .low, kind: "post", durationMs: 60)), at: at(minutes: 12)),
        TimedEvent(.healthSampled(.init(component: "api", status: .ok, memoryPct: 40, cpuPct: 20, diskPct: 30, latencyMs: 5)), at: at(minutes: 13)),
        TimedEvent(.healthSampled(.init(component: "ai-worker", status: .degraded, memoryPct: 80, cpuPct: 66, diskPct: 90, latencyMs: 50)), at: at(minutes: 13)),
        TimedEvent(.circuitBreakerChanged(.init(component: "database", state: .open, reason: "5 failures")), at: at(minutes: 14)),
        TimedEvent(opaque: "FutureThing", at: at(minutes: 15)),
    ]

    @Test func systemStatsFollowTheDefinitions() async throws {
        try await withViewFixture { fixture in
            try await fixture.append(Self.sample)
            let stats = try await SystemStatsProjection.rebuild(from: fixture.log).projection.makeView()

            // alice, bob, carol, dave.
            #expect(stats.profiles.total == 4)
            #expect(stats.profiles.withAIAnalysis == 2)
            #expect(stats.profiles.aiCompletionRate == 0.5)
            #expect(stats.posts.total == 3)
            #expect(stats.posts.withAIAnalysis == 2)
            #expect(stats.posts.failedUnrecovered == 2)  // p1 (last failed), p2
            #expect(stats.analyses.completed == 2)
            #expect(stats.analyses.failed == 3)
            #expect(stats.analyses.completionRate == 0.4)
            #expect(stats.searches.total == 3)
            #expect(stats.searches.cacheHits == 2)
            #expect(abs(stats.searches.cacheHitRatio - 2.0 / 3.0) < 1e-12)
            #expect(stats.unlocks.total == 3)
            #expect(stats.unlocks.distinct == 2)
            #expect(stats.unlocks.users == 1)
            #expect(stats.credits.granted == 5)
            #expect(stats.credits.spent == 3)
            #expect(stats.cdn.queued == 2)
            #expect(stats.cdn.succeeded == 2)
            #expect(stats.cdn.failed == 1)
            #expect(abs(stats.cdn.successRate - 2.0 / 3.0) < 1e-12)
            #expect(stats.cdn.byPriority["high"]?.succeeded == 1)
            #expect(stats.cdn.byPriority["low"]?.successRate == 0.5)
            #expect(stats.cdn.byPriority["critical"]?.queued == 0)
            #expect(stats.health.latest["ai-worker"]?.status == .degraded)
            #expect(stats.health.statusCounts == ["ok": 1, "degraded": 1, "down": 0])
            #expect(stats.system.status == "degraded")
            #expect(stats.system.aiSystem == "degraded")
            let empty = SystemStatsProjection().makeView()
            #expect(empty.system.status == "unknown")
            #expect(empty.analyses.completionRate == 0)
        }
    }

    @Test func unlockedProfilesAreDistinctNewestFirstAndPaginated() async throws {
        try await withViewFixture { fixture in
            try await fixture.append(Self.sample)
            var more: [TimedEvent] = []
            for i in 0..<5 {
                more.append(TimedEvent(.profileUnlocked(.init(user: "u9", username: "creator\(i)", creditsSpent: 2)), at: Self.at(minutes: 20 + Int64(i))))
            }
            try await fixture.append(more)
            let view = try await UnlockedProfilesProjection.rebuild(from: fixture.log).projection.makeView()

            let u1 = view.unlocked(user: "u1", limit: 10)
            #expect(u1.profiles.map(\.username) == ["bob", "alice"])
            #expect(u1.total == 2)
            #expect(u1.nextCursor == nil)
            let alice = try #require(u1.profiles.last)
            #expect(alice.unlockedAt == Self.at(minutes: 3))
            #expect(alice.creditsSpent == 1)
            #expect(alice.profile.postsAnalysed == 1)  // p1 completed once
            #expect(alice.profile.postsFailed == 2)  // p1 and p2 end failed
            #expect(view.profile("carol")?.followers == 1_000)
            #expect(view.profile("bob")?.postsAnalysed == 1)
            #expect(view.profile("bob")?.postsFailed == 0)

            var seen: [String] = []
            var cursor: String?
            repeat {
                let page = view.unlocked(user: "u9", limit: 2, cursor: cursor)
                #expect(page.profiles.count <= 2)
                seen += page.profiles.map(\.username)
                cursor = page.nextCursor
            } while cursor != nil
            #expect(seen == ["creator4", "creator3", "creator2", "creator1", "creator0"])
            #expect(view.unlocked(user: "nobody", limit: 5).profiles.isEmpty)
            #expect(view.hasUnlocked(user: "u1", username: "alice"))
            #expect(!view.hasUnlocked(user: "u2", username: "alice"))
        }
    }

    @Test func metricsBucketByEventTimeAndKeepTheWindow() async throws {
        try await withViewFixture { fixture in
            try await fixture.append(Self.sample)
            let metrics = try await MetricsProjection.rebuild(from: fixture.log).projection.makeView()

            let minutes = metrics.minuteBuckets
            #expect(minutes.first?.start == Self.at(minutes: 1))  // minute 0 holds only a grant, which metrics do not count
            #expect(minutes.reduce(0) { $0 + $1.searches } == 3)
            let minute1 = try #require(minutes.first { $0.start == Self.at(minutes: 1) })
            #expect(minute1.searches == 2)
            #expect(minute1.cacheHits == 1)
            let totals = metrics.totals(lastHours: 1)
            #expect(totals.unlocks == 3)
            #expect(totals.creditsSpent == 3)
            #expect(totals.analysesOK == 2)
            #expect(totals.analysesFailed == 3)
            #expect(totals.cdn(.low, .failed) == 1)
            #expect(totals.cdn(.low, .succeeded) == 1)
            #expect(totals.cdn(.high, .queued) == 1)

            let search = metrics.latency(.search)
            #expect(search.count == 3)
            #expect(search.max >= 299 && search.max <= 302)  // two significant digits
            #expect(metrics.latency(.analysis, lastHours: 1).count == 5)
            #expect(metrics.transitionCount == 1)
            #expect(metrics.gauges["ai-worker"]?.memoryPct == 80)

            let alerts = metrics.alerts()
            #expect(alerts.contains(Alert(component: "ai-worker", resource: "memory", level: .critical, value: 80, since: Self.at(minutes: 13))))
            #expect(alerts.contains(Alert(component: "ai-worker", resource: "disk", level: .emergency, value: 90, since: Self.at(minutes: 13))))
            #expect(alerts.contains(Alert(component: "ai-worker", resource: "cpu", level: .warning, value: 66, since: Self.at(minutes: 13))))
            #expect(alerts.contains { $0.component == "ai-worker" && $0.resource == "status" })
            #expect(!alerts.contains { $0.component == "api" })
            #expect(metrics.alerts(thresholds: AlertThresholds(warning: 95, critical: 97, emergency: 99)).allSatisfy { $0.resource == "status" })
        }
    }

    @Test func minuteBucketsKeepOnlyTheLastDayOfEventTime() {
        var metrics = MetricsProjection()
        let search = DomainEvent.creatorSearched(.init(user: "u", username: "a", servedFrom: .cache, durationMs: 1, found: true))
        func fold(_ at: Int64, _ position: LogPosition) {
            let proposed = search.proposed(recordedAt: at)
            metrics.apply(RecordedEvent(
                position: position, stream: search.stream, streamVersion: position - 1, type: proposed.type,
                schemaVersion: 1, recordedAt: at, actor: "", correlationID: "", causationID: "",
                idempotencyKey: nil, payload: proposed.payload
            ))
        }
        fold(Self.at(minutes: 0), 1)
        fold(Self.at(minutes: 24 * 60 + 10), 2)  // a day and 10 minutes later: minute 0 leaves the window
        fold(Self.at(minutes: 5), 3)  // older than the window: not counted in minutes
        #expect(metrics.minuteBuckets.map(\.start) == [Self.at(minutes: 24 * 60 + 10)])
        #expect(metrics.hourBuckets(last: 48).reduce(0) { $0 + $1.searches } == 3)
        #expect(metrics.latency(.search).count == 3)
    }
}
