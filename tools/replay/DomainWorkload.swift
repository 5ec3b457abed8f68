import EventLog
import Events

#if canImport(Glibc)
import Glibc
#endif

/// A seeded, realistic creator-analytics workload for `replay generate`: users with wallets
/// who search and unlock profiles, AI workers analysing posts, CDN jobs with retries,
/// monitors sampling five components every 30 s, breakers tripping in incidents and deploys.
/// It keeps the state the unlock rules need (balances, unlocked pairs), so the log it writes
/// is one the Commands could have written. Events come out in simulated-time order; the same
/// settings give the same events.
struct DomainWorkload {
    struct Settings: Sendable {
        var seed: UInt64 = 42
        var users = 50_000
        var profiles = 200_000
        /// Simulated start, µs since 1970 UTC: 2026-10-01T00:00:00Z.
        var start: Int64 = 1_790_812_800_000_000
        /// Mean simulated events per second, all kinds: 3.86 spreads 10,000,000 events over ~30 days.
        var eventsPerSecond = 3.86
        /// Credits one unlock costs (the Commands' default).
        var unlockCost: Int64 = 1
    }

    /// One event with its envelope, as the log will take it.
    struct Generated: Sendable {
        var event: DomainEvent
        var recordedAt: Int64
        var stream: String
        /// The stream as a number (category in the top byte), so grouping hashes no strings.
        var streamKey: UInt64
        var actor: String
        var correlationID: String

        var proposed: ProposedEvent { event.proposed(actor: actor, correlationID: correlationID, recordedAt: recordedAt) }
    }

    /// Appends for one log batch: every stream once, its events in generated order.
    struct Batch: Sendable {
        var appends: [StreamAppend]
        var count: Int
        var firstRecordedAt: Int64
        var lastRecordedAt: Int64
    }

    static let components = ["api", "database", "ai-worker", "cdn", "redis"]
    static let healthInterval: Int64 = 30_000_000
    /// Events one foreground action yields on average (follow-ups included), measured over
    /// 10,000,000 events; turns the all-kinds rate into an action rate.
    static let eventsPerAction = 1.32

    let settings: Settings
    private var rng: SplitMix64
    private var now: Int64
    private var nextActionAt: Int64
    private let actionRate: Double
    private let diurnal: [Double]
    private var pending = PendingQueue()
    private var ready: [Generated] = []
    private var readIndex = 0
    private var counter: UInt64 = 0

    private let users: Population
    private var balance: [Int64]
    private var seen: [Bool]
    private var lastSearched: [Int32]
    private var unlocked = Set<UInt64>()

    private let profiles: Catalogue
    private var followers: [Int64]
    static let maximumFollowers: Int64 = 1_000_000_000
    private var postsCount: [Int32]
    private var postsAnalysed: [UInt32]
    private var refreshed: [Bool]

    private var health: [Component]
    private var deploys = 0

    init(_ settings: Settings) {
        precondition(settings.users > 0 && settings.profiles > 0 && settings.eventsPerSecond > 0)
        self.settings = settings
        var rng = SplitMix64(seed: settings.seed ^ 0x7A11_7A11_D0E5_7A11)
        users = Population(count: settings.users, rng: &rng)
        profiles = Catalogue(count: settings.profiles, rng: &rng)
        followers = (0..<settings.profiles).map { i in
            Int64(80_000_000 / pow(Double(i + 1), 0.85) * (0.7 + 0.6 * Self.unit(&rng))) + 150
        }
        postsCount = (0..<settings.profiles).map { _ in Int32(12 + rng.next() % 3_000) }
        postsAnalysed = Array(repeating: 0, count: settings.profiles)
        refreshed = Array(repeating: false, count: settings.profiles)
        balance = Array(repeating: 0, count: settings.users)
        seen = Array(repeating: false, count: settings.users)
        lastSearched = Array(repeating: -1, count: settings.users)
        health = Component.fleet()
        // Busier afternoons (UTC), quieter nights; the 24 factors average exactly 1.
        diurnal = (0..<24).map { 1 + 0.45 * cos(2 * Double.pi * Double($0 - 15) / 24) }
        let healthRate = Double(Self.components.count) / (Double(Self.healthInterval) / 1e6)
        actionRate = max(settings.eventsPerSecond - healthRate, settings.eventsPerSecond * 0.05) / Self.eventsPerAction
        now = settings.start
        nextActionAt = settings.start
        self.rng = rng
        pending.push(settings.start, .healthTick)
        pending.push(settings.start + 15 * 60_000_000, .deploy)
    }

