import Commands
import EventLog
import Events
import Foundation
import Synchronization
public import Hummingbird
public import Projections

/// Freshness as every view response carries it, in the body and in headers.
struct FreshnessBody: Encodable {
    var position: LogPosition
    var head: LogPosition
    var lagEvents: UInt64
    var lagSeconds: Double
    var state: String

    init(_ f: Freshness) {
        position = f.position
        head = f.head
        lagEvents = f.lagEvents
        lagSeconds = f.lagSeconds.isFinite ? f.lagSeconds : -1
        state = f.state.rawValue
    }

    enum CodingKeys: String, CodingKey { case position, head, lagEvents = "lag_events", lagSeconds = "lag_seconds", state }
}

/// JSON responses: snake_case bodies, freshness headers on views.
enum JSONResponse {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    static func make(_ body: some Encodable, status: HTTPResponse.Status = .ok, freshness: Freshness? = nil) throws -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let freshness {
            headers[.tallyPosition] = String(freshness.position)
            headers[.tallyLagEvents] = String(freshness.lagEvents)
        }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(body))))
    }
}

extension JSONResponse {
    /// A view response: the content's fields plus `freshness` and `stale`, and the headers.
    static func view<View: Sendable>(_ content: some Encodable, _ read: ViewRead<View>) throws -> Response {
        try make(ViewBody(content: content, freshness: FreshnessBody(read.freshness), stale: read.stale), freshness: read.freshness)
    }

