public import EventLog

/// The unlocked-profiles fold state in a binary snapshot (docs/snapshot-format.md): the
/// interning tables (users, usernames, post ids) as sections of their own, then the
/// columns keyed on their ids, the wallets last. The set of unlocked pairs is not written: it is exactly the
/// (user, username) of every unlock, so it is rebuilt on load, and a snapshot that repeats
/// a pair is refused.
extension UnlockedProfilesProjection {
    enum Section: UInt8 {
        case users = 1, usernames, unlocks, profiles, postIDs, posts, wallets
    }

    public func writeSnapshot(to w: inout SnapshotWriter) {
        view.users.write(to: &w, section: Section.users.rawValue)
        view.usernames.write(to: &w, section: Section.usernames.rawValue)
        w.section(Section.unlocks.rawValue, count: view.unlocks.count)
        view.unlocks.forEach { unlocks in
            w.unsigned(UInt64(unlocks.count))
            for unlock in unlocks {
                w.unsigned(UInt64(unlock.username))
                w.signed(unlock.unlockedAt)
                w.signed(unlock.creditsSpent)
                w.unsigned(unlock.position)
            }
        }
        w.section(Section.profiles.rawValue, count: view.profiles.count)
        view.profiles.forEach { summary in
            if let summary {
                w.byte(1)
                w.writeSummary(summary)
            } else {
                w.byte(0)
            }
        }
        postIDs.write(to: &w, section: Section.postIDs.rawValue)
        w.section(Section.posts.rawValue, count: postFlags.count)
        for (owner, flags) in zip(postOwners, postFlags) {
            w.unsigned(UInt64(owner))
            w.byte(flags)
        }
        w.section(Section.wallets.rawValue, count: view.wallets.count)
        view.wallets.forEach { wallet in
            w.signed(wallet.balance)
            w.signed(wallet.totalGranted)
            w.signed(wallet.totalSpent)
            w.unsigned(wallet.position)
            w.unsigned(UInt64(wallet.movements.count))
            for m in wallet.movements {
                w.choice(m.kind)
                w.unsigned(m.position)
                w.signed(m.amount)
                w.signed(m.recordedAt)
                w.signed(m.balanceAfter)
                if let reason = m.reason { w.string(reason) } else { w.unsigned(UInt64(m.username)) }
            }
        }
    }

    public init(snapshot r: inout SnapshotReader) throws {
        self.init()
        view.users = try InternTable(snapshot: &r, section: Section.users.rawValue, what: "user")
        view.usernames = try InternTable(snapshot: &r, section: Section.usernames.rawValue, what: "username")
        let usernameLimit = UInt64(max(0, view.usernames.count - 1))
        let userCount = try r.section(Section.unlocks.rawValue, minimumBytes: 1)
        guard userCount == view.users.count else { throw r.corrupted("unlocks of \(userCount) users, the table holds \(view.users.count)") }
        // The pairs are collected and their set built at once, in slot order (`IDPairSet.loading`).
        var pairs: [UInt64] = []
        for user in 0..<userCount {
            let count = try r.count("unlocks of a user", minimumBytes: 4)
            var unlocks = UnlockList()
            unlocks.reserveCapacity(count)
            for _ in 0..<count {
                let username = try r.unsigned("unlocked username id", max: usernameLimit)
                guard username < view.usernames.count else { throw r.corrupted("unlocked username id \(username) is not a username") }
                let unlock = UnlockedProfilesView.Unlock(username: UInt32(username), unlockedAt: try r.signed("unlocked at"),
                                                         creditsSpent: try r.signed("credits spent"), position: try r.unsigned("unlock position"))
                if let last = unlocks.last, last.position >= unlock.position { throw r.corrupted("unlocks of user \(user) are not in log order") }
                unlocks.append(unlock)
                pairs.append(UInt64(user) << 32 | username)
            }
            view.unlocks.append(unlocks)
        }
        let (set, twice) = IDPairSet.loading(pairs)
        if let twice { throw r.corrupted("user \(twice >> 32) unlocked username \(UInt32(truncatingIfNeeded: twice)) twice") }
        unlockedPairs = set
        let profileCount = try r.section(Section.profiles.rawValue, minimumBytes: 1)
        guard profileCount == view.usernames.count else {
            throw r.corrupted("\(profileCount) profiles, the username table holds \(view.usernames.count)")
        }
        for _ in 0..<profileCount {
            view.profiles.append(try r.bool("profile present") ? try r.readSummary() : nil)
        }
        postIDs = try InternTable(snapshot: &r, section: Section.postIDs.rawValue, what: "post id")
        let postCount = try r.section(Section.posts.rawValue, minimumBytes: 2)
        guard postCount == postIDs.count else { throw r.corrupted("\(postCount) posts, the post table holds \(postIDs.count)") }
        postOwners.reserveCapacity(postCount)
        postFlags.reserveCapacity(postCount)
        for _ in 0..<postCount {
            let owner = try r.unsigned("post username id", max: usernameLimit)
            guard owner < view.usernames.count else { throw r.corrupted("post username id \(owner) is not a username") }
            let flags = try r.byte("post flags")
            guard flags & ~3 == 0, flags != 0 else { throw r.corrupted("post flags \(flags) are not valid") }
            postOwners.append(UInt32(owner))
            postFlags.append(flags)
        }
        let walletCount = try r.section(Section.wallets.rawValue, minimumBytes: 5)
        guard walletCount == view.users.count else { throw r.corrupted("\(walletCount) wallets, the user table holds \(view.users.count)") }
        for user in 0..<walletCount {
            var wallet = WalletSummary()
            wallet.balance = try r.signed("balance")
            wallet.totalGranted = try r.signed("total granted")
            wallet.totalSpent = try r.signed("total spent")
            wallet.position = try r.unsigned("wallet position")
            let count = try r.count("movements of a wallet", minimumBytes: 6)
            guard count <= WalletSummary.recentLimit else { throw r.corrupted("wallet of user \(user) keeps \(count) movements, at most \(WalletSummary.recentLimit)") }
            wallet.movements.reserveCapacity(count)
            for _ in 0..<count {
                let kind = try r.choice(WalletSummary.Kind.self, "movement kind")
                let position = try r.unsigned("movement position")
                if let last = wallet.movements.last, last.position >= position { throw r.corrupted("movements of user \(user) are not in log order") }
                let (amount, at, after) = (try r.signed("movement amount"), try r.signed("movement recorded at"), try r.signed("balance after"))
                var reason: String?
                var username: UInt32 = 0
                if kind == .grant {
                    reason = try r.string("grant reason")
                } else {
                    let id = try r.unsigned("movement username id", max: usernameLimit)
                    guard id < view.usernames.count else { throw r.corrupted("movement username id \(id) is not a username") }
                    username = UInt32(id)
                }
                wallet.movements.append(.init(kind: kind, position: position, amount: amount, recordedAt: at, balanceAfter: after,
                                              reason: reason, username: username))
            }
            if let last = wallet.movements.last, last.position != wallet.position {
                throw r.corrupted("wallet of user \(user) is at position \(wallet.position), its last movement at \(last.position)")
            }
            view.wallets.append(wallet)
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
