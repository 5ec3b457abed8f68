public import EventLog
import Events

extension SystemStatsProjection {
    /// The view of this state with `late` folded after it, without folding them into a copy:
    /// a copy's first insert into a shared table or set copies all of it (tens of MB on a
    /// 10 M-event log), and an hourly row of a log whose batches mix event times needs this
    /// at nearly every hour (`IntervalRows`). The state's tables and sets are only read; what
    /// `late` adds to them is kept beside them (`LateOverlay`).
    public func view(alsoFolding late: [RecordedEvent]) -> SystemStats {
        var overlay = LateOverlay(base: self)
        late.forEachFields { fields, stamp in overlay.fold(fields, at: stamp) }
        return overlay.makeView()
    }
}

/// A few events folded on top of a `SystemStatsProjection` that is not changed: its
/// counters and small maps are changed in a copy (they are inline or small), its interning
/// tables and id sets are read, and the ids and members the events add are kept here, new
/// ids numbered after the table's last as the table would number them. The same decisions
/// as `SystemStatsProjection.fold`; `IntervalRowsTests` checks the two agree on random logs.
struct LateOverlay {
    private let base: SystemStatsProjection
    /// The base's counters, post outcomes counts and health, changed as the events fold.
    private var scalars: SystemStatsProjection
    private var newUsernames: [[UInt8]: UInt32] = [:]
    private var newPosts: [[UInt8]: UInt32] = [:]
    private var newUsers: [[UInt8]: UInt32] = [:]
    private var analysedExtra: Set<UInt32> = []
    private var outcomes: [UInt32: UInt8] = [:]
    private var pairsExtra: Set<UInt64> = []

    init(base: SystemStatsProjection) {
        self.base = base
        scalars = base
    }

    mutating func fold(_ fields: PayloadFields, at stamp: EventStamp) {
        switch fields {
        case .creditsGranted(_, let amount, _):
            scalars.creditsGranted &+= amount
        case .creatorSearched(let username, let servedFrom, _):
            scalars.searches += 1
            if servedFrom == .cache { scalars.cacheHits += 1 }
            _ = usernameID(username)
        case .profileRefreshed(let username, _, _, _, _, _):
            _ = usernameID(username)
        case .profileUnlocked(let user, let username, let spent):
            unlocked(user: userID(user), username: usernameID(username), spent: spent)
        case .postAnalysisCompleted(let username, let post, _):
            analysed(username: usernameID(username), post: postID(post), failed: false)
        case .postAnalysisFailed(let username, let post, _):
            analysed(username: usernameID(username), post: postID(post), failed: true)
        case .cdnJobQueued(let priority, let username):
            scalars.cdn[priority.index].queued += 1
            if let username { _ = usernameID(username) }
        case .cdnJobSucceeded(let priority, _):
            scalars.cdn[priority.index].succeeded += 1
        case .cdnJobFailed(let priority, _):
            scalars.cdn[priority.index].failed += 1
        case .decoded(let domain):
            apply(domain, at: stamp)
        }
    }

    private mutating func apply(_ domain: DomainEvent, at stamp: EventStamp) {
        switch domain {
        case .creditsGranted(let e):
            scalars.creditsGranted &+= e.amount
        case .creatorSearched(let e):
            scalars.searches += 1
            if e.servedFrom == .cache { scalars.cacheHits += 1 }
            _ = usernameID(e.username)
        case .profileRefreshed(let e):
            _ = usernameID(e.username)
        case .profileUnlocked(let e):
            unlocked(user: userID(e.user), username: usernameID(e.username), spent: e.creditsSpent)
        case .postAnalysisCompleted(let e):
            analysed(username: usernameID(e.username), post: postID(e.postID), failed: false)
        case .postAnalysisFailed(let e):
            analysed(username: usernameID(e.username), post: postID(e.postID), failed: true)
        case .cdnJobQueued(let e):
            scalars.cdn[e.priority.index].queued += 1
            if let name = e.username { _ = usernameID(name) }
        case .cdnJobSucceeded, .cdnJobFailed, .healthSampled, .circuitBreakerChanged:
            // Counters and the small health and breaker maps: folded into the copy itself.
            scalars.apply(domain, at: stamp)
        }
    }

    private mutating func usernameID(_ key: UnsafeRawBufferPointer) -> UInt32 {
        base.usernames.lookup(key) ?? Self.newID(Array(key), after: base.usernames, in: &newUsernames)
    }

    private mutating func postID(_ key: UnsafeRawBufferPointer) -> UInt32 {
        base.postIDs.lookup(key) ?? Self.newID(Array(key), after: base.postIDs, in: &newPosts)
    }

    private mutating func userID(_ key: UnsafeRawBufferPointer) -> UInt32 {
        base.users.lookup(key) ?? Self.newID(Array(key), after: base.users, in: &newUsers)
    }

    private mutating func usernameID(_ key: String) -> UInt32 {
        var key = key
        return key.withUTF8 { usernameID(UnsafeRawBufferPointer($0)) }
    }

    private mutating func postID(_ key: String) -> UInt32 {
        var key = key
        return key.withUTF8 { postID(UnsafeRawBufferPointer($0)) }
    }

    private mutating func userID(_ key: String) -> UInt32 {
        var key = key
        return key.withUTF8 { userID(UnsafeRawBufferPointer($0)) }
    }

    /// The id `table.intern` would give `key`, not in `table`, after the events so far.
    /// Static: a method on `self` given `&self.new…` would copy the map on every insert.
    private static func newID(_ key: [UInt8], after table: InternTable, in new: inout [[UInt8]: UInt32]) -> UInt32 {
        if let id = new[key] { return id }
        let id = UInt32(table.count + new.count)
        new[key] = id
        return id
    }

    private mutating func unlocked(user: UInt32, username: UInt32, spent: Int64) {
        scalars.unlockEvents += 1
        scalars.creditsSpent &+= spent
        if !base.unlockPairs.contains(user, username) { pairsExtra.insert(UInt64(user) << 32 | UInt64(username)) }
    }

    private mutating func analysed(username: UInt32, post: UInt32, failed: Bool) {
        if failed { scalars.analysesFailed += 1 } else {
            scalars.analysesCompleted += 1
            if !base.analysedUsernames.contains(username) { analysedExtra.insert(username) }
        }
        let stored = Int(post) < base.postOutcomes.count ? base.postOutcomes[Int(post)] : 0
        let before = SystemStatsProjection.PostOutcome(rawValue: outcomes[post] ?? stored)
        var after = before
        if !failed { after.insert(.completed) }
        if failed { after.insert(.lastFailed) } else { after.remove(.lastFailed) }
        outcomes[post] = after.rawValue
        if after.contains(.completed) && !before.contains(.completed) { scalars.postsWithAnalysis += 1 }
        switch (before.contains(.lastFailed), after.contains(.lastFailed)) {
        case (false, true): scalars.postsFailedUnrecovered += 1
        case (true, false): scalars.postsFailedUnrecovered -= 1
        default: break
        }
    }

    func makeView() -> SystemStats {
        scalars.makeView(sets: SystemStatsProjection.SetCounts(
            usernames: base.usernames.count + newUsernames.count, analysedUsernames: base.analysedUsernames.count + analysedExtra.count,
            posts: base.postIDs.count + newPosts.count, users: base.users.count + newUsers.count,
            unlockPairs: base.unlockPairs.count + pairsExtra.count
        ))
    }
}
