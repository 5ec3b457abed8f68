import Events
import Histogram
@testable import Projections
import Testing

/// A packed hour is the histogram it was: unpacked, merged into a window, recorded into
/// again and summarised, it answers as the whole histogram recorded the same values would.
@Suite struct HourHistogramTests {
    /// Latencies spread like the generator's (a few ms to minutes), with repeats, zeros and
    /// values past the view's range (clamped by the view, recorded as given here).
    private func values(_ seed: UInt64, count: Int) -> [UInt64] {
        var state = seed
        func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 33
        }
        return (0..<count).map { _ in
            switch next() % 10 {
            case 0: return 0
            case 1: return next() % 5
            case 2: return MetricsProjection.highestLatencyMs - next() % 1_000
            default: return next() % (1 << (next() % 24))
            }
        }
    }

    private func whole(_ values: [UInt64]) -> Histogram<UInt64> {
        var histogram = MetricsProjection.histogram()
        for value in values { _ = histogram.record(value) }
        return histogram
    }

    @Test(arguments: [1, 2, 3, 4, 5, 6, 7, 8] as [UInt64])
    func aPackedHourUnpacksToTheSameHistogram(seed: UInt64) {
        let recorded = values(seed, count: Int(seed * 37))
        let histogram = whole(recorded)
        let packed = HourHistogram(packing: histogram)
        #expect(!packed.isRecording)
        #expect(packed.histogram == histogram)
        #expect(packed.totalCount == histogram.totalCount)
        #expect(packed.max == (histogram.totalCount == 0 ? 0 : histogram.max))
        #expect(LatencySummary(packed.histogram) == LatencySummary(histogram))
    }

    @Test(arguments: [11, 12, 13, 14] as [UInt64])
    func aWindowOfPackedHoursMergesAsWholeHistogramsDo(seed: UInt64) {
        var merged = MetricsProjection.histogram()
        var expected = MetricsProjection.histogram()
        for hour in 0..<24 {
            let histogram = whole(values(seed &* 100 &+ UInt64(hour), count: hour * 11))
            expected.add(histogram)
            // Every third hour is still being recorded into, as the newest hours are.
            let stored = hour % 3 == 0 ? {
                var h = HourHistogram()
                for value in values(seed &* 100 &+ UInt64(hour), count: hour * 11) { h.record(value) }
                return h
            }() : HourHistogram(packing: histogram)
            stored.add(to: &merged)
        }
        #expect(merged == expected)
        #expect(LatencySummary(merged) == LatencySummary(expected))
    }

    @Test func recordingIntoAPackedHourContinuesItsHistogram() {
        let first = values(21, count: 300), second = values(22, count: 200)
        var hour = HourHistogram()
        for value in first { hour.record(value) }
        #expect(hour.isRecording)
        hour.pack()
        #expect(!hour.isRecording)
        for value in second { hour.record(value) }
        #expect(hour.isRecording)
        #expect(hour.histogram == whole(first + second))
        hour.pack()
        #expect(hour.histogram == whole(first + second))
        #expect(hour.totalCount == 500)
    }

    @Test func anEmptyHourPacksToNothing() {
        var hour = HourHistogram()
        hour.pack()
        #expect(hour.entryCount == 0 && hour.totalCount == 0 && hour.max == 0)
        #expect(hour.histogram == MetricsProjection.histogram())
    }

    /// The view packs an hour when the next one starts, and a late event unpacks it again:
    /// the summaries stay those of whole histograms.
    @Test func theViewPacksFinishedHoursAndUnpacksForLateEvents() {
        var view = MetricsProjection()
        let start: Int64 = 1_790_000_000_000_000 / MetricsProjection.hour * MetricsProjection.hour
        var expected: [Int64: Histogram<UInt64>] = [:]
        func search(_ ms: Int, at: Int64) {
            view.fold(.creatorSearched(username: UnsafeRawBufferPointer(start: nil, count: 0), servedFrom: .fresh, durationMs: ms),
                      at: EventStamp(position: 1, recordedAt: at))
            let hour = at - at % MetricsProjection.hour
            _ = expected[hour, default: MetricsProjection.histogram()].record(UInt64(ms))
        }
        for i in 0..<50 { search(10 + i, at: start + Int64(i) * 60_000_000) }
        for i in 0..<50 { search(200 + i, at: start + MetricsProjection.hour + Int64(i) * 60_000_000) }
        let firstHour = start
        #expect(view.hourlyLatency[firstHour]?[LatencyKind.search.rawValue].isRecording == false)
        // A late event for the first hour, then a third hour: packed again.
        search(7, at: start + 1)
        #expect(view.hourlyLatency[firstHour]?[LatencyKind.search.rawValue].isRecording == true)
        search(99, at: start + 2 * MetricsProjection.hour)
        #expect(view.hourlyLatency[firstHour]?[LatencyKind.search.rawValue].isRecording == false)
        for (hour, histogram) in expected {
            #expect(view.latency(.search, hourStarting: hour) == LatencySummary(histogram))
        }
        var all = MetricsProjection.histogram()
        for histogram in expected.values { all.add(histogram) }
        #expect(view.latency(.search, lastHours: 720) == LatencySummary(all))
    }
}
