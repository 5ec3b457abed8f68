import EventLog
import Events

#if canImport(Glibc)
import Glibc
#endif

// The pieces of `DomainWorkload`'s simulated world: who the users and profiles are, how
// popular each is, the monitored components, the queue of follow-ups due later, and the
// vocabularies the events draw from.

extension DomainWorkload {
    static func priority(_ u: Double) -> CdnPriority { u < 0.05 ? .critical : u < 0.25 ? .high : u < 0.70 ? .medium : .low }
    static func purchase(_ u: Double) -> Int64 { u < 0.3 ? 5 : u < 0.6 ? 10 : u < 0.8 ? 25 : u < 0.95 ? 50 : 100 }

    static func language(_ u: Double) -> String {
        languages[languageShares.firstIndex { u < $0 } ?? languages.count - 1]
    }

    static let userKey: UInt64 = 1 << 56, profileKey: UInt64 = 2 << 56, cdnKey: UInt64 = 3 << 56, healthKey: UInt64 = 4 << 56
    static let billing = "service:billing", scraper = "service:scraper", cdnQueue = "service:cdn-queue"
    static let monitor = "service:monitor", breakerActor = "service:api-gateway"
    static let aiWorkers = (1...4).map { "service:ai-worker-\($0)" }
    static let cdnWorkers = (1...3).map { "service:cdn-worker-\($0)" }
    static let jobKinds = ["avatar", "post_image", "thumbnail", "story_frame"]
    static let languages = ["en", "es", "pt", "fr", "de", "it", "ar", "hi", "ja"]
    /// Cumulative shares of `languages` (the last takes the rest).
    static let languageShares = [0.45, 0.60, 0.72, 0.78, 0.83, 0.87, 0.92, 0.96]
    static let analysisErrors = [
        "post is no longer available", "model timeout after 60s", "image could not be decoded",
        "rate limited by upstream model", "unsupported media type: video",
    ]
    static let cdnErrors = [
        "image could not be decoded", "upstream returned 503", "origin timeout after 30s",
        "connection reset by peer", "storage quota exceeded",
    ]

    /// Users: UUID-like ids (the JWT subjects), their streams and actors; a few very active.
    struct Population {
        let ids: [String]
        let streams: [String]
        let actors: [String]
        private let popularity: ZipfSampler

        init(count: Int, rng: inout SplitMix64) {
            var ids = [String]()
            ids.reserveCapacity(count)
            for _ in 0..<count {
                let a = DomainWorkload.hex(rng.next(), digits: 16), b = DomainWorkload.hex(rng.next(), digits: 16)
                ids.append("\(a.prefix(8))-\(a.dropFirst(8).prefix(4))-4\(a.dropFirst(13))-\(b.prefix(4))-\(b.dropFirst(4))")
            }
            self.ids = ids
            streams = ids.map { "user-" + $0 }
            actors = ids.map { "user:" + $0 }
            popularity = ZipfSampler(count: count, exponent: 0.9)
        }

        func pick(_ u: Double) -> Int { popularity.rank(u) }
    }

    /// Profiles: distinct usernames valid under Instagram's rules, index = popularity rank;
    /// and names nobody has, for searches that find nothing.
    struct Catalogue {
        static let categories = [
            "fitness", "travel", "food", "beauty", "fashion", "gaming", "music", "lifestyle", "tech", "pets", "automotive", "home",
        ]
        static let prefixes = [
            "fit", "travel", "chef", "glow", "luxe", "nova", "zen", "pixel", "vibe", "urban", "wild", "daily",
            "real", "its", "the", "hey", "mr", "miss", "studio", "planet", "simply", "just",
        ]
        static let stems = [
            "anna", "marco", "bayann", "sofia", "lucas", "maria", "leo", "nina", "kai", "zoe", "eats", "life", "style",
            "journey", "lab", "beauty", "gamer", "beats", "moves", "looks", "home", "garden", "pets", "cars", "coffee", "yoga",
        ]

        let names: [String]
        let streams: [String]
        let ghosts: [String]
        private let categories: [UInt8]
        private let popularity: ZipfSampler

        init(count: Int, rng: inout SplitMix64) {
            var taken = Set<String>()
            taken.reserveCapacity(count + count / 10 + 1)
            var names = [String]()
            names.reserveCapacity(count + count / 10 + 1)
            while names.count < count + max(1, count / 10) {
                let name = Self.username(&rng)
                if taken.insert(name).inserted { names.append(name) }
            }
            self.names = Array(names[..<count])
            ghosts = Array(names[count...])
            streams = self.names.map { "profile-" + $0 }
            categories = (0..<count).map { _ in UInt8(rng.next() % UInt64(Self.categories.count)) }
            popularity = ZipfSampler(count: count, exponent: 1.0)
        }

        func pick(_ u: Double) -> Int { popularity.rank(u) }
        func category(_ p: Int) -> String { Self.categories[Int(categories[p])] }

