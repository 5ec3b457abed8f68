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

    /// Users with at least one unlock.
    var users = InternTable()
    /// Every username of an unlock, a refresh or an analysis.
    var usernames = InternTable()
    /// Per user id, unlocks in log order (oldest first).
    var unlocks = ChunkedColumn<[Unlock]>()
    /// Per username id; nil for a username only unlocked, never refreshed nor analysed.
    var profiles = ChunkedColumn<ProfileSummary?>()

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
        let list = users.lookup(user).map { unlocks[Int($0)] } ?? []
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

    public func profile(_ username: String) -> ProfileSummary? {
        usernames.lookup(username).flatMap { profiles[Int($0)] }
    }
}

/// Folds the log into `UnlockedProfilesView`, from the payloads' bytes.
public struct UnlockedProfilesProjection: PayloadFieldsProjection {
    public static let name = "unlocked-profiles"
    /// 2: the state keys on interned ids (snapshot sections changed).
    public static let version = 2

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
        if Int(id) == view.unlocks.count { view.unlocks.append([]) }
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
        // The first unlock of a pair counts; a repeat (possible in imported logs) does not.
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

extension Array {
    /// The first index whose element satisfies `belongs`, for an array partitioned so that
    /// all non-members come first.
    func partitioningIndex(where belongs: (Element) -> Bool) -> Int {
        var low = 0
        var high = count
        while low < high {
            let mid = (low + high) / 2
            if belongs(self[mid]) { high = mid } else { low = mid + 1 }
        }
        return low
    }
}
