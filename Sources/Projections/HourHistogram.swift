import Histogram

/// One hour's latency histogram in the metrics view. A histogram of the view's range
/// (1 ms to a day, two significant digits) is 2,688 counts, 21 KB, nearly all zero; the
/// 30 days × 3 kinds of them the view keeps were 46 MB of a 10 M-event log's cold start.
/// So an hour at rest keeps only its entries, the (value, count) pairs the snapshot stores,
/// which re-recorded give back an equal histogram, and it becomes a whole histogram again
/// only while events are recorded into it (`MetricsProjection` packs the hours it is done
/// with whenever a new hour starts).
struct HourHistogram: Sendable {
    private enum Storage: Sendable {
        case recording(Histogram<UInt64>)
        /// value, count, value, count …: values strictly increasing (`entries(of:)`).
        case packed(ContiguousArray<UInt64>)
    }

    private var storage: Storage
    /// Kept beside the packed entries, so that cache keys and empty checks cost nothing.
    private(set) var totalCount: UInt64
    private(set) var max: UInt64

    init() {
        storage = .recording(MetricsProjection.histogram())
        totalCount = 0
        max = 0
    }

    /// An hour at rest holding `histogram`'s counts.
    init(packing histogram: Histogram<UInt64>) {
        var flat = ContiguousArray<UInt64>()
        for (value, count) in Self.entries(of: histogram) {
            flat.append(value)
            flat.append(count)
        }
        storage = .packed(flat)
        totalCount = histogram.totalCount
        max = histogram.totalCount == 0 ? 0 : histogram.max
    }

    var isRecording: Bool {
        if case .recording = storage { return true }
        return false
    }

    mutating func record(_ value: UInt64) {
        var histogram = self.histogram
        storage = .packed([])  // drops the other reference before recording: no copy of the counts
        _ = histogram.record(value)
        totalCount = histogram.totalCount
        max = histogram.max
        storage = .recording(histogram)
    }

    /// Back to entries; an hour already at rest is left as it is.
    mutating func pack() {
        guard case .recording(let histogram) = storage else { return }
        self = HourHistogram(packing: histogram)
    }

    /// The whole histogram (built afresh from the entries of an hour at rest).
    var histogram: Histogram<UInt64> {
        switch storage {
        case .recording(let histogram):
            return histogram
        case .packed(let flat):
            var histogram = MetricsProjection.histogram()
            var i = 0
            while i < flat.count {
                _ = histogram.record(flat[i], count: flat[i + 1])
                i += 2
            }
            return histogram
        }
    }

    /// Adds this hour's counts to `merged` (a histogram of the view's configuration), as
    /// `merged.add(histogram)` would, without building the whole histogram of an hour at rest.
    func add(to merged: inout Histogram<UInt64>) {
        switch storage {
        case .recording(let histogram):
            merged.add(histogram)
        case .packed(let flat):
            var i = 0
            while i < flat.count {
                _ = merged.record(flat[i], count: flat[i + 1])
                i += 2
            }
        }
    }

    /// The entries of the snapshot format (docs/snapshot-format.md): one per non-empty
    /// bucket, at the bucket's lowest value, except that the lowest non-zero bucket is
    /// entered at the exact minimum and the highest gets a (maximum, 0) entry, because
    /// percentiles are clamped to the exact minimum and maximum recorded, not to their
    /// buckets. `record(value, count:)` of each turns them back into an equal histogram.
    static func entries(of histogram: Histogram<UInt64>) -> [(value: UInt64, count: UInt64)] {
        var entries: [(value: UInt64, count: UInt64)] = []
        guard histogram.totalCount > 0 else { return entries }
        let maximum = histogram.maxRecorded
        let minimum: UInt64? = histogram.min != 0 ? histogram.min : histogram.minNonZero != .max ? histogram.minNonZero : nil
        for recorded in histogram.recordedValues() where recorded.count > 0 {
            let level = recorded.value
            var value = histogram.lowestEquivalentForValue(level)
            if let minimum, minimum != 0, histogram.valuesAreEquivalent(level, minimum) { value = minimum }
            entries.append((value, recorded.count))
            if histogram.valuesAreEquivalent(level, maximum), maximum != value { entries.append((maximum, 0)) }
        }
        return entries
    }

    /// This hour's entries, for the snapshot (no whole histogram built for an hour at rest).
    func forEachEntry(_ body: (UInt64, UInt64) -> Void) {
        switch storage {
        case .recording(let histogram):
            for (value, count) in Self.entries(of: histogram) { body(value, count) }
        case .packed(let flat):
            var i = 0
            while i < flat.count {
                body(flat[i], flat[i + 1])
                i += 2
            }
        }
    }

    var entryCount: Int {
        switch storage {
        case .recording(let histogram): return Self.entries(of: histogram).count
        case .packed(let flat): return flat.count / 2
        }
    }
}
