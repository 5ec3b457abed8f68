public import EventLog
public import Events
import Histogram

/// Latency distributions, gauges and transitions the metrics view keeps besides its buckets.
public struct LatencySummary: Sendable, Hashable, Codable {
    public var count: UInt64
    public var p50: UInt64
    public var p90: UInt64
    public var p99: UInt64
    public var max: UInt64

    init(_ histogram: Histogram<UInt64>) {
        count = histogram.totalCount
        p50 = count == 0 ? 0 : histogram.valueAtPercentile(50)
        p90 = count == 0 ? 0 : histogram.valueAtPercentile(90)
        p99 = count == 0 ? 0 : histogram.valueAtPercentile(99)
        max = count == 0 ? 0 : histogram.max
    }
}

public enum LatencyKind: Int, Sendable, Hashable, CaseIterable, Codable {
    case search, analysis, cdn
}

/// One component's latest health sample.
public struct HealthGauge: Sendable, Hashable, Codable {
    public var component: String
    public var status: HealthStatus
    public var memoryPct: Double
    public var cpuPct: Double
    public var diskPct: Double
    public var latencyMs: Double
    public var sampledAt: Int64

    enum CodingKeys: String, CodingKey {
        case component, status, memoryPct = "memory_pct", cpuPct = "cpu_pct", diskPct = "disk_pct", latencyMs = "latency_ms",
             sampledAt = "sampled_at_us"
    }
}

public struct BreakerTransition: Sendable, Hashable, Codable {
    public var component: String
    public var state: BreakerState
    public var reason: String
    /// Event time, µs since 1970 UTC.
    public var at: Int64
    public var position: LogPosition

    enum CodingKeys: String, CodingKey { case component, state, reason, at = "at_us", position }
}

/// The metrics view: per-minute buckets (last 24 h of event time), per-hour buckets (last
/// 30 days), latency histograms (all time and per hour), health gauges, breaker transitions.
/// "Now" is the newest event time in the log, never the wall clock.
public struct MetricsProjection: PayloadFieldsProjection {
    public static let name = "metrics"
    public static let version = 1
    public typealias View = MetricsProjection

    static let minute: Int64 = 60_000_000
    static let hour: Int64 = 3_600_000_000
    /// Durations are recorded in ms up to one day; longer values are clamped to it.
    static let highestLatencyMs: UInt64 = 86_400_000
    public static let recentTransitionsKept = 100

    var minutes = BucketRing(width: minute, count: 24 * 60)
    var hours = BucketRing(width: hour, count: 30 * 24)
    /// All-time latency, by `LatencyKind`.
    var latency: [Histogram<UInt64>] = LatencyKind.allCases.map { _ in MetricsProjection.histogram() }
    /// Per-hour latency for the hours in `hours`, keyed by hour start then kind; hours not
    /// being recorded into are packed (`HourHistogram`).
    var hourlyLatency: [Int64: [HourHistogram]] = [:]
    /// The hours of `hourlyLatency` whose histograms may be whole (recorded into since the
    /// last pack): packed when a new hour starts, so that one or two hours are whole at once.
    var recordingHours: [Int64] = []
    public internal(set) var gauges: [String: HealthGauge] = [:]
    public internal(set) var transitions: [BreakerTransition] = []
    public internal(set) var transitionCount: Int64 = 0
    /// Newest event time folded, µs.
    public internal(set) var newestEventTime: Int64?

    public init() {}

    static func histogram() -> Histogram<UInt64> {
        Histogram<UInt64>(highestTrackableValue: highestLatencyMs, numberOfSignificantValueDigits: .two)
    }

    @inline(__always)
    public mutating func fold(_ fields: PayloadFields, at stamp: EventStamp) {
        let at = stamp.recordedAt
        switch fields {
        case .creditsGranted, .profileRefreshed:
            newestEventTime = max(newestEventTime ?? at, at)
        case .creatorSearched(_, let servedFrom, let durationMs):
            newestEventTime = max(newestEventTime ?? at, at)
            count(at) {
                $0.searches += 1
                if servedFrom == .cache { $0.cacheHits += 1 }
            }
            record(.search, durationMs, at)
        case .profileUnlocked(_, _, let spent):
            newestEventTime = max(newestEventTime ?? at, at)
            count(at) {
                $0.unlocks += 1
                $0.creditsSpent += spent
            }
        case .postAnalysisCompleted(_, _, let durationMs):
            newestEventTime = max(newestEventTime ?? at, at)
            count(at) { $0.analysesOK += 1 }
            record(.analysis, durationMs, at)
        case .postAnalysisFailed(_, _, let durationMs):
            newestEventTime = max(newestEventTime ?? at, at)
            count(at) { $0.analysesFailed += 1 }
            record(.analysis, durationMs, at)
        case .cdnJobQueued(let priority, _):
            newestEventTime = max(newestEventTime ?? at, at)
            count(at) { $0.countCdn(priority, .queued) }
        case .cdnJobSucceeded(let priority, let durationMs):
            newestEventTime = max(newestEventTime ?? at, at)
            count(at) { $0.countCdn(priority, .succeeded) }
            record(.cdn, durationMs, at)
        case .cdnJobFailed(let priority, let durationMs):
            newestEventTime = max(newestEventTime ?? at, at)
            count(at) { $0.countCdn(priority, .failed) }
            record(.cdn, durationMs, at)
        case .decoded(let domain):
            apply(domain, at: stamp)
        }
    }

