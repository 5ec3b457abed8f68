public import EventLog
public import Events

/// One profile a user unlocked, with the profile's summary as the view knows it.
public struct UnlockedProfile: Sendable, Hashable, Codable {
    public var username: String
    /// Event time of the (first) unlock, µs since 1970 UTC.
    public var unlockedAt: Int64
    public var creditsSpent: Int64
    /// Log position of the unlock: the order of the list and the pagination cursor.
    public var position: LogPosition
    public var profile: ProfileSummary

    enum CodingKeys: String, CodingKey {
        case username, unlockedAt = "unlocked_at_us", creditsSpent = "credits_spent", position, profile
    }
}

/// What the log knows of a profile: the latest refresh and its analysed posts.
public struct ProfileSummary: Sendable, Hashable, Codable {
    public var followers: Int64?
    public var following: Int64?
    public var postsCount: Int64?
    public var verified: Bool?
    public var category: String?
    /// Distinct posts with at least one completed analysis.
    public var postsAnalysed: Int = 0
    /// Distinct posts whose last analysis failed.
    public var postsFailed: Int = 0

    public init() {}

    enum CodingKeys: String, CodingKey {
        case followers, following, postsCount = "posts_count", verified, category,
             postsAnalysed = "posts_analysed", postsFailed = "posts_failed"
    }
}

/// A user's credits as the log says: balance = Σ grants − Σ credits spent by unlocks (a
/// repeated unlock of a profile spends again, as commands count it), and the last
/// `recentLimit` grants and unlocks. The view's own copy of what `WalletState` folds for
/// commands, so that a balance read answers from a view while the store is down.
public struct WalletSummary: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case grant
        case unlock
    }

    /// One grant or unlock.
    public struct Movement: Sendable, Hashable {
        public var kind: Kind
        public var position: LogPosition
        /// Credits granted (grant) or spent (unlock).
        public var amount: Int64
        /// µs since 1970 UTC.
        public var recordedAt: Int64
        public var balanceAfter: Int64
        /// The grant's reason, or the unlocked username.
        public var detail: String
    }

    /// How many movements are kept per user (as `/credits/balance` answered before).
    public static let recentLimit = 20

    public internal(set) var balance: Int64 = 0
    public internal(set) var totalGranted: Int64 = 0
    public internal(set) var totalSpent: Int64 = 0
    /// Position of the last grant or unlock; 0 before any.
    public internal(set) var position: LogPosition = 0
    /// Oldest first; at most `recentLimit`. Unlock details are username ids.
    var movements: [StoredMovement] = []

    /// The one-byte kind is last, beside the 4-byte id: 56 bytes a movement rather than 64
    /// (20 of them per wallet; 46 MB of a 10 M-event log's view).
    struct StoredMovement: Sendable, Hashable {
        var position: LogPosition
        var amount: Int64
        var recordedAt: Int64
        var balanceAfter: Int64
        /// A grant's reason; nil for an unlock, whose username id is `username`.
        var reason: String?
        var username: UInt32
        var kind: Kind

        init(kind: Kind, position: LogPosition, amount: Int64, recordedAt: Int64, balanceAfter: Int64, reason: String?, username: UInt32) {
            self.position = position
            self.amount = amount
            self.recordedAt = recordedAt
            self.balanceAfter = balanceAfter
            self.reason = reason
            self.username = username
            self.kind = kind
        }
    }

    mutating func record(_ kind: Kind, amount: Int64, at stamp: EventStamp, reason: String?, username: UInt32) {
        let signed = kind == .grant ? amount : (amount == .min ? .max : -amount)
        balance = Self.add(balance, signed)
        if kind == .grant { totalGranted = Self.add(totalGranted, amount) } else { totalSpent = Self.add(totalSpent, amount) }
        position = stamp.position
        if movements.count == Self.recentLimit { movements.removeFirst() }
        movements.append(StoredMovement(kind: kind, position: stamp.position, amount: amount, recordedAt: stamp.recordedAt,
                                        balanceAfter: balance, reason: reason, username: username))
    }

    /// Sums saturate, as in `WalletState`: a fold of stored bytes never traps.
    static func add(_ a: Int64, _ b: Int64) -> Int64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? (b > 0 ? .max : .min) : sum
    }
}

/// The unlocked-profiles view: per user, the distinct profiles unlocked, newest first.
/// Keyed on dense ids (`InternTable`) in chunked columns, so publishing it after a batch
/// shares every chunk and costs O(chunks), and the fold writes one chunk after a publish.
public struct UnlockedProfilesView: Sendable, Equatable {
    struct Unlock: Sendable, Hashable {
        var username: UInt32
        var unlockedAt: Int64
        var creditsSpent: Int64
        var position: LogPosition
    }

