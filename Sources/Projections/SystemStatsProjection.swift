public import EventLog
public import Events

/// Folds the log into `SystemStats`. The fold keeps the distinct sets the view counts, keyed
/// on dense ids (`InternTable`): usernames, unlocking users and post ids are hashed from the
/// payload's bytes, sets are bit sets and id arrays; the published view is the small
/// computed `SystemStats`, so publishing never copies them.
public struct SystemStatsProjection: PayloadFieldsProjection {
    public static let name = "system-stats"
    /// 2: the state keys on interned ids (snapshot sections changed).
    public static let version = 2

    /// Per post: ever completed (bit 0), last analysis failed (bit 1).
    struct PostOutcome: OptionSet, Hashable {
        var rawValue: UInt8
        static let completed = PostOutcome(rawValue: 1)
        static let lastFailed = PostOutcome(rawValue: 2)
    }

    struct CdnTally: Hashable {
        var queued: Int64 = 0
        var succeeded: Int64 = 0
        var failed: Int64 = 0
    }

    /// Every username seen in any event.
    var usernames = InternTable()
    var analysedUsernames = IDBitSet()
    /// Every post id in an analysis event; `postOutcomes[id]` is its outcome.
    var postIDs = InternTable()
    var postOutcomes: [UInt8] = []
    var postsWithAnalysis = 0
    var postsFailedUnrecovered = 0
    var analysesCompleted: Int64 = 0
    var analysesFailed: Int64 = 0
    var searches: Int64 = 0
    var cacheHits: Int64 = 0
    var unlockEvents: Int64 = 0
    /// Users with at least one unlock.
    var users = InternTable()
    /// (user id, username id) of every unlock.
    var unlockPairs = IDPairSet()
    var creditsGranted: Int64 = 0
    var creditsSpent: Int64 = 0
    /// Indexed like `CdnPriority.allCases`.
    var cdn: [CdnTally] = Array(repeating: CdnTally(), count: CdnPriority.allCases.count)
    var health: [String: SystemStats.ComponentHealth] = [:]
    var breakers: [String: BreakerState] = [:]

    public init() {}

    @inline(__always)
    public mutating func fold(_ fields: PayloadFields, at stamp: EventStamp) {
        switch fields {
        case .creditsGranted(_, let amount, _):
            creditsGranted &+= amount
        case .creatorSearched(let username, let servedFrom, _):
            searches += 1
            if servedFrom == .cache { cacheHits += 1 }
            _ = usernames.intern(username)
        case .profileRefreshed(let username, _, _, _, _, _):
            _ = usernames.intern(username)
        case .profileUnlocked(let user, let username, let spent):
            unlocked(user: users.intern(user), username: usernames.intern(username), spent: spent)
        case .postAnalysisCompleted(let username, let post, _):
            analysed(username: usernames.intern(username), post: postIDs.intern(post), failed: false)
        case .postAnalysisFailed(let username, let post, _):
            analysed(username: usernames.intern(username), post: postIDs.intern(post), failed: true)
        case .cdnJobQueued(let priority, let username):
            cdn[priority.index].queued += 1
            if let username { _ = usernames.intern(username) }
        case .cdnJobSucceeded(let priority, _):
            cdn[priority.index].succeeded += 1
        case .cdnJobFailed(let priority, _):
            cdn[priority.index].failed += 1
        case .decoded(let domain):
            apply(domain, at: stamp)
        }
    }

    public mutating func apply(_ domain: DomainEvent, of event: RecordedEvent) { apply(domain, at: event.stamp) }

    mutating func apply(_ domain: DomainEvent, at stamp: EventStamp) {
        switch domain {
        case .creditsGranted(let e):
            creditsGranted &+= e.amount
        case .creatorSearched(let e):
            searches += 1
            if e.servedFrom == .cache { cacheHits += 1 }
            _ = usernames.intern(e.username)
        case .profileRefreshed(let e):
            _ = usernames.intern(e.username)
        case .profileUnlocked(let e):
            unlocked(user: users.intern(e.user), username: usernames.intern(e.username), spent: e.creditsSpent)
        case .postAnalysisCompleted(let e):
            analysed(username: usernames.intern(e.username), post: postIDs.intern(e.postID), failed: false)
        case .postAnalysisFailed(let e):
            analysed(username: usernames.intern(e.username), post: postIDs.intern(e.postID), failed: true)
        case .cdnJobQueued(let e):
            cdn[e.priority.index].queued += 1
            if let username = e.username { _ = usernames.intern(username) }
        case .cdnJobSucceeded(let e):
            cdn[e.priority.index].succeeded += 1
        case .cdnJobFailed(let e):
            cdn[e.priority.index].failed += 1
        case .healthSampled(let e):
            health[e.component] = SystemStats.ComponentHealth(
                status: e.status, memoryPct: e.memoryPct, cpuPct: e.cpuPct, diskPct: e.diskPct, latencyMs: e.latencyMs,
                sampledAt: stamp.recordedAt, breaker: breakers[e.component]
            )
        case .circuitBreakerChanged(let e):
            breakers[e.component] = e.state
            health[e.component]?.breaker = e.state
        }
    }