    public mutating func apply(_ domain: DomainEvent, of event: RecordedEvent) { apply(domain, at: event.stamp) }

    mutating func apply(_ domain: DomainEvent, at stamp: EventStamp) {
        let at = stamp.recordedAt
        newestEventTime = max(newestEventTime ?? at, at)
        switch domain {
        case .creatorSearched(let e):
            count(at) {
                $0.searches += 1
                if e.servedFrom == .cache { $0.cacheHits += 1 }
            }
            record(.search, e.durationMs, at)
        case .profileUnlocked(let e):
            count(at) {
                $0.unlocks += 1
                $0.creditsSpent += e.creditsSpent
            }
        case .postAnalysisCompleted(let e):
            count(at) { $0.analysesOK += 1 }
            record(.analysis, e.durationMs, at)
        case .postAnalysisFailed(let e):
            count(at) { $0.analysesFailed += 1 }
            record(.analysis, e.durationMs, at)
        case .cdnJobQueued(let e):
            count(at) { $0.countCdn(e.priority, .queued) }
        case .cdnJobSucceeded(let e):
            count(at) { $0.countCdn(e.priority, .succeeded) }
            record(.cdn, e.durationMs, at)
        case .cdnJobFailed(let e):
            count(at) { $0.countCdn(e.priority, .failed) }
            record(.cdn, e.durationMs, at)
        case .healthSampled(let e):
            if let current = gauges[e.component], current.sampledAt > at { return }
            gauges[e.component] = HealthGauge(
                component: e.component, status: e.status, memoryPct: e.memoryPct, cpuPct: e.cpuPct,
                diskPct: e.diskPct, latencyMs: e.latencyMs, sampledAt: at
            )
        case .circuitBreakerChanged(let e):
            transitionCount += 1
            transitions.append(BreakerTransition(component: e.component, state: e.state, reason: e.reason, at: at, position: stamp.position))
            if transitions.count > Self.recentTransitionsKept { transitions.removeFirst(transitions.count - Self.recentTransitionsKept) }
        case .creditsGranted, .profileRefreshed:
            return
        }
    }

    private mutating func count(_ at: Int64, _ body: (inout MetricsBucket) -> Void) {
        minutes.update(at: at, body)
        hours.update(at: at, body)
    }

    private mutating func record(_ kind: LatencyKind, _ durationMs: Int, _ at: Int64) {
        let value = UInt64(clamping: max(0, durationMs))
        let clamped = min(value, Self.highestLatencyMs)
        _ = latency[kind.rawValue].record(clamped)
        let hour = hours.start(of: at)
        guard hour > hours.newest - Self.hour * Int64(hours.buckets.count) else { return }
        if hourlyLatency[hour] == nil {
            packRecordingHours()
            hourlyLatency[hour] = LatencyKind.allCases.map { _ in HourHistogram() }
            // Drop hours that left the 30-day window.
            let oldest = hours.newest - Self.hour * Int64(hours.buckets.count - 1)
            if hourlyLatency.count > hours.buckets.count { hourlyLatency = hourlyLatency.filter { $0.key >= oldest } }
        }
        if recordingHours.last != hour, !recordingHours.contains(hour) { recordingHours.append(hour) }
        hourlyLatency[hour]![kind.rawValue].record(clamped)
    }

    /// Packs every hour recorded into since the last call (a late event unpacks an old hour
    /// until the next new hour starts).
    private mutating func packRecordingHours() {
        for hour in recordingHours {
            for kind in LatencyKind.allCases { hourlyLatency[hour]?[kind.rawValue].pack() }
        }
        recordingHours.removeAll(keepingCapacity: true)
    }

    public func makeView() -> MetricsProjection { self }

    // MARK: - Reading

    /// Minute buckets of the last 24 h of event time, oldest first.
    public var minuteBuckets: [MetricsBucket] { minutes.window(last: minutes.buckets.count) }

    /// Hour buckets of the last `hours` hours of event time (at most 720), oldest first.
    public func hourBuckets(last count: Int) -> [MetricsBucket] { hours.window(last: max(1, count)) }

    public func latency(_ kind: LatencyKind) -> LatencySummary { LatencySummary(latency[kind.rawValue]) }

    /// Latency over the last `hours` hours of event time.
    public func latency(_ kind: LatencyKind, lastHours count: Int) -> LatencySummary {
        var merged = Self.histogram()
        for bucket in hourBuckets(last: count) {
            hourlyLatency[bucket.start]?[kind.rawValue].add(to: &merged)
        }
        return LatencySummary(merged)
    }

    /// Totals over the last `hours` hours of event time.
    public func totals(lastHours count: Int) -> MetricsBucket {
        var total = MetricsBucket(start: hourBuckets(last: count).first?.start ?? 0)
        for bucket in hourBuckets(last: count) { total.add(bucket) }
        return total
    }

    /// Alerts from each component's latest sample against `thresholds`.
    public func alerts(thresholds: AlertThresholds = AlertThresholds()) -> [Alert] {
        gauges.values.sorted { $0.component < $1.component }.flatMap { thresholds.alerts(for: $0) }
    }
}
