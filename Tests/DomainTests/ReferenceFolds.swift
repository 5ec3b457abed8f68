import EventLog
import Events
@testable import Projections

// The views' folds as they were before they keyed on interned ids and read payload bytes
// (String keys, one DomainEvent per event), kept word for word as the oracle that the
// compact folds must equal on random event sequences (FoldOracleTests).

/// A reference unlock as the old view returned it.
struct ReferenceUnlocked: Hashable {
    var username: String
    var unlockedAt: Int64
    var creditsSpent: Int64
    var position: LogPosition
    var profile: ProfileSummary

    init(username: String, unlockedAt: Int64, creditsSpent: Int64, position: LogPosition, profile: ProfileSummary) {
        (self.username, self.unlockedAt, self.creditsSpent, self.position, self.profile) = (username, unlockedAt, creditsSpent, position, profile)
    }

    init(_ p: UnlockedProfile) {
        self.init(username: p.username, unlockedAt: p.unlockedAt, creditsSpent: p.creditsSpent, position: p.position, profile: p.profile)
    }
}

func referenceRatio(_ part: some BinaryInteger, _ whole: some BinaryInteger) -> Double {
    whole == 0 ? 0 : Double(part) / Double(whole)
}

func referenceIndex(_ priority: CdnPriority) -> Int { CdnPriority.allCases.firstIndex(of: priority)! }

func referencePartitioningIndex<T>(_ array: [T], where belongs: (T) -> Bool) -> Int {
    var low = 0
    var high = array.count
    while low < high {
        let mid = (low + high) / 2
        if belongs(array[mid]) { high = mid } else { low = mid + 1 }
    }
    return low
}

struct ReferenceSystemStats {

    /// Per post: ever completed (bit 0), last analysis failed (bit 1).
    struct PostOutcome: OptionSet, Hashable {
        var rawValue: UInt8
        static let completed = PostOutcome(rawValue: 1)
        static let lastFailed = PostOutcome(rawValue: 2)
    }

    struct UnlockPair: Hashable {
        var user: String
        var username: String
    }

    struct CdnTally: Hashable {
        var queued: Int64 = 0
        var succeeded: Int64 = 0
        var failed: Int64 = 0
    }

    var usernames: Set<String> = []
    var analysedUsernames: Set<String> = []
    var posts: [String: PostOutcome] = [:]
    var postsWithAnalysis = 0
    var postsFailedUnrecovered = 0
    var analysesCompleted: Int64 = 0
    var analysesFailed: Int64 = 0
    var searches: Int64 = 0
    var cacheHits: Int64 = 0
    var unlockEvents: Int64 = 0
    var unlockPairs: Set<UnlockPair> = []
    var unlockUsers: Set<String> = []
    var creditsGranted: Int64 = 0
    var creditsSpent: Int64 = 0
    /// Indexed like `CdnPriority.allCases`.
    var cdn: [CdnTally] = Array(repeating: CdnTally(), count: CdnPriority.allCases.count)
    var health: [String: SystemStats.ComponentHealth] = [:]
    var breakers: [String: BreakerState] = [:]

    init() {}

    mutating func apply(_ domain: DomainEvent, recordedAt: Int64) {
        switch domain {
        case .creditsGranted(let e):
            creditsGranted &+= e.amount
        case .creatorSearched(let e):
            searches += 1
            if e.servedFrom == .cache { cacheHits += 1 }
            usernames.insert(e.username)
        case .profileRefreshed(let e):
            usernames.insert(e.username)
        case .profileUnlocked(let e):
            unlockEvents += 1
            creditsSpent &+= e.creditsSpent
            usernames.insert(e.username)
            unlockPairs.insert(UnlockPair(user: e.user, username: e.username))
            unlockUsers.insert(e.user)
        case .postAnalysisCompleted(let e):
            analysesCompleted += 1
            usernames.insert(e.username)
            analysedUsernames.insert(e.username)
            record(post: e.postID, failed: false)
        case .postAnalysisFailed(let e):
            analysesFailed += 1
            usernames.insert(e.username)
            record(post: e.postID, failed: true)
        case .cdnJobQueued(let e):
            cdn[referenceIndex(e.priority)].queued += 1
            if let username = e.username { usernames.insert(username) }
        case .cdnJobSucceeded(let e):
            cdn[referenceIndex(e.priority)].succeeded += 1
        case .cdnJobFailed(let e):
            cdn[referenceIndex(e.priority)].failed += 1
        case .healthSampled(let e):
            health[e.component] = SystemStats.ComponentHealth(
                status: e.status, memoryPct: e.memoryPct, cpuPct: e.cpuPct, diskPct: e.diskPct, latencyMs: e.latencyMs,
                sampledAt: recordedAt, breaker: breakers[e.component]
            )
        case .circuitBreakerChanged(let e):
            breakers[e.component] = e.state
            health[e.component]?.breaker = e.state
        }
    }

    private mutating func record(post: String, failed: Bool) {
        let before = posts[post] ?? []
        var after = before
        if !failed { after.insert(.completed) }
        if failed { after.insert(.lastFailed) } else { after.remove(.lastFailed) }
        guard after != before || posts[post] == nil else { return }
        posts[post] = after
        if after.contains(.completed) && !before.contains(.completed) { postsWithAnalysis += 1 }
        switch (before.contains(.lastFailed), after.contains(.lastFailed)) {
        case (false, true): postsFailedUnrecovered += 1
        case (true, false): postsFailedUnrecovered -= 1
        default: break
        }
    }

