import EventLog
import Events
import Projections

/// Response bodies of the monitoring routes (`TallyAPI+Monitoring.swift`).

struct ComponentStatusCounts: Encodable {
    var ok = 0
    var degraded = 0
    var down = 0
    var stale = 0

    init(_ components: [String: ComponentHealthBody]) {
        for component in components.values {
            switch component.status {
            case .ok: ok += 1
            case .degraded: degraded += 1
            case .down: down += 1
            case .stale: stale += 1
            }
        }
    }
}

struct AlertCounts: Encodable {
    var total: Int
    var warning: Int
    var critical: Int
    var emergency: Int
    var alerts: [Alert]

    init(_ alerts: [Alert]) {
        self.alerts = alerts
        total = alerts.count
        warning = alerts.count { $0.level == .warning }
        critical = alerts.count { $0.level == .critical }
        emergency = alerts.count { $0.level == .emergency }
    }
}

struct ProjectionStateBody: Encodable {
    var name: String
    var state: String
    var position: LogPosition

    init(name: String, state: ProjectionState, position: LogPosition) {
        self.name = name
        self.state = state.rawValue
        self.position = position
    }
}

struct ServerHealthBody: Encodable {
    var breaker: BreakerState
    /// The head as the views last saw it; the store itself is not asked.
    var knownHead: LogPosition
    var storeKind: String
    enum CodingKeys: String, CodingKey { case breaker, knownHead = "known_head", storeKind = "store_kind" }
}

struct ComprehensiveHealthBody: Encodable {
    var status: String
    var aiSystem: String
    var components: [String: ComponentHealthBody]
    var statusCounts: ComponentStatusCounts
    var server: ServerHealthBody
    var projections: [ProjectionStateBody]
    var alerts: AlertCounts
    var staleAfterSeconds: Int64
    var checkedAt: String
    enum CodingKeys: String, CodingKey {
        case status, aiSystem = "ai_system", components, statusCounts = "status_counts", server, projections, alerts,
             staleAfterSeconds = "stale_after_seconds", checkedAt = "checked_at"
    }
}

/// Rates over a window's counts; 0 when their denominator is 0.
struct PerformanceSummary: Encodable {
    var searches: Int64
    var cacheHits: Int64
    var cacheHitRatio: Double
    var unlocks: Int64
    var creditsSpent: Int64
    var analysesCompleted: Int64
    var analysesFailed: Int64
    var analysisFailureRate: Double
    var cdn: CdnWindow

    init(_ totals: MetricsBucket) {
        searches = totals.searches
        cacheHits = totals.cacheHits
        cacheHitRatio = Self.rate(totals.cacheHits, totals.searches)
        unlocks = totals.unlocks
        creditsSpent = totals.creditsSpent
        analysesCompleted = totals.analysesOK
        analysesFailed = totals.analysesFailed
        analysisFailureRate = Self.rate(totals.analysesFailed, totals.analysesOK + totals.analysesFailed)
        cdn = CdnWindow(totals)
    }

    static func rate(_ part: Int64, _ whole: Int64) -> Double { whole > 0 ? Double(part) / Double(whole) : 0 }

    enum CodingKeys: String, CodingKey {
        case searches, cacheHits = "cache_hits", cacheHitRatio = "cache_hit_ratio", unlocks, creditsSpent = "credits_spent",
             analysesCompleted = "analyses_completed", analysesFailed = "analyses_failed", analysisFailureRate = "analysis_failure_rate", cdn
    }
}

struct PerformanceReportBody: Encodable {
    var hours: Int
    /// Start of the oldest hour bucket and the newest event time: the window in event time.
    var from: String?
    var to: String?
    var summary: PerformanceSummary
    var latencyMs: [String: LatencySummary]
    var buckets: [MetricsBucket]
    var breakerTransitions: Int
    enum CodingKeys: String, CodingKey {
        case hours, from, to, summary, latencyMs = "latency_ms", buckets, breakerTransitions = "breaker_transitions"
    }
}

struct HealthSamplingBody: Encodable {
    var components: Int
    var statusCounts: ComponentStatusCounts
    var newestSampleAt: String?
    var staleAfterSeconds: Int64
    enum CodingKeys: String, CodingKey {
        case components, statusCounts = "status_counts", newestSampleAt = "newest_sample_at", staleAfterSeconds = "stale_after_seconds"
    }
}

