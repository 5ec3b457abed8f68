public import EventLog
public import Events
public import HashTreeCollections

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
/// Backed by persistent maps, so publishing it after a batch costs O(1).
public struct UnlockedProfilesView: Sendable, Equatable {
    struct Unlock: Sendable, Hashable {
        var username: String
        var unlockedAt: Int64
        var creditsSpent: Int64
        var position: LogPosition
    }

    /// Per user, unlocks in log order (oldest first).
    var users: TreeDictionary<String, [Unlock]> = [:]
    var profiles: TreeDictionary<String, ProfileSummary> = [:]

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
        let unlocks = users[user] ?? []
        var end = unlocks.count
        if let cursor, let before = LogPosition(cursor) {
            end = unlocks.partitioningIndex { $0.position >= before }
        }
        let start = max(0, end - max(0, limit))
        let page = unlocks[start..<end].reversed().map { unlock in
            UnlockedProfile(
                username: unlock.username, unlockedAt: unlock.unlockedAt, creditsSpent: unlock.creditsSpent,
                position: unlock.position, profile: profiles[unlock.username] ?? ProfileSummary()
            )
        }
        return Page(profiles: page, nextCursor: start > 0 ? page.last.map { String($0.position) } : nil, total: unlocks.count)
    }

    public func hasUnlocked(user: String, username: String) -> Bool {
        users[user]?.contains { $0.username == username } ?? false
    }

    public func profile(_ username: String) -> ProfileSummary? { profiles[username] }
}

/// Folds the log into `UnlockedProfilesView`.
public struct UnlockedProfilesProjection: DomainProjection {
    public static let name = "unlocked-profiles"
    public static let version = 1

    var users: TreeDictionary<String, [UnlockedProfilesView.Unlock]> = [:]
    var unlockedPairs: Set<String> = []
    var profiles: TreeDictionary<String, ProfileSummary> = [:]
    /// Per post id: (username, ever completed, last failed).
    var posts: [String: PostState] = [:]

    struct PostState: Hashable {
        var username: String
        var completed: Bool
        var lastFailed: Bool
    }

    public init() {}

    public mutating func apply(_ domain: DomainEvent, of event: RecordedEvent) {
        switch domain {
        case .profileUnlocked(let e):
            // The first unlock of a pair counts; a repeat (possible in imported logs) does not.
            guard unlockedPairs.insert(e.user + "\u{1F}" + e.username).inserted else { return }
            users[e.user, default: []].append(.init(username: e.username, unlockedAt: event.recordedAt, creditsSpent: e.creditsSpent, position: event.position))
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

    public func makeView() -> UnlockedProfilesView {
        UnlockedProfilesView(users: users, profiles: profiles)
    }
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