    func makeView() -> SystemStats {
        var s = SystemStats()
        s.profiles.total = usernames.count
        s.profiles.withAIAnalysis = analysedUsernames.count
        s.profiles.aiCompletionRate = referenceRatio(analysedUsernames.count, usernames.count)
        s.posts = SystemStats.Posts(total: posts.count, withAIAnalysis: postsWithAnalysis, failedUnrecovered: postsFailedUnrecovered)
        s.analyses = SystemStats.Analyses(
            completed: analysesCompleted, failed: analysesFailed,
            completionRate: referenceRatio(analysesCompleted, analysesCompleted + analysesFailed)
        )
        s.searches = SystemStats.Searches(total: searches, cacheHits: cacheHits, cacheHitRatio: referenceRatio(cacheHits, searches))
        s.unlocks = SystemStats.Unlocks(total: unlockEvents, distinct: unlockPairs.count, users: unlockUsers.count)
        s.credits = SystemStats.Credits(granted: creditsGranted, spent: creditsSpent)
        var total = CdnTally()
        for (priority, tally) in zip(CdnPriority.allCases, cdn) {
            s.cdn.byPriority[priority.rawValue] = SystemStats.CdnCounts(
                queued: tally.queued, succeeded: tally.succeeded, failed: tally.failed,
                successRate: referenceRatio(tally.succeeded, tally.succeeded + tally.failed)
            )
            total.queued += tally.queued
            total.succeeded += tally.succeeded
            total.failed += tally.failed
        }
        s.cdn.queued = total.queued
        s.cdn.succeeded = total.succeeded
        s.cdn.failed = total.failed
        s.cdn.successRate = referenceRatio(total.succeeded, total.succeeded + total.failed)
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


struct ReferenceUnlockedView {
    struct Unlock: Sendable, Hashable {
        var username: String
        var unlockedAt: Int64
        var creditsSpent: Int64
        var position: LogPosition
    }

    /// Per user, unlocks in log order (oldest first).
    var users: Dictionary<String, [Unlock]> = [:]
    var profiles: Dictionary<String, ProfileSummary> = [:]

    struct Page: Sendable, Hashable {
        var profiles: [ReferenceUnlocked]
        /// Pass back as `cursor` for the next page; nil on the last page.
        var nextCursor: String?
        /// How many profiles the user has unlocked in all.
        var total: Int
    }

    /// One page of `user`'s unlocked profiles, newest first. `cursor` is a previous page's
    /// `nextCursor`; a cursor that is not one gives the first page.
    func unlocked(user: String, limit: Int, cursor: String? = nil) -> Page {
        let unlocks = users[user] ?? []
        var end = unlocks.count
        if let cursor, let before = LogPosition(cursor) {
            end = referencePartitioningIndex(unlocks) { $0.position >= before }
        }
        let start = max(0, end - max(0, limit))
        let page = unlocks[start..<end].reversed().map { unlock in
            ReferenceUnlocked(
                username: unlock.username, unlockedAt: unlock.unlockedAt, creditsSpent: unlock.creditsSpent,
                position: unlock.position, profile: profiles[unlock.username] ?? ProfileSummary()
            )
        }
        return Page(profiles: page, nextCursor: start > 0 ? page.last.map { String($0.position) } : nil, total: unlocks.count)
    }

    func hasUnlocked(user: String, username: String) -> Bool {
        users[user]?.contains { $0.username == username } ?? false
    }

    func profile(_ username: String) -> ProfileSummary? { profiles[username] }
}

/// Folds the log into `UnlockedProfilesView`.
struct ReferenceUnlockedProfiles {

    var users: Dictionary<String, [ReferenceUnlockedView.Unlock]> = [:]
    var unlockedPairs: Set<String> = []
    var profiles: Dictionary<String, ProfileSummary> = [:]
    /// Per post id: (username, ever completed, last failed).
    var posts: [String: PostState] = [:]

    struct PostState: Hashable {
        var username: String
        var completed: Bool
        var lastFailed: Bool
    }

    init() {}

    mutating func apply(_ domain: DomainEvent, position: LogPosition, recordedAt: Int64) {
        switch domain {
        case .profileUnlocked(let e):
            // The first unlock of a pair counts; a repeat (possible in imported logs) does not.
            guard unlockedPairs.insert(e.user + "\u{1F}" + e.username).inserted else { return }
            users[e.user, default: []].append(.init(username: e.username, unlockedAt: recordedAt, creditsSpent: e.creditsSpent, position: position))
        case .profileRefreshed(let e):
            var summary = profiles[e.username] ?? ProfileSummary()
            summary.followers = e.followers
            summary.following = e.following
            summary.postsCount = e.postsCount
            summary.verified = e.verified
            summary.category = e.category
            profiles[e.username] = summary
        case .postAnalysisCompleted(let e):
            record(post: e.postID, username: e.username, failed: false)
        case .postAnalysisFailed(let e):
            record(post: e.postID, username: e.username, failed: true)
        default:
            return
        }
    }

    private mutating func record(post: String, username: String, failed: Bool) {
        let before = posts[post]
        let after = PostState(username: before?.username ?? username, completed: (before?.completed ?? false) || !failed, lastFailed: failed)
        guard after != before else { return }
        posts[post] = after
        var summary = profiles[after.username] ?? ProfileSummary()
        if after.completed && !(before?.completed ?? false) { summary.postsAnalysed += 1 }
        if before?.lastFailed ?? false { summary.postsFailed -= 1 }
        if after.lastFailed { summary.postsFailed += 1 }
        profiles[after.username] = summary
    }

    func makeView() -> ReferenceUnlockedView {
        ReferenceUnlockedView(users: users, profiles: profiles)
    }
}