    init(seed: UInt64) { self.init(Settings(seed: seed)) }

    // MARK: - Output

    static let hour: Int64 = 3_600_000_000

    mutating func next() -> Generated {
        while readIndex == ready.count {
            ready.removeAll(keepingCapacity: true)
            readIndex = 0
            step()
        }
        readIndex += 1
        return ready[readIndex - 1]
    }

    mutating func nextEvents(_ count: Int) -> [(DomainEvent, recordedAt: Int64)] {
        (0..<count).map { _ in
            let g = next()
            return (g.event, recordedAt: g.recordedAt)
        }
    }

    mutating func nextGenerated(_ count: Int) -> [Generated] { (0..<count).map { _ in next() } }

    /// The next events, at most `count`, as one batch's appends. Grouping by stream moves
    /// events across streams but keeps each stream's order, so recorded-at never decreases
    /// within a stream. A batch ends before an event of a later hour of event time, as a
    /// real writer's batches (a group commit's milliseconds) never span one: otherwise a
    /// 20,000-event batch spans about 1.4 hours and, grouped by stream, places events of
    /// one hour after events of the next at nearly every hour, which no server writes and
    /// which the views' hourly rows and as-of series pay for as late events. Reads the
    /// generated events in place: no copies of them on this path.
    mutating func nextBatch(_ count: Int) -> Batch {
        var slot: [UInt64: Int] = [:]
        slot.reserveCapacity(count)
        var appends: [StreamAppend] = []
        var first: Int64?
        var last = now
        var produced = 0
        while produced < count {
            guard readIndex < ready.count else {
                ready.removeAll(keepingCapacity: true)
                readIndex = 0
                step()
                continue
            }
            let at = ready[readIndex].recordedAt
            if let first, at / Self.hour != first / Self.hour { break }
            let proposed = ready[readIndex].proposed
            first = first ?? at
            last = at
            if let i = slot[ready[readIndex].streamKey] {
                appends[i].events.append(proposed)
            } else {
                slot[ready[readIndex].streamKey] = appends.count
                appends.append(StreamAppend(stream: ready[readIndex].stream, events: [proposed]))
            }
            readIndex += 1
            produced += 1
        }
        return Batch(appends: appends, count: produced, firstRecordedAt: first ?? now, lastRecordedAt: last)
    }

    // MARK: - Simulation

    /// Advances to the next due thing, a follow-up or a new action, and emits its events.
    private mutating func step() {
        if let due = pending.nextTime, due <= nextActionAt {
            let (time, item) = pending.pop()
            now = time
            handle(item)
        } else {
            now = nextActionAt
            act()
            let hour = Int((now / 3_600_000_000) % 24)
            let gap = -log(1 - uniform()) / (actionRate * diurnal[hour])
            nextActionAt = now + Int64(gap * 1e6)
        }
    }

    private mutating func act() {
        let roll = uniform()
        if roll < 0.56 {
            userAction()
        } else if roll < 0.82 {
            analyse(profile: profiles.pick(uniform()), post: nil, correlation: correlation())
        } else {
            queueJob(priority: Self.priority(uniform()), kind: Self.jobKinds[Int(rng.next() % 4)],
                     username: uniform() < 0.9 ? profiles.names[profiles.pick(uniform())] : nil, correlation: correlation())
        }
    }

    private mutating func handle(_ item: Pending) {
        switch item {
        case .healthTick:
            for c in health.indices { sample(c) }
            pending.push(now + Self.healthInterval, .healthTick)
        case .deploy:
            // A rolling deploy every 4 h restarts one component: down for a sample, breaker trips.
            let c = deploys % health.count
            deploys += 1
            health[c].incident = .down
            health[c].ticksLeft = 1
            health[c].reason = "restart during deploy"
            pending.push(now + 4 * 3_600_000_000, .deploy)
        case .breaker(let c, let state, let reason): changeBreaker(c, to: state, reason: reason)
        case .cdnOutcome(let job): finish(job)
        case .queue(let job): queue(job)
        case .recovery(let profile, let post, let corr): analyse(profile: profile, post: post, correlation: corr)
        case .refresh(let profile, let corr): refresh(profile, correlation: corr)
        case .unlock(let user, let profile, let corr): unlock(user: user, profile: profile, correlation: corr)
        }
    }

    // MARK: Users: grants, searches, unlocks