struct MonitoringStatusBody: Encodable {
    var status: String
    var healthSampling: HealthSamplingBody
    var alerts: AlertCounts
    var breaker: BreakerState
    var breakerTransitions: Int64
    var projections: [ProjectionStateBody]
    enum CodingKeys: String, CodingKey {
        case status, healthSampling = "health_sampling", alerts, breaker, breakerTransitions = "breaker_transitions", projections
    }
}

struct TransitionBody: Encodable {
    var component: String
    var state: BreakerState
    var reason: String
    var at: String
    var atUs: Int64
    var position: LogPosition

    init(_ t: BreakerTransition) {
        component = t.component
        state = t.state
        reason = t.reason
        at = EventTime.iso8601(micros: t.at)
        atUs = t.at
        position = t.position
    }

    enum CodingKeys: String, CodingKey { case component, state, reason, at, atUs = "at_us", position }
}

struct RecoveryHistoryBody: Encodable {
    /// Newest first.
    var transitions: [TransitionBody]
    /// Every transition the log holds.
    var total: Int64
    /// How many of the newest the view keeps.
    var kept: Int
    /// Each component's latest state among the kept transitions.
    var current: [String: BreakerState]
}

/// CDN jobs of a window of event time, over all priorities.
struct CdnWindow: Encodable {
    var queued: Int64 = 0
    var succeeded: Int64 = 0
    var failed: Int64 = 0
    var successRate: Double = 0

    init(_ bucket: MetricsBucket) {
        for priority in CdnPriority.allCases {
            queued += bucket.cdn(priority, .queued)
            succeeded += bucket.cdn(priority, .succeeded)
            failed += bucket.cdn(priority, .failed)
        }
        successRate = PerformanceSummary.rate(succeeded, succeeded + failed)
    }

    /// One bucket holding the counts of `buckets`.
    static func sum(_ buckets: [MetricsBucket], start: Int64) -> MetricsBucket {
        var total = MetricsBucket(start: start)
        for bucket in buckets { total.add(bucket) }
        return total
    }

    enum CodingKeys: String, CodingKey { case queued, succeeded, failed, successRate = "success_rate" }
}

struct CdnHealthBody: Encodable {
    /// The component whose health samples stand for the CDN worker.
    static let workerComponent = "cdn-worker"
    /// Success rates over the last hour at or above which the CDN is healthy, or degraded.
    static let healthyRate = 0.95
    static let degradedRate = 0.5

    var status: String
    var lastHour: CdnWindow
    var pending: Int64
    var latencyMs: LatencySummary
    var worker: ComponentHealthBody?

    /// From the last hour's outcomes: `unknown` without any finished job, `healthy` at a
    /// success rate ≥ 95 %, `degraded` ≥ 50 %, else `down`. A worker whose own sample says
    /// down makes it down; a degraded or stale one makes a healthy CDN degraded.
    static func status(_ window: CdnWindow, worker: ComponentStatus?) -> String {
        var status = window.succeeded + window.failed == 0 ? "unknown"
            : window.successRate >= healthyRate ? "healthy" : window.successRate >= degradedRate ? "degraded" : "down"
        switch worker {
        case .down?: status = "down"
        case .degraded?, .stale?: if status == "healthy" || status == "unknown" { status = "degraded" }
        case .ok?, nil: break
        }
        return status
    }

    /// Jobs queued and not finished, over all priorities (as `/cdn/queue/status` counts).
    static func pending(_ cdn: SystemStats.Cdn) -> Int64 {
        cdn.byPriority.values.reduce(0) { $0 + max(0, $1.queued - $1.succeeded - $1.failed) }
    }

    enum CodingKeys: String, CodingKey { case status, lastHour = "last_hour", pending, latencyMs = "latency_ms", worker }
}

struct CdnStatisticsBody: Encodable {
    var allTime: SystemStats.Cdn
    var pending: Int64
    var last24h: CdnWindow
    var latencyMs: LatencySummary
    enum CodingKeys: String, CodingKey { case allTime = "all_time", pending, last24h = "last_24h", latencyMs = "latency_ms" }
}
