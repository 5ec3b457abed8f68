import Histogram
import Synchronization

/// Summaries of the metrics view's hourly latency histograms, kept across reads. A summary
/// walks the histogram's counts once per percentile, in the histogram package's generic,
/// unspecialised code (≈ 0.1 ms per hour and kind, most of a 30-day series). A histogram only
/// ever grows by recording, so its count and maximum change whenever it does: a summary
/// keyed by them (with the hour and kind) is the summary of the same histogram, never a stale one.
public final class LatencySummaryCache: Sendable {
    struct Key: Hashable {
        var hour: Int64
        var kind: LatencyKind
        var count: UInt64
        var max: UInt64
    }

    /// 30 days of hours for every kind, twice over; when full it starts again empty.
    public static let capacity = 2 * 30 * 24 * LatencyKind.allCases.count
    private let summaries = Mutex<[Key: LatencySummary]>([:])

    public init() {}

    func summary(of histogram: Histogram<UInt64>, hour: Int64, kind: LatencyKind) -> LatencySummary {
        summary(count: histogram.totalCount, max: histogram.max, hour: hour, kind: kind) { histogram }
    }

    /// An hour's summary; a packed hour is unpacked only when its summary is not cached.
    func summary(of histogram: HourHistogram, hour: Int64, kind: LatencyKind) -> LatencySummary {
        summary(count: histogram.totalCount, max: histogram.max, hour: hour, kind: kind) { histogram.histogram }
    }

    private func summary(count: UInt64, max: UInt64, hour: Int64, kind: LatencyKind, _ histogram: () -> Histogram<UInt64>) -> LatencySummary {
        let key = Key(hour: hour, kind: kind, count: count, max: max)
        if let known = summaries.withLock({ $0[key] }) { return known }
        let summary = LatencySummary(histogram())
        summaries.withLock { table in
            if table.count >= Self.capacity { table.removeAll(keepingCapacity: true) }
            table[key] = summary
        }
        return summary
    }

    var count: Int { summaries.withLock { $0.count } }
}
