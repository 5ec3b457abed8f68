public import Events

/// The system-stats view: what `/system/stats` and `replay stats` show. Rates are 0 when
/// their denominator is 0. Field names are the JSON names (snake_case).
public struct SystemStats: Sendable, Hashable, Codable {
    public struct Profiles: Sendable, Hashable, Codable {
        /// Distinct usernames seen in any event.
        public var total: Int = 0
        /// Distinct usernames with at least one completed analysis.
        public var withAIAnalysis: Int = 0
        public var aiCompletionRate: Double = 0
        enum CodingKeys: String, CodingKey {
            case total, withAIAnalysis = "with_ai_analysis", aiCompletionRate = "ai_completion_rate"
        }
    }

    public struct Posts: Sendable, Hashable, Codable {
        /// Distinct post ids in analysis events.
        public var total: Int = 0
        public var withAIAnalysis: Int = 0
        /// Posts whose last analysis event is a failure.
        public var failedUnrecovered: Int = 0
        enum CodingKeys: String, CodingKey {
            case total, withAIAnalysis = "with_ai_analysis", failedUnrecovered = "failed_unrecovered"
        }
    }

    public struct Analyses: Sendable, Hashable, Codable {
        public var completed: Int64 = 0
        public var failed: Int64 = 0
        /// completed / (completed + failed).
        public var completionRate: Double = 0
        enum CodingKeys: String, CodingKey { case completed, failed, completionRate = "completion_rate" }
    }

    public struct Searches: Sendable, Hashable, Codable {
        public var total: Int64 = 0
        public var cacheHits: Int64 = 0
        public var cacheHitRatio: Double = 0
        enum CodingKeys: String, CodingKey { case total, cacheHits = "cache_hits", cacheHitRatio = "cache_hit_ratio" }
    }

    public struct Unlocks: Sendable, Hashable, Codable {
        /// ProfileUnlocked events.
        public var total: Int64 = 0
        /// Distinct (user, profile) pairs.
        public var distinct: Int = 0
        /// Distinct users with at least one unlock.
        public var users: Int = 0
    }

    public struct Credits: Sendable, Hashable, Codable {
        public var granted: Int64 = 0
        public var spent: Int64 = 0
    }

    public struct CdnCounts: Sendable, Hashable, Codable {
        public var queued: Int64 = 0
        public var succeeded: Int64 = 0
        public var failed: Int64 = 0
        /// succeeded / (succeeded + failed).
        public var successRate: Double = 0
        enum CodingKeys: String, CodingKey { case queued, succeeded, failed, successRate = "success_rate" }
    }

    public struct Cdn: Sendable, Hashable, Codable {
        public var queued: Int64 = 0
        public var succeeded: Int64 = 0
        public var failed: Int64 = 0
        public var successRate: Double = 0
        /// Keyed by priority: critical, high, medium, low (all four always present).
        public var byPriority: [String: CdnCounts] = [:]
        enum CodingKeys: String, CodingKey {
            case queued, succeeded, failed, successRate = "success_rate", byPriority = "by_priority"
        }
    }

    /// The latest sample of one component, and its breaker's latest state.
    public struct ComponentHealth: Sendable, Hashable, Codable {
        public var status: HealthStatus
        public var memoryPct: Double
        public var cpuPct: Double
        public var diskPct: Double
        public var latencyMs: Double
        /// Event time of the sample, µs since 1970 UTC.
        public var sampledAt: Int64
        public var breaker: BreakerState?
        enum CodingKeys: String, CodingKey {
            case status, memoryPct = "memory_pct", cpuPct = "cpu_pct", diskPct = "disk_pct", latencyMs = "latency_ms",
                 sampledAt = "sampled_at_us", breaker
        }
    }

    public struct Health: Sendable, Hashable, Codable {
        public var latest: [String: ComponentHealth] = [:]
        /// How many components' latest sample is ok, degraded, down (all three keys present).
        public var statusCounts: [String: Int] = [:]
        enum CodingKeys: String, CodingKey { case latest, statusCounts = "status_counts" }
    }

    public struct System: Sendable, Hashable, Codable {
        /// healthy (every component ok, no open breaker), degraded, down (a component down),
        /// or unknown (no sample yet).
        public var status: String = "unknown"
        /// The AI worker's state: operational, degraded, down, or unknown.
        public var aiSystem: String = "unknown"
        enum CodingKeys: String, CodingKey { case status, aiSystem = "ai_system" }
    }

    public var profiles = Profiles()
    public var posts = Posts()
    public var analyses = Analyses()
    public var searches = Searches()
    public var unlocks = Unlocks()
    public var credits = Credits()
    public var cdn = Cdn()
    public var health = Health()
    public var system = System()

    public init() {}

    /// The component whose latest health decides `system.ai_system`.
    public static let aiComponent = "ai-worker"
}

func ratio(_ part: some BinaryInteger, _ whole: some BinaryInteger) -> Double {
    whole == 0 ? 0 : Double(part) / Double(whole)
}
