public import Events

/// The system-stats fold state in a binary snapshot (docs/snapshot-format.md): one section
/// per collection, elements written as they are iterated, never collected first. The
/// interning tables it keys on are sections of their own, so the state is self-contained
/// (an as-of checkpoint stores it alone).
extension SystemStatsProjection {
    enum Section: UInt8 {
        case counters = 1, usernames, analysedUsernames, postIDs, postOutcomes, users, unlockPairs, health, breakers
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
        usernames.write(to: &w, section: Section.usernames.rawValue)
        // Ids in increasing order, as gaps from the previous one (+1).
        w.section(Section.analysedUsernames.rawValue, count: analysedUsernames.count)
        var previous: Int64 = -1
        analysedUsernames.forEach { id in
            w.unsigned(UInt64(Int64(id) - previous - 1))
            previous = Int64(id)
        }
        postIDs.write(to: &w, section: Section.postIDs.rawValue)
        w.section(Section.postOutcomes.rawValue, count: postOutcomes.count)
        w.raw(postOutcomes)
        users.write(to: &w, section: Section.users.rawValue)
        w.section(Section.unlockPairs.rawValue, count: unlockPairs.count)
        unlockPairs.forEach { user, username in
            w.unsigned(UInt64(user))
            w.unsigned(UInt64(username))
        }
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
        usernames = try InternTable(snapshot: &r, section: Section.usernames.rawValue, what: "username")
        let analysed = try r.section(Section.analysedUsernames.rawValue, minimumBytes: 1)
        var next: UInt64 = 0
        for _ in 0..<analysed {
            let gap = try r.unsigned("analysed username gap", max: UInt64(usernames.count))
            let id = next + gap
            guard id < UInt64(usernames.count) else { throw r.corrupted("analysed username id \(id) is not a username") }
            analysedUsernames.insert(UInt32(id))
            next = id + 1
        }
        postIDs = try InternTable(snapshot: &r, section: Section.postIDs.rawValue, what: "post id")
        let outcomes = try r.section(Section.postOutcomes.rawValue, minimumBytes: 1)
        guard outcomes == postIDs.count else { throw r.corrupted("\(outcomes) post outcomes for \(postIDs.count) posts") }
        postOutcomes = Array(try r.rawBytes("post outcomes", max: outcomes, exactly: outcomes))
        guard postOutcomes.allSatisfy({ $0 & ~3 == 0 }) else { throw r.corrupted("a post outcome has unknown bits") }
        users = try InternTable(snapshot: &r, section: Section.users.rawValue, what: "unlock user")
        let pairCount = try r.section(Section.unlockPairs.rawValue, minimumBytes: 2)
        var pairs: [UInt64] = []
        pairs.reserveCapacity(pairCount)
        for _ in 0..<pairCount {
            let user = try r.unsigned("unlock user id", max: UInt64(max(0, users.count - 1)))
            let username = try r.unsigned("unlock username id", max: UInt64(max(0, usernames.count - 1)))
            guard user < users.count, username < usernames.count else { throw r.corrupted("an unlock pair names an unknown id") }
            pairs.append(user << 32 | username)
        }
        let (set, twice) = IDPairSet.loading(pairs)
        guard twice == nil else { throw r.corrupted("an unlock pair appears twice") }
        unlockPairs = set
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
