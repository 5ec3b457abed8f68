import EventLog
import Events
import Testing
@testable import API
@testable import Projections

/// The unlocked page is written straight into bytes; these check it against the
/// `JSONValue` tree the route built before, member for member, on random pages.
@Suite struct UnlockedPageBodyTests {
    /// The page as a `JSONValue` tree: the route's body before it was written directly.
    static func tree(_ page: UnlockedProfilesView.Page) -> [UInt8] {
        let profiles: [JSONValue] = page.profiles.map { p in
            var summary: [(String, JSONValue)] = []
            if let v = p.profile.followers { summary.append(("followers", .integer(v))) }
            if let v = p.profile.following { summary.append(("following", .integer(v))) }
            if let v = p.profile.postsCount { summary.append(("posts_count", .integer(v))) }
            if let v = p.profile.verified { summary.append(("verified", .bool(v))) }
            if let v = p.profile.category { summary.append(("category", .string(v))) }
            summary.append(("posts_analysed", .integer(Int64(p.profile.postsAnalysed))))
            summary.append(("posts_failed", .integer(Int64(p.profile.postsFailed))))
            return .object(JSONValue.Object([
                ("username", .string(p.username)),
                ("unlocked_at", .string(EventTime.iso8601(micros: p.unlockedAt))),
                ("credits_spent", .integer(p.creditsSpent)),
                ("position", .integer(Int64(p.position))),
                ("profile", .object(JSONValue.Object(summary))),
            ]))
        }
        var bytes: [UInt8] = []
        JSONValue.object(JSONValue.Object([
            ("profiles", .array(profiles)),
            ("next_cursor", page.nextCursor.map { .string($0) } ?? .null),
            ("total", .integer(Int64(page.total))),
        ])).write(to: &bytes)
        return bytes
    }

    /// Text with the characters JSON escapes, and some that it does not.
    static let awkward = ["alice", "", "quote\"d", "back\\slash", "tab\there", "new\nline", "\u{01}ctl", "émoji 🦉", "a/b", "\u{7F}del"]

    static func randomPage(_ rng: inout SplitMix64) -> UnlockedProfilesView.Page {
        func maybe<T>(_ value: T) -> T? { rng.next() % 3 == 0 ? nil : value }
        let count = Int(rng.next() % 22)
        let profiles = (0..<count).map { _ in
            var summary = ProfileSummary()
            summary.followers = maybe(Int64(bitPattern: rng.next()) >> Int64(rng.next() % 64))
            summary.following = maybe(Int64(rng.next() % 10_000))
            summary.postsCount = maybe(Int64(rng.next() % 1_000) - 500)
            summary.verified = maybe(rng.next() % 2 == 0)
            summary.category = maybe(awkward[Int(rng.next() % UInt64(awkward.count))])
            summary.postsAnalysed = Int(rng.next() % 100)
            summary.postsFailed = Int(rng.next() % 5)
            return UnlockedProfile(username: awkward[Int(rng.next() % UInt64(awkward.count))] + String(rng.next() % 1_000),
                                   unlockedAt: Int64(rng.next() % 4_000_000_000_000_000) - 1_000_000_000_000_000,
                                   creditsSpent: Int64(rng.next() % 100),
                                   position: rng.next() % 10_000_000_000, profile: summary)
        }
        return UnlockedProfilesView.Page(profiles: profiles, nextCursor: maybe(String(rng.next() % 1_000_000)), total: count + Int(rng.next() % 50))
    }

    @Test func writesTheSameBytesAsTheTree() {
        var rng = SplitMix64(seed: 0x5eed_0013)
        for _ in 0..<500 {
            let page = Self.randomPage(&rng)
            #expect(UnlockedPageBody.json(page) == Self.tree(page))
        }
    }

    @Test func emptyPage() {
        let page = UnlockedProfilesView.Page(profiles: [], nextCursor: nil, total: 0)
        #expect(String(decoding: UnlockedPageBody.json(page), as: UTF8.self) == #"{"profiles":[],"next_cursor":null,"total":0}"#)
    }
}