    @inline(__always)
    private mutating func unlocked(user: UInt32, username: UInt32, spent: Int64) {
        unlockEvents += 1
        creditsSpent &+= spent
        unlockPairs.insert(user, username)
    }

    @inline(__always)
    private mutating func analysed(username: UInt32, post: UInt32, failed: Bool) {
        if failed { analysesFailed += 1 } else {
            analysesCompleted += 1
            analysedUsernames.insert(username)
        }
        if Int(post) >= postOutcomes.count { postOutcomes.append(0) }
        let before = PostOutcome(rawValue: postOutcomes[Int(post)])
        var after = before
        if !failed { after.insert(.completed) }
        if failed { after.insert(.lastFailed) } else { after.remove(.lastFailed) }
        postOutcomes[Int(post)] = after.rawValue
        if after.contains(.completed) && !before.contains(.completed) { postsWithAnalysis += 1 }
        switch (before.contains(.lastFailed), after.contains(.lastFailed)) {
        case (false, true): postsFailedUnrecovered += 1
        case (true, false): postsFailedUnrecovered -= 1
        default: break
        }
    }

    public func makeView() -> SystemStats {
        makeView(sets: SetCounts(usernames: usernames.count, analysedUsernames: analysedUsernames.count, posts: postIDs.count,
                                 users: users.count, unlockPairs: unlockPairs.count))
    }

    /// The sizes of the distinct sets the view counts.
    struct SetCounts {
        var usernames: Int
        var analysedUsernames: Int
        var posts: Int
        var users: Int
        var unlockPairs: Int
    }

    /// The view with the distinct sets' sizes given (`LateOverlay` adds its own to the state's).
    func makeView(sets: SetCounts) -> SystemStats {
        var s = SystemStats()
        s.profiles.total = sets.usernames
        s.profiles.withAIAnalysis = sets.analysedUsernames
        s.profiles.aiCompletionRate = ratio(sets.analysedUsernames, sets.usernames)
        s.posts = SystemStats.Posts(total: sets.posts, withAIAnalysis: postsWithAnalysis, failedUnrecovered: postsFailedUnrecovered)
        s.analyses = SystemStats.Analyses(
            completed: analysesCompleted, failed: analysesFailed,
            completionRate: ratio(analysesCompleted, analysesCompleted + analysesFailed)
        )
        s.searches = SystemStats.Searches(total: searches, cacheHits: cacheHits, cacheHitRatio: ratio(cacheHits, searches))
        s.unlocks = SystemStats.Unlocks(total: unlockEvents, distinct: sets.unlockPairs, users: sets.users)
        s.credits = SystemStats.Credits(granted: creditsGranted, spent: creditsSpent)
        var total = CdnTally()
        for (priority, tally) in zip(CdnPriority.allCases, cdn) {
            s.cdn.byPriority[priority.rawValue] = SystemStats.CdnCounts(
                queued: tally.queued, succeeded: tally.succeeded, failed: tally.failed,
                successRate: ratio(tally.succeeded, tally.succeeded + tally.failed)
            )
            total.queued += tally.queued
            total.succeeded += tally.succeeded
            total.failed += tally.failed
        }
        s.cdn.queued = total.queued
        s.cdn.succeeded = total.succeeded
        s.cdn.failed = total.failed
        s.cdn.successRate = ratio(total.succeeded, total.succeeded + total.failed)
        s.health.latest = health
        var counts = Dictionary(uniqueKeysWithValues: HealthStatus.allCases.map { ($0.rawValue, 0) })
        for component in health.values { counts[component.status.rawValue, default: 0] += 1 }
        s.health.statusCounts = counts
        s.system = Self.systemStatus(health)
        return s
    }

    static func systemStatus(_ health: [String: SystemStats.ComponentHealth]) -> SystemStats.System {
        var system = SystemStats.System()
        if !health.isEmpty {
            let statuses = health.values.map(\.status)
            let breakerOpen = health.values.contains { $0.breaker == .open || $0.breaker == .halfOpen }
            system.status = statuses.contains(.down) ? "down" : (statuses.contains(.degraded) || breakerOpen) ? "degraded" : "healthy"
        }
        if let ai = health[SystemStats.aiComponent] {
            system.aiSystem = switch ai.status {
            case .ok: ai.breaker == .open ? "degraded" : "operational"
            case .degraded: "degraded"
            case .down: "down"
            }
        }
        return system
    }
}

extension CdnPriority {
    /// Position in `allCases`, for per-priority arrays.
    var index: Int {
        switch self {
        case .critical: 0
        case .high: 1
        case .medium: 2
        case .low: 3
        }
    }
}
