public import EventLog
import HashTreeCollections

/// The unlocked-profiles fold state in a binary snapshot (docs/snapshot-format.md). The set
/// of unlocked pairs is not written: it is exactly the (user, username) of every unlock in
/// `users`, so it is rebuilt on load, and a snapshot that repeats a pair is refused.
extension UnlockedProfilesProjection {
    enum Section: UInt8 {
        case users = 1, profiles, posts
    }

    public func writeSnapshot(to w: inout SnapshotWriter) {
        w.section(Section.users.rawValue, count: users.count)
        for (user, unlocks) in users {
            w.string(user)
            w.unsigned(UInt64(unlocks.count))
            for unlock in unlocks {
                w.string(unlock.username)
                w.signed(unlock.unlockedAt)
                w.signed(unlock.creditsSpent)
                w.unsigned(unlock.position)
            }
        }
        w.section(Section.profiles.rawValue, count: profiles.count)
        for (username, summary) in profiles {
            w.string(username)
            w.writeSummary(summary)
        }
        w.section(Section.posts.rawValue, count: posts.count)
        for (post, state) in posts {
            w.string(post)
            w.string(state.username)
            w.byte((state.completed ? 1 : 0) | (state.lastFailed ? 2 : 0))
        }
    }

    public init(snapshot r: inout SnapshotReader) throws {
        self.init()
        let userCount = try r.section(Section.users.rawValue, minimumBytes: 2)
        for _ in 0..<userCount {
            let user = try r.string("user")
            let count = try r.count("unlocks of a user", minimumBytes: 4)
            var unlocks: [UnlockedProfilesView.Unlock] = []
            unlocks.reserveCapacity(count)
            for _ in 0..<count {
                let unlock = UnlockedProfilesView.Unlock(username: try r.string("unlocked username"), unlockedAt: try r.signed("unlocked at"),
                                                         creditsSpent: try r.signed("credits spent"), position: try r.unsigned("unlock position"))
                if let last = unlocks.last, last.position >= unlock.position { throw r.corrupted("unlocks of \(user) are not in log order") }
                guard unlockedPairs.insert(user + "\u{1F}" + unlock.username).inserted else {
                    throw r.corrupted("\(user) unlocked \(unlock.username) twice")
                }
                unlocks.append(unlock)
            }
            guard users.updateValue(unlocks, forKey: user) == nil else { throw r.corrupted("user \(user) appears twice") }
        }
        let profileCount = try r.section(Section.profiles.rawValue, minimumBytes: 4)
        for _ in 0..<profileCount {
            let username = try r.string("profile username")
            guard profiles.updateValue(try r.readSummary(), forKey: username) == nil else { throw r.corrupted("profile \(username) appears twice") }
        }
        let postCount = try r.section(Section.posts.rawValue, minimumBytes: 3)
        posts.reserveCapacity(postCount)
        for _ in 0..<postCount {
            let post = try r.string("post id")
            let username = try r.string("post username")
            let flags = try r.byte("post flags")
            guard flags & ~3 == 0 else { throw r.corrupted("post flags \(flags) have unknown bits") }
            let state = PostState(username: username, completed: flags & 1 != 0, lastFailed: flags & 2 != 0)
            guard posts.updateValue(state, forKey: post) == nil else { throw r.corrupted("post \(post) appears twice") }
        }
    }
}

extension SnapshotWriter {
    /// A presence byte (bit i: field i present; bit 5: verified), then the present fields.
    mutating func writeSummary(_ s: ProfileSummary) {
        var flags: UInt8 = 0
        if s.followers != nil { flags |= 1 }
        if s.following != nil { flags |= 2 }
        if s.postsCount != nil { flags |= 4 }
        if s.verified != nil { flags |= 8 }
        if s.category != nil { flags |= 16 }
        if s.verified == true { flags |= 32 }
        byte(flags)
        if let v = s.followers { signed(v) }
        if let v = s.following { signed(v) }
        if let v = s.postsCount { signed(v) }
        if let v = s.category { string(v) }
        signed(s.postsAnalysed)
        signed(s.postsFailed)
    }
}

extension SnapshotReader {
    mutating func readSummary() throws -> ProfileSummary {
        let flags = try byte("profile flags")
        guard flags & ~63 == 0, flags & 32 == 0 || flags & 8 != 0 else { throw corrupted("profile flags \(flags) are not valid") }
        var s = ProfileSummary()
        if flags & 1 != 0 { s.followers = try signed("followers") }
        if flags & 2 != 0 { s.following = try signed("following") }
        if flags & 4 != 0 { s.postsCount = try signed("posts count") }
        if flags & 8 != 0 { s.verified = flags & 32 != 0 }
        if flags & 16 != 0 { s.category = try string("category") }
        s.postsAnalysed = try int("posts analysed")
        s.postsFailed = try int("posts failed")
        return s
    }
}
