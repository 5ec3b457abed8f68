import Histogram
@testable import Projections
import Testing

/// The series' cached latency summaries are the summaries of the histograms as they are now:
/// equal to one computed afresh, and never the old one once the hour has recorded more.
@Suite struct LatencySummaryCacheTests {
    @Test func aCachedSummaryIsTheFreshOneAndFollowsNewRecordings() {
        let cache = LatencySummaryCache()
        var histogram = MetricsProjection.histogram()
        for value in [3, 5, 8, 13, 21, 34, 55, 89, 144, 233] as [UInt64] { _ = histogram.record(value) }
        let hour: Int64 = 1_790_000_000_000_000
        let first = cache.summary(of: histogram, hour: hour, kind: .search)
        #expect(first == LatencySummary(histogram))
        #expect(cache.summary(of: histogram, hour: hour, kind: .search) == first)
        #expect(cache.count == 1)

        // One more recording, even of a value already seen, is another histogram.
        _ = histogram.record(3)
        let second = cache.summary(of: histogram, hour: hour, kind: .search)
        #expect(second == LatencySummary(histogram))
        #expect(second.count == first.count + 1)
        // A value above the old maximum moves the p99 and the max.
        for _ in 0..<50 { _ = histogram.record(9_000) }
        let third = cache.summary(of: histogram, hour: hour, kind: .search)
        #expect(third == LatencySummary(histogram) && third.p99 != first.p99 && third.max != first.max)
        // Another kind or hour with the same counts is its own entry.
        _ = cache.summary(of: histogram, hour: hour, kind: .analysis)
        _ = cache.summary(of: histogram, hour: hour + 3_600_000_000, kind: .search)
        #expect(cache.count == 5)
    }

    @Test func aFullCacheStartsAgainRatherThanGrow() {
        let cache = LatencySummaryCache()
        var histogram = MetricsProjection.histogram()
        _ = histogram.record(7)
        for hour in 0..<(LatencySummaryCache.capacity + 10) {
            _ = cache.summary(of: histogram, hour: Int64(hour), kind: .cdn)
        }
        #expect(cache.count <= LatencySummaryCache.capacity)
        #expect(cache.count == 10)
    }
}