    private mutating func userAction() {
        let u = users.pick(uniform())
        let corr = correlation()
        guard seen[u] else {
            seen[u] = true
            grant(u, amount: 3, reason: "signup_bonus", correlation: corr)
            return
        }
        let roll = uniform()
        if roll < 0.70 {
            search(u, correlation: corr)
        } else if roll < 0.92 {
            let last = Int(lastSearched[u])
            let p = last >= 0 && uniform() < 0.6 ? last : profiles.pick(uniform())
            if unlocked.contains(Self.pair(u, p)) {
                search(u, profile: p, correlation: corr)
            } else if balance[u] < settings.unlockCost {
                // Out of credits: the user buys some, then unlocks a little later.
                grant(u, amount: Self.purchase(uniform()), reason: "purchase", correlation: corr)
                pending.push(now + Int64(20 + rng.next() % 100) * 1_000_000, .unlock(u, p, corr))
            } else {
                unlock(user: u, profile: p, correlation: corr)
            }
        } else if balance[u] < 3 * settings.unlockCost {
            // Users top up when they run low, not while they hold plenty.
            grant(u, amount: Self.purchase(uniform()), reason: "purchase", correlation: corr)
        } else if uniform() < 0.1 {
            grant(u, amount: 2, reason: "promotion: weekly streak", correlation: corr)
        } else {
            search(u, correlation: corr)
        }
    }

    private mutating func grant(_ u: Int, amount: Int64, reason: String, correlation: String) {
        balance[u] += amount
        emit(.creditsGranted(CreditsGranted(user: users.ids[u], amount: amount, reason: reason)),
             users.streams[u], key: Self.userKey | UInt64(u), actor: Self.billing, correlation: correlation)
    }

    private mutating func search(_ u: Int, profile: Int? = nil, correlation: String) {
        let found = profile != nil || uniform() < 0.9
        let cached = profile != nil || uniform() < 0.7
        let username: String
        if found {
            let p = profile ?? profiles.pick(uniform())
            username = profiles.names[p]
            lastSearched[u] = Int32(p)
            if !cached && uniform() < (refreshed[p] ? 0.25 : 0.8) {
                pending.push(now + Int64(1 + rng.next() % 15) * 1_000_000, .refresh(p, correlation))
            }
        } else {
            username = profiles.ghosts[Int(rng.next() % UInt64(profiles.ghosts.count))]
        }
        let ms = cached ? logNormal(median: 18, sigma: 0.6) : logNormal(median: 850, sigma: 0.7)
        emit(.creatorSearched(CreatorSearched(user: users.ids[u], username: username, servedFrom: cached ? .cache : .fresh,
                                              durationMs: Self.millis(ms), found: found)),
             users.streams[u], key: Self.userKey | UInt64(u), actor: users.actors[u], correlation: correlation)
    }

    /// Unlocks only what the wallet pays for, never the same pair twice.
    private mutating func unlock(user u: Int, profile p: Int, correlation: String) {
        let cost = settings.unlockCost
        guard balance[u] >= cost, unlocked.insert(Self.pair(u, p)).inserted else { return }
        balance[u] -= cost
        emit(.profileUnlocked(ProfileUnlocked(user: users.ids[u], username: profiles.names[p], creditsSpent: cost)),
             users.streams[u], key: Self.userKey | UInt64(u), actor: users.actors[u], correlation: correlation)
        if uniform() < 0.5 {
            let job = newJob(priority: .high, kind: "avatar", username: profiles.names[p], correlation: correlation)
            pending.push(now + Int64(1 + rng.next() % 3) * 1_000_000, .queue(job))
        }
    }

    // MARK: Profiles: refreshes, analyses

    private mutating func refresh(_ p: Int, correlation: String) {
        refreshed[p] = true
        // The drift is upward, so a hot profile refreshed tens of thousands of times grew
        // without bound and overflowed Int64 (a 100 M-event log trapped at 20 M events):
        // capped at the largest real accounts' size.
        followers[p] = min(Self.maximumFollowers, max(0, followers[p] + Int64(Double(followers[p]) * 0.004 * (uniform() - 0.3))))
        postsCount[p] += Int32(rng.next() % 3)
        emit(.profileRefreshed(ProfileRefreshed(username: profiles.names[p], followers: followers[p],
                                                following: Int64(80 + (p * 7_919) % 2_900), postsCount: Int64(postsCount[p]),
                                                verified: followers[p] > 800_000 || p % 53 == 0, category: profiles.category(p))),
             profiles.streams[p], key: Self.profileKey | UInt64(p), actor: Self.scraper, correlation: correlation)
    }

