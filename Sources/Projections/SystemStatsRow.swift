public import Events

/// The stats view as one interval row of the rows file (`IntervalRowsFile`): every field as
/// the view holds it, derived ones too, so a row read back equals the row written.
extension SystemStats {
    /// Hourly rows for the stats series, a quarter of a year of them (2,208, about 3 MB in
    /// memory and 0.3 MB on disk): `?every=` a whole number of hours, on hour boundaries,
    /// within the quarter, costs lookups; anything else is folded from a checkpoint.
    public static let hourlyRows = IntervalRowsOptions<SystemStats>(
        every: 3_600_000_000, kept: 24 * 92, write: { stats, w in stats.write(to: &w) }, read: { r in try SystemStats(row: &r) }
    )

    func write(to w: inout SnapshotWriter) {
        for value in [profiles.total, profiles.withAIAnalysis, posts.total, posts.withAIAnalysis, posts.failedUnrecovered,
                      unlocks.distinct, unlocks.users] {
            w.signed(value)
        }
        for value in [analyses.completed, analyses.failed, searches.total, searches.cacheHits, unlocks.total, credits.granted,
                      credits.spent, cdn.queued, cdn.succeeded, cdn.failed] {
            w.signed(value)
        }
        for value in [profiles.aiCompletionRate, analyses.completionRate, searches.cacheHitRatio, cdn.successRate] { w.double(value) }
        w.unsigned(UInt64(cdn.byPriority.count))
        for (priority, counts) in cdn.byPriority.sorted(by: { $0.key < $1.key }) {
            w.string(priority)
            for value in [counts.queued, counts.succeeded, counts.failed] { w.signed(value) }
            w.double(counts.successRate)
        }
        w.unsigned(UInt64(health.latest.count))
        for (component, sample) in health.latest.sorted(by: { $0.key < $1.key }) {
            w.string(component)
            w.writeHealth(sample)
        }
        w.unsigned(UInt64(health.statusCounts.count))
        for (status, count) in health.statusCounts.sorted(by: { $0.key < $1.key }) {
            w.string(status)
            w.signed(count)
        }
        w.string(system.status)
        w.string(system.aiSystem)
    }

    init(row r: inout SnapshotReader) throws {
        self.init()
        profiles.total = try r.int("profiles")
        profiles.withAIAnalysis = try r.int("profiles with analysis")
        posts.total = try r.int("posts")
        posts.withAIAnalysis = try r.int("posts with analysis")
        posts.failedUnrecovered = try r.int("posts failed unrecovered")
        unlocks.distinct = try r.int("distinct unlocks")
        unlocks.users = try r.int("unlocking users")
        analyses.completed = try r.signed("analyses completed")
        analyses.failed = try r.signed("analyses failed")
        searches.total = try r.signed("searches")
        searches.cacheHits = try r.signed("cache hits")
        unlocks.total = try r.signed("unlocks")
        credits.granted = try r.signed("credits granted")
        credits.spent = try r.signed("credits spent")
        cdn.queued = try r.signed("CDN queued")
        cdn.succeeded = try r.signed("CDN succeeded")
        cdn.failed = try r.signed("CDN failed")
        profiles.aiCompletionRate = try r.double("AI completion rate")
        analyses.completionRate = try r.double("analysis completion rate")
        searches.cacheHitRatio = try r.double("cache hit ratio")
        cdn.successRate = try r.double("CDN success rate")
        for _ in 0..<(try r.count("CDN priorities", minimumBytes: 5)) {
            let priority = try r.string("CDN priority")
            let counts = CdnCounts(queued: try r.signed("queued"), succeeded: try r.signed("succeeded"), failed: try r.signed("failed"),
                                   successRate: try r.double("success rate"))
            guard cdn.byPriority.updateValue(counts, forKey: priority) == nil else { throw r.corrupted("CDN priority \(priority) appears twice") }
        }
        for _ in 0..<(try r.count("health components", minimumBytes: 36)) {
            let component = try r.string("health component")
            guard health.latest.updateValue(try r.readHealth(), forKey: component) == nil else {
                throw r.corrupted("health of \(component) appears twice")
            }
        }
        for _ in 0..<(try r.count("status counts", minimumBytes: 2)) {
            let status = try r.string("status")
            guard health.statusCounts.updateValue(try r.int("status count"), forKey: status) == nil else {
                throw r.corrupted("status \(status) appears twice")
            }
        }
        system.status = try r.string("system status")
        system.aiSystem = try r.string("AI system")
    }
}
