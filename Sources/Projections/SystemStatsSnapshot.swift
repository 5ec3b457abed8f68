public import Events

/// The system-stats fold state in a binary snapshot (docs/snapshot-format.md): one section
/// per collection, elements written as they are iterated, never collected first.
extension SystemStatsProjection {
    enum Section: UInt8 {
        case counters = 1, usernames, analysedUsernames, posts, unlockPairs, unlockUsers, health, breakers
    }

    public func writeSnapshot(to w: inout SnapshotWriter) {
        w.section(Section.counters.rawValue, count: cdn.count)
        for value in [Int64(postsWithAnalysis), Int64(postsFailedUnrecovered), analysesCompleted, analysesFailed, searches,
                      cacheHits, unlockEvents, creditsGranted, creditsSpent] {
            w.signed(value)
        }
        for tally in cdn {
            w.signed(tally.queued)
            w.signed(tally.succeeded)
            w.signed(tally.failed)
        }
        w.section(Section.usernames.rawValue, count: usernames.count)
        for username in usernames { w.string(username) }
        w.section(Section.analysedUsernames.rawValue, count: analysedUsernames.count)
        for username in analysedUsernames { w.string(username) }
        w.section(Section.posts.rawValue, count: posts.count)
        for (post, outcome) in posts {
            w.string(post)
            w.byte(outcome.rawValue)
        }
        w.section(Section.unlockPairs.rawValue, count: unlockPairs.count)
        for pair in unlockPairs {
            w.string(pair.user)
            w.string(pair.username)
        }
        w.section(Section.unlockUsers.rawValue, count: unlockUsers.count)
        for user in unlockUsers { w.string(user) }
        w.section(Section.health.rawValue, count: health.count)
        for (component, sample) in health {
            w.string(component)
            w.writeHealth(sample)
        }
        w.section(Section.breakers.rawValue, count: breakers.count)
        for (component, state) in breakers {
            w.string(component)
            w.choice(state)
        }
    }

    public init(snapshot r: inout SnapshotReader) throws {
        self.init()
        let tallies = try r.section(Section.counters.rawValue, minimumBytes: 3)
        guard tallies == CdnPriority.allCases.count else {
            throw r.corrupted("\(tallies) CDN priorities, this build has \(CdnPriority.allCases.count)")
        }
        postsWithAnalysis = try r.int("posts with analysis")
        postsFailedUnrecovered = try r.int("posts failed unrecovered")
        analysesCompleted = try r.signed("analyses completed")
        analysesFailed = try r.signed("analyses failed")
        searches = try r.signed("searches")
        cacheHits = try r.signed("cache hits")
        unlockEvents = try r.signed("unlock events")
        creditsGranted = try r.signed("credits granted")
        creditsSpent = try r.signed("credits spent")
        for i in cdn.indices {
            cdn[i] = CdnTally(queued: try r.signed("cdn queued"), succeeded: try r.signed("cdn succeeded"), failed: try r.signed("cdn failed"))
        }
        usernames = try Self.readStrings(&r, .usernames, "username")
        analysedUsernames = try Self.readStrings(&r, .analysedUsernames, "analysed username")
        let postCount = try r.section(Section.posts.rawValue, minimumBytes: 2)
        posts.reserveCapacity(postCount)
        for _ in 0..<postCount {
            let post = try r.string("post id")
            let outcome = PostOutcome(rawValue: try r.byte("post outcome"))
            guard outcome.rawValue & ~3 == 0 else { throw r.corrupted("post outcome \(outcome.rawValue) has unknown bits") }
            guard posts.updateValue(outcome, forKey: post) == nil else { throw r.corrupted("post \(post) appears twice") }
        }
        let pairCount = try r.section(Section.unlockPairs.rawValue, minimumBytes: 2)
        unlockPairs.reserveCapacity(pairCount)
        for _ in 0..<pairCount {
            let pair = UnlockPair(user: try r.string("unlock user"), username: try r.string("unlock username"))
            guard unlockPairs.insert(pair).inserted else { throw r.corrupted("an unlock pair appears twice") }
        }
        unlockUsers = try Self.readStrings(&r, .unlockUsers, "unlock user")
        let healthCount = try r.section(Section.health.rawValue, minimumBytes: 36)
        for _ in 0..<healthCount {
            let component = try r.string("health component")
            guard health.updateValue(try r.readHealth(), forKey: component) == nil else { throw r.corrupted("health of \(component) appears twice") }
        }
        let breakerCount = try r.section(Section.breakers.rawValue, minimumBytes: 2)
        for _ in 0..<breakerCount {
            let component = try r.string("breaker component")
            guard breakers.updateValue(try r.choice(BreakerState.self, "breaker state"), forKey: component) == nil else {
                throw r.corrupted("breaker of \(component) appears twice")
            }
        }
    }

    private static func readStrings(_ r: inout SnapshotReader, _ section: Section, _ what: String) throws -> Set<String> {
        let count = try r.section(section.rawValue, minimumBytes: 1)
        var set = Set<String>(minimumCapacity: count)
        for _ in 0..<count {
            guard set.insert(try r.string(what)).inserted else { throw r.corrupted("a \(what) appears twice") }
        }
        return set
    }
}

extension SnapshotWriter {
    /// status, four gauges (f64), sampled-at, breaker (0 none, else 1 + its index).
    mutating func writeHealth(_ h: SystemStats.ComponentHealth) {
        choice(h.status)
        for value in [h.memoryPct, h.cpuPct, h.diskPct, h.latencyMs] { double(value) }
        signed(h.sampledAt)
        if let breaker = h.breaker {
            byte(1)
            choice(breaker)
        } else {
            byte(0)
        }
    }
}

extension SnapshotReader {
    mutating func readHealth() throws -> SystemStats.ComponentHealth {
        let status = try choice(HealthStatus.self, "health status")
        let memory = try double("memory pct"), cpu = try double("cpu pct"), disk = try double("disk pct"), latency = try double("latency ms")
        let sampledAt = try signed("sampled at")
        let breaker: BreakerState? = try bool("breaker present") ? try choice(BreakerState.self, "breaker state") : nil
        return SystemStats.ComponentHealth(status: status, memoryPct: memory, cpuPct: cpu, diskPct: disk, latencyMs: latency,
                                           sampledAt: sampledAt, breaker: breaker)
    }
}