        /// `prefix[sep]stem[digits]`: at most 6 + 1 + 7 + 4 = 18 of a-z 0-9 . _
        static func username(_ rng: inout SplitMix64) -> String {
            var name = prefixes[Int(rng.next() % UInt64(prefixes.count))]
            switch rng.next() % 4 {
            case 1: name += "."
            case 2: name += "_"
            default: break
            }
            name += stems[Int(rng.next() % UInt64(stems.count))]
            if rng.next() % 10 >= 3 { name += String(1 + rng.next() % 9_999) }
            return name
        }
    }

    /// A monitored component: its usual load, and the incident and breaker it is in.
    struct Component {
        let name: String
        let stream: String
        let memory: Double
        let cpu: Double
        let latency: Double
        let diskBase: Double
        /// Percentage points per 30 s sample; a cleanup resets the disk before it fills.
        let diskGrowth: Double
        var disk: Double
        var incident: HealthStatus = .ok
        var ticksLeft = 0
        var reason = ""
        /// The state after every scheduled transition; no new trip until the last one is out.
        var breaker: BreakerState = .closed
        var breakerBusyUntil: Int64 = 0

        init(_ name: String, memory: Double, cpu: Double, latency: Double, disk: Double, diskPerDay: Double) {
            self.name = name
            stream = "health-" + name
            self.memory = memory
            self.cpu = cpu
            self.latency = latency
            diskBase = disk
            diskGrowth = diskPerDay / 2_880
            self.disk = disk
        }

        static func fleet() -> [Component] {
            [
                Component("api", memory: 45, cpu: 35, latency: 45, disk: 38, diskPerDay: 0.2),
                Component("database", memory: 55, cpu: 42, latency: 6, disk: 72, diskPerDay: 1.2),
                Component("ai-worker", memory: 52, cpu: 55, latency: 1_200, disk: 30, diskPerDay: 0.3),
                Component("cdn", memory: 40, cpu: 30, latency: 80, disk: 55, diskPerDay: 0.7),
                Component("redis", memory: 50, cpu: 20, latency: 1.5, disk: 22, diskPerDay: 0.1),
            ]
        }
    }

    /// A CDN job between its transitions.
    struct Job {
        var id: String
        var stream: String
        var key: UInt64
        var priority: CdnPriority
        var kind: String
        var username: String?
        var attempt: Int
        var correlation: String
    }

    /// Something due at a later simulated time.
    enum Pending {
        case healthTick
        case deploy
        case breaker(Int, BreakerState, String)
        case cdnOutcome(Job)
        case queue(Job)
        case recovery(Int, String, String)
        case refresh(Int, String)
        case unlock(Int, Int, String)
    }

    /// A binary min-heap on (time, insertion order), so equal times pop in a fixed order.
    struct PendingQueue {
        private var heap: [(time: Int64, seq: UInt64, item: Pending)] = []
        private var seq: UInt64 = 0

        var nextTime: Int64? { heap.first?.time }

        mutating func push(_ time: Int64, _ item: Pending) {
            seq += 1
            heap.append((time, seq, item))
            var child = heap.count - 1
            while child > 0 {
                let parent = (child - 1) / 2
                guard Self.before(heap[child], heap[parent]) else { break }
                heap.swapAt(child, parent)
                child = parent
            }
        }

        mutating func pop() -> (Int64, Pending) {
            let top = heap[0]
            let last = heap.removeLast()
            if !heap.isEmpty {
                heap[0] = last
                var parent = 0
                while true {
                    let left = 2 * parent + 1, right = left + 1
                    var first = parent
                    if left < heap.count && Self.before(heap[left], heap[first]) { first = left }
                    if right < heap.count && Self.before(heap[right], heap[first]) { first = right }
                    if first == parent { break }
                    heap.swapAt(parent, first)
                    parent = first
                }
            }
            return (top.time, top.item)
        }

        private static func before(_ a: (time: Int64, seq: UInt64, item: Pending), _ b: (time: Int64, seq: UInt64, item: Pending)) -> Bool {
            a.time < b.time || (a.time == b.time && a.seq < b.seq)
        }
    }

    /// A uniform double in 0..<1.
    static func unit(_ rng: inout SplitMix64) -> Double { Double(rng.next() >> 11) * 0x1p-53 }

    /// SplitMix64's finaliser: a bijection, so distinct inputs give distinct ids.
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The low `digits` hex digits of `value`, lowercase, without allocating for short ones.
    static func hex(_ value: UInt64, digits: Int) -> String {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: digits) { buffer in
            for i in 0..<digits {
                let nibble = UInt8(truncatingIfNeeded: value >> (4 * UInt64(digits - 1 - i))) & 0xF
                buffer[i] = nibble < 10 ? 0x30 + nibble : 0x57 + nibble
            }
            return String(decoding: buffer, as: UTF8.self)
        }
    }
}
