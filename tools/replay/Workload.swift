import EventLog

#if canImport(Glibc)
import Glibc
#endif

/// Zipf-distributed ranks over `count` items: a few popular users and profiles, a long tail.
struct ZipfSampler {
    private let cdf: [Double]

    init(count: Int, exponent: Double = 1.1) {
        var cdf = [Double]()
        cdf.reserveCapacity(count)
        var sum = 0.0
        for rank in 1...count {
            sum += 1.0 / pow(Double(rank), exponent)
            cdf.append(sum)
        }
        self.cdf = cdf.map { $0 / sum }
    }

    func sample(_ rng: inout SplitMix64) -> Int {
        rank(Double(rng.next() >> 11) / Double(1 << 53))
    }

    /// The rank (0 = most popular) for a uniform `u` in 0..<1: the inverse CDF.
    func rank(_ u: Double) -> Int {
        var low = 0
        var high = cdf.count - 1
        while low < high {
            let mid = (low + high) / 2
            if cdf[mid] <= u { low = mid + 1 } else { high = mid }
        }
        return low
    }
}

/// Appends shaped like the creator-analytics product: users searching and unlocking
/// profiles, workers reporting post analyses and CDN jobs, monitors sampling health.
/// Payloads are 20–200 bytes of compact binary fields, as the domain codec writes them.
struct WorkloadGenerator {
    private var rng: SplitMix64
    private let users: [String]
    private let usernames: [String]
    private let userPick: ZipfSampler
    private let profilePick: ZipfSampler
    private static let components = ["database", "api", "ai-worker", "cdn", "cache", "search"]
    private static let categories = ["fitness", "travel", "food", "fashion", "tech", "music", "beauty", "gaming"]
    private static let languages = ["en", "es", "pt", "de", "fr", "it", "ar", "hi"]
    private static let kinds = ["avatar", "post_image", "thumbnail"]
    private static let priorities: [UInt8] = [0, 1, 2, 3]

    init(seed: UInt64, userCount: Int = 20_000, profileCount: Int = 50_000) {
        var rng = SplitMix64(seed: seed)
        users = (0..<userCount).map { _ in Self.uuid(&rng) }
        let syllables = ["fit", "bay", "ann", "lux", "trip", "chef", "glow", "mix", "nova", "zen", "pix", "vibe"]
        usernames = (0..<profileCount).map { i in
            let a = syllables[Int(rng.next() % UInt64(syllables.count))]
            let b = syllables[Int(rng.next() % UInt64(syllables.count))]
            return "\(a)\(i % 3 == 0 ? "." : "_")\(b)\(i)"
        }
        userPick = ZipfSampler(count: userCount)
        profilePick = ZipfSampler(count: profileCount)
        self.rng = rng
    }

    /// One append's worth of events for one stream.
    mutating func nextAppend(events count: Int) -> StreamAppend {
        let correlation = hex(rng.next())
        let roll = rng.next() % 100
        if roll < 55 {
            let user = users[userPick.sample(&rng)]
            let events = (0..<count).map { _ in userEvent(user: user, correlation: correlation) }
            return StreamAppend(stream: "user-\(user)", events: events)
        } else if roll < 85 {
            let username = usernames[profilePick.sample(&rng)]
            let events = (0..<count).map { _ in analysisEvent(username: username, correlation: correlation) }
            return StreamAppend(stream: "profile-\(username)", events: events)
        } else if roll < 95 {
            let job = hex(rng.next())
            let events = (0..<count).map { _ in cdnEvent(job: job, correlation: correlation) }
            return StreamAppend(stream: "cdn-\(job)", events: events)
        } else {
            let component = Self.components[Int(rng.next() % UInt64(Self.components.count))]
            let events = (0..<count).map { _ in healthEvent(component: component, correlation: correlation) }
            return StreamAppend(stream: "health-\(component)", events: events)
        }
    }

