import EventLog
import Events
import Projections
import Synchronization
import Testing

/// Determinism of the three views on random event sequences: the live view of a runner
/// that tails appends equals a full rebuild, and so does a runner restarted from its
/// snapshot after more appends and a restart of the log (the unlocked-profiles view's
/// equality covers its wallets: balances, totals and recent movements).
@Suite(.timeLimit(.minutes(5))) struct ProjectionPropertyTests {
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

    /// The views rebuilt from the log equal a reference computed directly from the generated
    /// events by plain, separate code (no projection type involved), so a wrong fold cannot
    /// agree with itself.
    @Test(arguments: seeds) func rebuildEqualsAReferenceComputedFromTheEvents(seed: UInt64) async throws {
        try await withViewFixture { fixture in
            let generated = RandomEvents.make(count: 300, seed: seed)
            try await fixture.append(generated, chunk: 17)
            let reference = ReferenceViews(generated.compactMap(\.event))
            let stats = try await SystemStatsProjection.rebuild(from: fixture.log).projection.makeView()
            #expect(ReferenceViews.Counts(stats) == reference.counts, "seed \(seed)")
            let unlocked = try await UnlockedProfilesProjection.rebuild(from: fixture.log).projection.makeView()
            for (user, usernames) in reference.unlockedByUser {
                let page = unlocked.unlocked(user: user, limit: 1_000)
                #expect(page.total == usernames.count, "seed \(seed), \(user)")
                #expect(Set(page.profiles.map(\.username)) == usernames, "seed \(seed), \(user)")
            }
            #expect(!reference.walletByUser.isEmpty, "seed \(seed): the events grant and spend credits")
            for (user, expected) in reference.walletByUser {
                let wallet = unlocked.wallet(user: user)
                #expect(wallet.balance == expected.balance && wallet.totalGranted == expected.granted && wallet.totalSpent == expected.spent,
                        "seed \(seed), \(user)")
                let movements = wallet.recent.reversed().map { "\($0.kind.rawValue) \($0.amount) \($0.detail)" }
                #expect(movements == Array(expected.movements.suffix(20)), "seed \(seed), \(user)")
                #expect(wallet.recent.first.map { $0.balanceAfter == expected.balance } ?? true, "seed \(seed), \(user)")
                #expect(wallet.unlocked == (reference.unlockedByUser[user]?.count ?? 0), "seed \(seed), \(user)")
            }
            for (username, analysed) in reference.postsAnalysedByProfile {
                #expect(unlocked.profile(username)?.postsAnalysed == analysed, "seed \(seed), \(username)")
            }
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

/// The views' definitions computed the plain way from a list of events: sets and counts
/// over the whole list, in the terms of the definitions in ViewDefinitionTests.
struct ReferenceViews {
    struct Counts: Equatable {
        var profiles = 0, profilesAnalysed = 0, posts = 0, postsAnalysed = 0, postsFailedUnrecovered = 0
        var analysesCompleted: Int64 = 0, analysesFailed: Int64 = 0, searches: Int64 = 0, cacheHits: Int64 = 0
        var unlocks: Int64 = 0, distinctUnlocks = 0, unlockingUsers = 0, granted: Int64 = 0, spent: Int64 = 0
        var cdnQueued: Int64 = 0, cdnSucceeded: Int64 = 0, cdnFailed: Int64 = 0

        init() {}

        init(_ s: SystemStats) {
            (profiles, profilesAnalysed) = (s.profiles.total, s.profiles.withAIAnalysis)
            (posts, postsAnalysed, postsFailedUnrecovered) = (s.posts.total, s.posts.withAIAnalysis, s.posts.failedUnrecovered)
            (analysesCompleted, analysesFailed) = (s.analyses.completed, s.analyses.failed)
            (searches, cacheHits) = (s.searches.total, s.searches.cacheHits)
            (unlocks, distinctUnlocks, unlockingUsers) = (s.unlocks.total, s.unlocks.distinct, s.unlocks.users)
            (granted, spent) = (s.credits.granted, s.credits.spent)
            (cdnQueued, cdnSucceeded, cdnFailed) = (s.cdn.queued, s.cdn.succeeded, s.cdn.failed)
        }
    }

    var counts = Counts()
    var unlockedByUser: [String: Set<String>] = [:]
    /// Per profile: its posts with at least one completed analysis.
    var postsAnalysedByProfile: [String: Int] = [:]
    /// Per user: Σ grants, Σ credits spent (every unlock), and every grant and unlock in
    /// order as (kind, amount, reason or username).
    var walletByUser: [String: ReferenceWallet] = [:]

    struct ReferenceWallet: Equatable {
        var granted: Int64 = 0
        var spent: Int64 = 0
        var movements: [String] = []
        var balance: Int64 { granted - spent }
    }

    init(_ events: [DomainEvent]) {
        var profiles: Set<String> = []
        var analysedProfiles: Set<String> = []
        /// Each post's analyses in order: true = completed.
        var outcomes: [String: [Bool]] = [:]
        var postOwner: [String: String] = [:]
        var pairs: Set<[String]> = []
        for event in events {
            switch event {
            case .creditsGranted(let e):
                counts.granted += e.amount
                walletByUser[e.user, default: ReferenceWallet()].granted += e.amount
                walletByUser[e.user, default: ReferenceWallet()].movements.append("grant \(e.amount) \(e.reason)")
            case .creatorSearched(let e):
                counts.searches += 1
                if e.servedFrom == .cache { counts.cacheHits += 1 }
                profiles.insert(e.username)
            case .profileRefreshed(let e): profiles.insert(e.username)
            case .profileUnlocked(let e):
                counts.unlocks += 1
                counts.spent += e.creditsSpent
                profiles.insert(e.username)
                pairs.insert([e.user, e.username])
                unlockedByUser[e.user, default: []].insert(e.username)
                walletByUser[e.user, default: ReferenceWallet()].spent += e.creditsSpent
                walletByUser[e.user, default: ReferenceWallet()].movements.append("unlock \(e.creditsSpent) \(e.username)")
            case .postAnalysisCompleted(let e):
                counts.analysesCompleted += 1
                profiles.insert(e.username)
                analysedProfiles.insert(e.username)
                outcomes[e.postID, default: []].append(true)
                if postOwner[e.postID] == nil { postOwner[e.postID] = e.username }
            case .postAnalysisFailed(let e):
                counts.analysesFailed += 1
                profiles.insert(e.username)
                outcomes[e.postID, default: []].append(false)
                if postOwner[e.postID] == nil { postOwner[e.postID] = e.username }
            case .cdnJobQueued(let e):
                counts.cdnQueued += 1
                if let username = e.username { profiles.insert(username) }
            case .cdnJobSucceeded: counts.cdnSucceeded += 1
            case .cdnJobFailed: counts.cdnFailed += 1
            case .healthSampled, .circuitBreakerChanged: break
            }
        }
        counts.profiles = profiles.count
        counts.profilesAnalysed = analysedProfiles.count
        counts.posts = outcomes.count
        counts.postsAnalysed = outcomes.values.filter { $0.contains(true) }.count
        counts.postsFailedUnrecovered = outcomes.values.filter { $0.last == false }.count
        counts.distinctUnlocks = pairs.count
        counts.unlockingUsers = Set(pairs.map { $0[0] }).count
        for (post, results) in outcomes where results.contains(true) {
            postsAnalysedByProfile[postOwner[post]!, default: 0] += 1
        }
    }
}