    /// Users with at least one unlock or grant.
    var users = InternTable()
    /// Every username of an unlock, a refresh or an analysis.
    var usernames = InternTable()
    /// Per user id, unlocks in log order (oldest first).
    var unlocks = ChunkedColumn<UnlockList>()
    /// Per username id; nil for a username only unlocked, never refreshed nor analysed.
    var profiles = ChunkedColumn<ProfileSummary?>()
    /// Per user id: credits and recent movements.
    var wallets = ChunkedColumn<WalletSummary>()

    public struct Page: Sendable, Hashable {
        public var profiles: [UnlockedProfile]
        /// Pass back as `cursor` for the next page; nil on the last page.
        public var nextCursor: String?
        /// How many profiles the user has unlocked in all.
        public var total: Int
    }

    /// One page of `user`'s unlocked profiles, newest first. `cursor` is a previous page's
    /// `nextCursor`; a cursor that is not one gives the first page.
    public func unlocked(user: String, limit: Int, cursor: String? = nil) -> Page {
        let list = users.lookup(user).map { unlocks[Int($0)] } ?? UnlockList()
        var end = list.count
        if let cursor, let before = LogPosition(cursor) {
            end = list.partitioningIndex { $0.position >= before }
        }
        let start = max(0, end - max(0, limit))
        let page = list[start..<end].reversed().map { unlock in
            UnlockedProfile(
                username: usernames.string(unlock.username), unlockedAt: unlock.unlockedAt, creditsSpent: unlock.creditsSpent,
                position: unlock.position, profile: profiles[Int(unlock.username)] ?? ProfileSummary()
            )
        }
        return Page(profiles: page, nextCursor: start > 0 ? page.last.map { String($0.position) } : nil, total: list.count)
    }

    public func hasUnlocked(user: String, username: String) -> Bool {
        guard let user = users.lookup(user), let username = usernames.lookup(username) else { return false }
        return unlocks[Int(user)].contains { $0.username == username }
    }

    /// A user's wallet: balance, totals, how many profiles unlocked, and the recent
    /// movements newest first. A user the log never granted nor charged has all zeros.
    public struct Wallet: Sendable, Hashable {
        public var balance: Int64
        public var totalGranted: Int64
        public var totalSpent: Int64
        public var unlocked: Int
        /// Position of the last grant or unlock; 0 before any.
        public var position: LogPosition
        public var recent: [WalletSummary.Movement]
    }

    public func wallet(user: String) -> Wallet {
        guard let id = users.lookup(user) else { return Wallet(balance: 0, totalGranted: 0, totalSpent: 0, unlocked: 0, position: 0, recent: []) }
        let w = wallets[Int(id)]
        let recent = w.movements.reversed().map { m in
            WalletSummary.Movement(kind: m.kind, position: m.position, amount: m.amount, recordedAt: m.recordedAt, balanceAfter: m.balanceAfter,
                                   detail: m.reason ?? usernames.string(m.username))
        }
        return Wallet(balance: w.balance, totalGranted: w.totalGranted, totalSpent: w.totalSpent, unlocked: unlocks[Int(id)].count,
                      position: w.position, recent: recent)
    }

    public func profile(_ username: String) -> ProfileSummary? {
        usernames.lookup(username).flatMap { profiles[Int($0)] }
    }
}

/// Folds the log into `UnlockedProfilesView`, from the payloads' bytes.
public struct UnlockedProfilesProjection: PayloadFieldsProjection {
    public static let name = "unlocked-profiles"
    /// 2: the state keys on interned ids (snapshot sections changed). 3: wallets per user
    /// (balance, totals, recent movements), and users include those with grants only.
    public static let version = 3

    var view = UnlockedProfilesView()
    /// (user id, username id) of every first unlock.
    var unlockedPairs = IDPairSet()
    var postIDs = InternTable()
    /// Per post id: the username id it belongs to (its first analysis's), and flags
    /// (bit 0: ever completed, bit 1: last analysis failed).
    var postOwners: [UInt32] = []
    var postFlags: [UInt8] = []

    public init() {}

    @inline(__always)
    public mutating func fold(_ fields: PayloadFields, at stamp: EventStamp) {
        switch fields {
        case .profileUnlocked(let user, let username, let spent):
            unlock(user: internUser(user), username: internUsername(username), spent: spent, at: stamp)
        case .creditsGranted(let user, let amount, let reason):
            view.wallets[Int(internUser(user))].record(.grant, amount: amount, at: stamp, reason: String(decoding: reason, as: UTF8.self), username: 0)
        case .profileRefreshed(let username, let followers, let following, let postsCount, let verified, let category):
            updateProfile(Int(internUsername(username))) { summary in
                summary.followers = followers
                summary.following = following
                summary.postsCount = postsCount
                summary.verified = verified
                if !(summary.category?.utf8.elementsEqual(category) ?? false) {
                    summary.category = String(decoding: category, as: UTF8.self)
                }
            }
        case .postAnalysisCompleted(let username, let post, _):
            record(post: postIDs.intern(post), username: username, failed: false)
        case .postAnalysisFailed(let username, let post, _):
            record(post: postIDs.intern(post), username: username, failed: true)
        default:
            return
        }
    }