    /// A view response from the view's already encoded JSON object: `freshness` and `stale`
    /// are spliced in, so a view encoded once per position serves every request at it.
    static func view(encoded content: [UInt8], freshness: Freshness, stale: Bool) -> Response {
        var bytes = content
        if bytes.last == UInt8(ascii: "}") { bytes.removeLast() }
        let f = FreshnessBody(freshness)
        let lag = f.lagSeconds == f.lagSeconds.rounded() ? String(Int64(f.lagSeconds)) : String(f.lagSeconds)
        let tail = (bytes.count > 1 ? "," : "") + "\"freshness\":{\"head\":\(f.head),\"lag_events\":\(f.lagEvents),\"lag_seconds\":\(lag),"
            + "\"position\":\(f.position),\"state\":\"\(f.state)\"},\"stale\":\(stale)}"
        bytes.append(contentsOf: tail.utf8)
        let headers: HTTPFields = [
            .contentType: "application/json", .tallyPosition: String(freshness.position), .tallyLagEvents: String(freshness.lagEvents),
        ]
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

/// The last encoding of a view, by the position it was published at.
final class EncodedViewCache: Sendable {
    private let entry = Mutex<(position: LogPosition, bytes: [UInt8])?>(nil)

    func bytes(at position: LogPosition, encode: () throws -> [UInt8]) rethrows -> [UInt8] {
        if let cached = entry.withLock({ $0 }), cached.position == position { return cached.bytes }
        let bytes = try encode()
        entry.withLock { $0 = (position, bytes) }
        return bytes
    }
}

/// A view body: the view's own fields plus `freshness` and `stale`.
struct ViewBody<Content: Encodable>: Encodable {
    var content: Content
    var freshness: FreshnessBody
    var stale: Bool

    func encode(to encoder: any Encoder) throws {
        try content.encode(to: encoder)
        var container = encoder.container(keyedBy: Keys.self)
        try container.encode(freshness, forKey: .freshness)
        try container.encode(stale, forKey: .stale)
    }

    enum Keys: String, CodingKey { case freshness, stale }
}

struct UnlockBody: Encodable {
    var username: String
    var position: LogPosition
    var charged: Int64
    var alreadyUnlocked: Bool
    var balance: Int64
    var replayed: Bool

    init(_ r: UnlockResult) {
        username = r.username
        position = r.position
        charged = r.charged
        alreadyUnlocked = r.alreadyUnlocked
        balance = r.balance
        replayed = r.replayed
    }

    enum CodingKeys: String, CodingKey {
        case username, position, charged, alreadyUnlocked = "already_unlocked", balance, replayed
    }
}

struct SearchBody: Encodable {
    var username: String
    var position: LogPosition
    var unlocked: Bool
    var profile: ProfileSummary?
    /// True when this repeats an earlier search with the same Idempotency-Key: the position
    /// is the first search's and nothing new was written.
    var replayed: Bool
}

/// One page of a user's unlocked profiles, `{"profiles":[…],"next_cursor":…,"total":N}`,
/// written straight into bytes: this is the hottest list read, and the `JSONEncoder`, then a
/// `JSONValue` tree per profile (20–25 % of the route's CPU in `perf`), cost more than the
/// rest of the request. `UnlockedPageBodyTests` checks the bytes against that tree.
enum UnlockedPageBody {
    static func json(_ page: UnlockedProfilesView.Page) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(64 + 256 * page.profiles.count)
        var body = JSONMemberWriter()
        bytes.append(UInt8(ascii: "{"))
        body.key("profiles", &bytes)
        bytes.append(UInt8(ascii: "["))
        for (i, p) in page.profiles.enumerated() {
            if i > 0 { bytes.append(UInt8(ascii: ",")) }
            var o = JSONMemberWriter()
            bytes.append(UInt8(ascii: "{"))
            o.string("username", p.username, &bytes)
            o.time("unlocked_at", micros: p.unlockedAt, &bytes)
            o.integer("credits_spent", p.creditsSpent, &bytes)
            o.integer("position", Int64(p.position), &bytes)
            o.key("profile", &bytes)
            var summary = JSONMemberWriter()
            bytes.append(UInt8(ascii: "{"))
            if let v = p.profile.followers { summary.integer("followers", v, &bytes) }
            if let v = p.profile.following { summary.integer("following", v, &bytes) }
            if let v = p.profile.postsCount { summary.integer("posts_count", v, &bytes) }
            if let v = p.profile.verified { summary.bool("verified", v, &bytes) }
            if let v = p.profile.category { summary.string("category", v, &bytes) }
            summary.integer("posts_analysed", Int64(p.profile.postsAnalysed), &bytes)
            summary.integer("posts_failed", Int64(p.profile.postsFailed), &bytes)
            bytes.append(UInt8(ascii: "}"))
            bytes.append(UInt8(ascii: "}"))
        }
        bytes.append(UInt8(ascii: "]"))
        if let cursor = page.nextCursor { body.string("next_cursor", cursor, &bytes) } else { body.null("next_cursor", &bytes) }
        body.integer("total", Int64(page.total), &bytes)
        bytes.append(UInt8(ascii: "}"))
        return bytes
    }
}

struct BalanceBody: Encodable {
    struct Movement: Encodable {
        var kind: String
        var position: LogPosition
        var amount: Int64
        var recordedAt: String
        var balanceAfter: Int64
        var detail: String
        enum CodingKeys: String, CodingKey {
            case kind, position, amount, recordedAt = "recorded_at", balanceAfter = "balance_after", detail
        }
    }

    var user: String
    var balance: Int64
    var totalGranted: Int64
    var totalSpent: Int64
    var unlocked: Int
    var position: LogPosition
    var recent: [Movement]

    init(user: String, _ w: UnlockedProfilesView.Wallet) {
        self.user = user
        balance = w.balance
        totalGranted = w.totalGranted
        totalSpent = w.totalSpent
        unlocked = w.unlocked
        position = w.position
        recent = w.recent.map {
            Movement(kind: $0.kind.rawValue, position: $0.position, amount: $0.amount, recordedAt: EventTime.iso8601(micros: $0.recordedAt),
                     balanceAfter: $0.balanceAfter, detail: $0.detail)
        }
    }

    enum CodingKeys: String, CodingKey {
        case user, balance, totalGranted = "total_granted", totalSpent = "total_spent", unlocked, position, recent
    }
}

struct PositionsBody: Encodable {
    var position: LogPosition
    var positions: [LogPosition]
    var events: Int
    var replayed: Bool
}