    /// Analyses the profile's next post, or retries `post` after a failure (a recovery).
    private mutating func analyse(profile p: Int, post: String?, correlation: String) {
        if post == nil { postsAnalysed[p] += 1 }
        let postID = post ?? Self.postID(profile: p, index: postsAnalysed[p])
        let worker = Self.aiWorkers[Int(rng.next() % 4)]
        if post == nil && uniform() < 0.07 {
            let e = Int(rng.next() % UInt64(Self.analysisErrors.count))
            emit(.postAnalysisFailed(PostAnalysisFailed(username: profiles.names[p], postID: postID, error: Self.analysisErrors[e],
                                                        durationMs: Self.millis(logNormal(median: 8_000, sigma: 0.8)))),
                 profiles.streams[p], key: Self.profileKey | UInt64(p), actor: worker, correlation: correlation)
            if e != 0 && uniform() < 0.65 {  // errors[0]: the post is gone, nothing to retry
                pending.push(now + Int64(120 + rng.next() % 1_680) * 1_000_000, .recovery(p, postID, correlation))
            }
            return
        }
        let sentiment = (min(1, max(-1, 0.25 + 0.35 * normal())) * 1_000).rounded() / 1_000
        let category = uniform() < 0.8 ? profiles.category(p) : Catalogue.categories[Int(rng.next() % 12)]
        emit(.postAnalysisCompleted(PostAnalysisCompleted(username: profiles.names[p], postID: postID, sentiment: sentiment,
                                                          language: Self.language(uniform()), category: category,
                                                          durationMs: Self.millis(logNormal(median: 2_200, sigma: 0.5)))),
             profiles.streams[p], key: Self.profileKey | UInt64(p), actor: worker, correlation: correlation)
    }

    // MARK: CDN jobs

    private mutating func newJob(priority: CdnPriority, kind: String, username: String?, correlation: String) -> Job {
        counter += 1
        let id = Self.hex(Self.mix(counter ^ (settings.seed &* 0x9E37_79B9_7F4A_7C15)), digits: 16)
        return Job(id: id, stream: "cdn-" + id, key: Self.cdnKey | counter, priority: priority, kind: kind,
                   username: username, attempt: 1, correlation: correlation)
    }

    private mutating func queueJob(priority: CdnPriority, kind: String, username: String?, correlation: String) {
        queue(newJob(priority: priority, kind: kind, username: username, correlation: correlation))
    }

    private mutating func queue(_ job: Job) {
        emit(.cdnJobQueued(CdnJobQueued(jobID: job.id, priority: job.priority, kind: job.kind, username: job.username)),
             job.stream, key: job.key, actor: Self.cdnQueue, correlation: job.correlation)
        pending.push(now + queueDelay(job.priority), .cdnOutcome(job))
    }

    private mutating func finish(_ job: Job) {
        let worker = Self.cdnWorkers[Int(rng.next() % 3)]
        let median: Double = job.kind == "post_image" ? 900 : job.kind == "story_frame" ? 600 : job.kind == "avatar" ? 250 : 150
        let ms = Self.millis(logNormal(median: median, sigma: 0.6))
        guard uniform() < 0.08 else {
            let size = logNormal(median: job.kind == "post_image" ? 600_000 : job.kind == "thumbnail" ? 15_000 : 60_000, sigma: 0.5)
            emit(.cdnJobSucceeded(CdnJobSucceeded(jobID: job.id, priority: job.priority, kind: job.kind, durationMs: ms, bytes: Int64(size))),
                 job.stream, key: job.key, actor: worker, correlation: job.correlation)
            return
        }
        let e = Int(rng.next() % UInt64(Self.cdnErrors.count))
        let retry = e != 0 && job.attempt < 3  // cdnErrors[0] (undecodable image) never heals
        emit(.cdnJobFailed(CdnJobFailed(jobID: job.id, priority: job.priority, kind: job.kind, durationMs: ms,
                                        error: Self.cdnErrors[e], attempt: job.attempt, willRetry: retry)),
             job.stream, key: job.key, actor: worker, correlation: job.correlation)
        if retry {
            var again = job
            again.attempt += 1
            pending.push(now + (10_000_000 << (job.attempt - 1)) + Int64(rng.next() % 5_000_000), .cdnOutcome(again))
        }
    }