    private mutating func userEvent(user: String, correlation: String) -> ProposedEvent {
        var p = PayloadWriter()
        let kind = rng.next() % 10
        p.string(user)
        let type: String
        if kind < 7 {
            type = "CreatorSearched"
            p.string(usernames[profilePick.sample(&rng)])
            p.byte(UInt8(rng.next() % 2))  // served_from
            p.varint(rng.next() % 3_000)  // duration_ms
            p.byte(UInt8(rng.next() % 10 == 0 ? 0 : 1))  // found
        } else if kind < 9 {
            type = "ProfileUnlocked"
            p.string(usernames[profilePick.sample(&rng)])
            p.varint(1)
        } else {
            type = "CreditsGranted"
            p.varint(10 + rng.next() % 90)
            p.string("purchase")
        }
        return ProposedEvent(type: type, actor: "user:\(user)", correlationID: correlation, payload: p.bytes)
    }

    private mutating func analysisEvent(username: String, correlation: String) -> ProposedEvent {
        var p = PayloadWriter()
        p.string(username)
        p.string(String(3_000_000_000_000_000_000 + rng.next() % 100_000_000_000_000_000))  // post id
        if rng.next() % 20 == 0 {
            p.string(["timeout after 30s", "model overloaded, retry later", "image could not be decoded"][Int(rng.next() % 3)])
            p.varint(rng.next() % 30_000)
            return ProposedEvent(type: "PostAnalysisFailed", actor: "service:ai-worker", correlationID: correlation, payload: p.bytes)
        }
        p.fixed16(UInt16(truncatingIfNeeded: rng.next()))  // sentiment, fixed point
        p.string(Self.languages[Int(rng.next() % UInt64(Self.languages.count))])
        p.string(Self.categories[Int(rng.next() % UInt64(Self.categories.count))])
        p.varint(200 + rng.next() % 5_000)
        return ProposedEvent(type: "PostAnalysisCompleted", actor: "service:ai-worker", correlationID: correlation, payload: p.bytes)
    }

    private mutating func cdnEvent(job: String, correlation: String) -> ProposedEvent {
        var p = PayloadWriter()
        p.string(job)
        p.byte(Self.priorities[Int(rng.next() % 4)])
        p.string(Self.kinds[Int(rng.next() % 3)])
        let roll = rng.next() % 10
        let type: String
        if roll < 4 {
            type = "CdnJobQueued"
            p.string(usernames[profilePick.sample(&rng)])
        } else if roll < 9 {
            type = "CdnJobSucceeded"
            p.varint(rng.next() % 2_000)
            p.varint(10_000 + rng.next() % 500_000)
        } else {
            type = "CdnJobFailed"
            p.varint(rng.next() % 2_000)
            p.string("upstream returned 503")
            p.varint(1 + rng.next() % 3)
        }
        return ProposedEvent(type: type, actor: "service:cdn", correlationID: correlation, payload: p.bytes)
    }

    private mutating func healthEvent(component: String, correlation: String) -> ProposedEvent {
        var p = PayloadWriter()
        p.string(component)
        p.byte(UInt8(rng.next() % 20 == 0 ? 1 : 0))
        for _ in 0..<3 { p.fixed16(UInt16(rng.next() % 10_000)) }  // memory, cpu, disk (basis points)
        p.varint(rng.next() % 200)
        return ProposedEvent(type: "HealthSampled", actor: "service:monitor", correlationID: correlation, payload: p.bytes)
    }

    private static func uuid(_ rng: inout SplitMix64) -> String {
        let a = hexDigits(rng.next(), 16)
        let b = hexDigits(rng.next(), 16)
        let s = Array(a + b)
        return String(s[0..<8]) + "-" + String(s[8..<12]) + "-" + String(s[12..<16]) + "-" + String(s[16..<20]) + "-" + String(s[20..<32])
    }

    private func hex(_ value: UInt64) -> String { Self.hexDigits(value, 16) }

    private static func hexDigits(_ value: UInt64, _ count: Int) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, count - digits.count)) + digits
    }
}

/// Compact binary fields, the shape the domain codec gives payloads.
struct PayloadWriter {
    var bytes: [UInt8] = []
    mutating func byte(_ value: UInt8) { bytes.append(value) }
    mutating func fixed16(_ value: UInt16) {
        bytes.append(UInt8(value & 0xFF))
        bytes.append(UInt8(value >> 8))
    }
    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }
    mutating func string(_ value: String) {
        varint(UInt64(value.utf8.count))
        bytes.append(contentsOf: value.utf8)
    }
}