    public mutating func apply(_ domain: DomainEvent, of event: RecordedEvent) {
        let stamp = event.stamp
        func bytes<R>(_ string: String, _ body: (UnsafeRawBufferPointer) -> R) -> R {
            var string = string
            return string.withUTF8 { body(UnsafeRawBufferPointer($0)) }
        }
        switch domain {
        case .profileUnlocked(let e):
            bytes(e.user) { user in bytes(e.username) { username in
                fold(.profileUnlocked(user: user, username: username, creditsSpent: e.creditsSpent), at: stamp)
            } }
        case .creditsGranted(let e):
            bytes(e.user) { user in bytes(e.reason) { reason in
                fold(.creditsGranted(user: user, amount: e.amount, reason: reason), at: stamp)
            } }
        case .profileRefreshed(let e):
            bytes(e.username) { username in bytes(e.category) { category in
                fold(.profileRefreshed(username: username, followers: e.followers, following: e.following, postsCount: e.postsCount,
                                       verified: e.verified, category: category), at: stamp)
            } }
        case .postAnalysisCompleted(let e):
            bytes(e.username) { username in bytes(e.postID) { post in
                fold(.postAnalysisCompleted(username: username, postID: post, durationMs: e.durationMs), at: stamp)
            } }
        case .postAnalysisFailed(let e):
            bytes(e.username) { username in bytes(e.postID) { post in
                fold(.postAnalysisFailed(username: username, postID: post, durationMs: e.durationMs), at: stamp)
            } }
        default:
            return
        }
    }

    @inline(__always)
    private mutating func internUser(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        let id = view.users.intern(bytes)
        if Int(id) == view.unlocks.count {
            view.unlocks.append(UnlockList())
            view.wallets.append(WalletSummary())
        }
        return id
    }

    @inline(__always)
    private mutating func internUsername(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        let id = view.usernames.intern(bytes)
        if Int(id) == view.profiles.count { view.profiles.append(nil) }
        return id
    }

    @inline(__always)
    private mutating func unlock(user: UInt32, username: UInt32, spent: Int64, at stamp: EventStamp) {
        // Every unlock spends; only the first of a pair lists the profile (a repeat is
        // possible in imported logs).
        view.wallets[Int(user)].record(.unlock, amount: spent, at: stamp, reason: nil, username: username)
        guard unlockedPairs.insert(user, username) else { return }
        view.unlocks[Int(user)].append(.init(username: username, unlockedAt: stamp.recordedAt, creditsSpent: spent, position: stamp.position))
    }

    @inline(__always)
    private mutating func record(post: UInt32, username: UnsafeRawBufferPointer, failed: Bool) {
        let isNew = Int(post) == postFlags.count
        if isNew {
            postOwners.append(internUsername(username))
            postFlags.append(0)
        }
        let before = postFlags[Int(post)]
        let after = (before & 1) | (failed ? 2 : 1)
        guard after != before || isNew else { return }
        postFlags[Int(post)] = after
        updateProfile(Int(postOwners[Int(post)])) { summary in
            if after & 1 != 0 && before & 1 == 0 { summary.postsAnalysed += 1 }
            if before & 2 != 0 { summary.postsFailed -= 1 }
            if after & 2 != 0 { summary.postsFailed += 1 }
        }
    }

    /// Changes username `id`'s summary in place (creating it when nil): no copy of the
    /// summary and its category string in and out per event.
    @inline(__always)
    private mutating func updateProfile(_ id: Int, _ body: (inout ProfileSummary) -> Void) {
        func update(_ slot: inout ProfileSummary?) {
            if slot == nil { slot = ProfileSummary() }
            body(&slot!)
        }
        update(&view.profiles[id])
    }

    public func makeView() -> UnlockedProfilesView { view }
}

extension RandomAccessCollection where Index == Int {
    /// The first index whose element satisfies `belongs`, for a collection partitioned so
    /// that all non-members come first.
    func partitioningIndex(where belongs: (Element) -> Bool) -> Int {
        var low = startIndex
        var high = endIndex
        while low < high {
            let mid = (low + high) / 2
            if belongs(self[mid]) { high = mid } else { low = mid + 1 }
        }
        return low
    }
}