    private mutating func queueDelay(_ priority: CdnPriority) -> Int64 {
        let seconds: UInt64 = switch priority {
        case .critical: 1 + rng.next() % 4
        case .high: 3 + rng.next() % 17
        case .medium: 10 + rng.next() % 110
        case .low: 60 + rng.next() % 840
        }
        return Int64(seconds) * 1_000_000 + Int64(rng.next() % 1_000_000)
    }

    // MARK: Health and breakers

    private mutating func sample(_ c: Int) {
        var s = health[c]
        if s.ticksLeft == 0 && uniform() < 1.0 / 1_500 {
            s.incident = uniform() < 0.3 ? .down : .degraded
            s.ticksLeft = s.incident == .down ? 2 + Int(rng.next() % 18) : 4 + Int(rng.next() % 36)
            s.reason = s.incident == .down ? "health check failed: \(s.name) unreachable" : "error rate above 50% in 60 s"
        }
        let status: HealthStatus = s.ticksLeft > 0 ? s.incident : (uniform() < 0.002 ? .degraded : .ok)
        let load = status == .down ? 35.0 : status == .degraded ? 22 : 0
        let spike = uniform() < 0.004 ? 20 + 15 * uniform() : 0
        s.disk += s.diskGrowth
        if s.disk > 89 { s.disk = s.diskBase }  // a cleanup job frees space
        let dump = uniform() < 0.0015 ? 25 + 10 * uniform() : 0  // a backup's dump, gone by the next sample
        let memory = Self.percent(s.memory + 3 * normal() + load * 0.7 + (spike > 0 && c % 2 == 0 ? spike : 0))
        let cpu = Self.percent(s.cpu + 8 * normal() + load + (spike > 0 && c % 2 == 1 ? spike : 0))
        let latency = (logNormal(median: s.latency, sigma: 0.35) * (status == .down ? 40 : status == .degraded ? 5 : 1) * 10).rounded() / 10
        emit(.healthSampled(HealthSampled(component: s.name, status: status, memoryPct: memory, cpuPct: cpu,
                                          diskPct: Self.percent(s.disk + dump), latencyMs: min(latency, 60_000))),
             s.stream, key: Self.healthKey | UInt64(c), actor: Self.monitor, correlation: correlation())
        if s.ticksLeft > 0 {
            if s.breaker == .closed && now >= s.breakerBusyUntil && (status == .down || uniform() < 0.03) {
                s.breaker = .open
                pending.push(now + 1_000_000, .breaker(c, .open, s.reason))
            }
            s.ticksLeft -= 1
            if s.ticksLeft == 0 && s.breaker == .open {
                s.breaker = .closed
                s.breakerBusyUntil = now + 36_000_000
                pending.push(now + 5_000_000, .breaker(c, .halfOpen, "cooldown elapsed, probing"))
                pending.push(now + 35_000_000, .breaker(c, .closed, "probe succeeded"))
            }
        }
        health[c] = s
    }

    private mutating func changeBreaker(_ c: Int, to state: BreakerState, reason: String) {
        emit(.circuitBreakerChanged(CircuitBreakerChanged(component: health[c].name, state: state, reason: reason)),
             health[c].stream, key: Self.healthKey | UInt64(c), actor: Self.breakerActor, correlation: correlation())
    }

    // MARK: - Helpers

    private mutating func emit(_ event: DomainEvent, _ stream: String, key: UInt64, actor: String, correlation: String) {
        ready.append(Generated(event: event, recordedAt: now, stream: stream, streamKey: key, actor: actor, correlationID: correlation))
    }

    private mutating func correlation() -> String { Self.hex(rng.next(), digits: 12) }
    private mutating func uniform() -> Double { Self.unit(&rng) }

    /// Approximately standard normal (Irwin–Hall of four uniforms): cheap and bounded.
    private mutating func normal() -> Double {
        (uniform() + uniform() + uniform() + uniform() - 2) * 1.732_050_8
    }

    private mutating func logNormal(median: Double, sigma: Double) -> Double { median * exp(sigma * normal()) }

    static func millis(_ value: Double) -> Int { min(FieldRules.maxDurationMs, max(1, Int(value))) }
    static func percent(_ value: Double) -> Double { (min(100, max(0, value)) * 10).rounded() / 10 }
    static func pair(_ u: Int, _ p: Int) -> UInt64 { UInt64(u) << 32 | UInt64(p) }

    static func postID(profile: Int, index: UInt32) -> String {
        "p" + hex(mix(UInt64(profile) << 32 | UInt64(index)), digits: 16)
    }
}
