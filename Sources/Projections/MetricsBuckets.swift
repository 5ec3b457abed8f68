public import Events

/// Counts of one minute or one hour of event time.
public struct MetricsBucket: Sendable, Hashable, Codable {
    /// Start of the bucket, µs since 1970 UTC.
    public var start: Int64
    public var searches: Int64 = 0
    public var cacheHits: Int64 = 0
    public var unlocks: Int64 = 0
    public var creditsSpent: Int64 = 0
    public var analysesOK: Int64 = 0
    public var analysesFailed: Int64 = 0
    /// CDN jobs by priority (index of `CdnPriority.allCases`) and outcome (`CdnOutcome`).
    public var cdn: [Int64] = Array(repeating: 0, count: CdnPriority.allCases.count * CdnOutcome.allCases.count)

    public init(start: Int64) { self.start = start }

    public func cdn(_ priority: CdnPriority, _ outcome: CdnOutcome) -> Int64 {
        cdn[priority.index * CdnOutcome.allCases.count + outcome.rawValue]
    }

    mutating func countCdn(_ priority: CdnPriority, _ outcome: CdnOutcome) {
        cdn[priority.index * CdnOutcome.allCases.count + outcome.rawValue] += 1
    }

    public mutating func add(_ other: MetricsBucket) {
        searches += other.searches
        cacheHits += other.cacheHits
        unlocks += other.unlocks
        creditsSpent += other.creditsSpent
        analysesOK += other.analysesOK
        analysesFailed += other.analysesFailed
        for i in cdn.indices { cdn[i] += other.cdn[i] }
    }

    enum CodingKeys: String, CodingKey {
        case start, searches, cacheHits = "cache_hits", unlocks, creditsSpent = "credits_spent",
             analysesOK = "analyses_ok", analysesFailed = "analyses_failed", cdn
    }
}

public enum CdnOutcome: Int, Sendable, Hashable, CaseIterable, Codable {
    case queued, succeeded, failed
}

/// A fixed ring of buckets of `width` µs: the newest `count` buckets of event time. An
/// event older than the ring's window is not counted (it would evict newer data).
struct BucketRing: Sendable, Hashable {
    let width: Int64
    var buckets: BucketSlots
    /// The newest bucket start seen.
    var newest: Int64 = .min

    init(width: Int64, count: Int) {
        self.width = width
        buckets = BucketSlots(count: count)
    }

    /// Floor division: bucket starts are multiples of `width`, also before 1970.
    func start(of time: Int64) -> Int64 {
        let q = time / width
        return (time % width < 0 ? q - 1 : q) * width
    }

    func slot(_ start: Int64) -> Int {
        let n = Int64(buckets.count)
        let s = (start / width) % n
        return Int(s < 0 ? s + n : s)
    }

    /// The bucket for `time`, created (replacing an expired one) when needed; nil when the
    /// time lies before the window.
    mutating func update(at time: Int64, _ body: (inout MetricsBucket) -> Void) {
        let start = start(of: time)
        if newest != .min, start <= newest - width * Int64(buckets.count) { return }
        newest = max(newest, start)
        let slot = slot(start)
        if buckets[slot]?.start != start { buckets[slot] = MetricsBucket(start: start) }
        body(&buckets[slot]!)
    }

    /// Buckets of the newest `last` widths (relative to the newest event time), oldest first.
    func window(last: Int) -> [MetricsBucket] {
        guard newest != .min else { return [] }
        let from = newest - width * Int64(min(last, buckets.count) - 1)
        return buckets.compactMap { $0 }.filter { $0.start >= from && $0.start <= newest }.sorted { $0.start < $1.start }
    }
}

/// A ring's slots in chunks of 64. The view is published (copied) after every batch while the
/// fold keeps counting, so a flat array was copied whole (1,440 + 720 buckets, a retain for
/// each bucket's CDN counts) by the first count after each publish; now one chunk is.
struct BucketSlots: RandomAccessCollection, MutableCollection, Sendable, Hashable {
    private static let shift = 6
    private static let mask = (1 << shift) - 1

    private var chunks: [ContiguousArray<MetricsBucket?>]
    let count: Int

    init(count: Int) {
        self.count = count
        chunks = stride(from: 0, to: count, by: 1 << Self.shift).map { ContiguousArray(repeating: nil, count: Swift.min(1 << Self.shift, count - $0)) }
    }

    var startIndex: Int { 0 }
    var endIndex: Int { count }

    /// A slot outside the ring traps in the chunk arrays' own bounds checks: every chunk holds
    /// exactly its slots.
    subscript(slot: Int) -> MetricsBucket? {
        @inline(__always) get { chunks[slot &>> Self.shift][slot & Self.mask] }
        @inline(__always) _modify { yield &chunks[slot &>> Self.shift][slot & Self.mask] }
    }
}
