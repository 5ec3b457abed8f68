import Histogram

/// One hour's latency histogram in the metrics view. A histogram of the view's range
/// (1 ms to a day, two significant digits) is 2,688 counts, 21 KB, nearly all zero; the
/// 30 days × 3 kinds of them the view keeps were 46 MB of a 10 M-event log's cold start.
/// So an hour at rest keeps only its entries, the (value, count) pairs the snapshot stores,
/// which re-recorded give back an equal histogram, as varints (value as the step from the
/// previous one): 2–4 bytes an entry where a pair of words would be 16, more than the counts
/// themselves for a widely spread hour. It becomes a whole histogram again only while events
/// are recorded into it (`MetricsProjection` packs the hours it is done with whenever a new
/// hour starts).
struct HourHistogram: Sendable {
    /// The hour while it is recorded into (recorded in place: no copy per event).
    private var whole: Histogram<UInt64>?
    /// At rest: LEB128 value step, count, value step, count …, values strictly increasing
    /// (`entries(of:)`), the first step from 0.
    private var packed = ContiguousArray<UInt8>()
    private var packedEntries = 0
    private var packedTotal: UInt64 = 0
    private var packedMax: UInt64 = 0

    init() {
        whole = MetricsProjection.histogram()
    }

    /// An hour at rest holding `histogram`'s counts.
    init(packing histogram: Histogram<UInt64>) {
        let entries = Self.entries(of: histogram)
        var size = 0, previous: UInt64 = 0
        for (value, count) in entries {
            size += Self.varintSize(value - previous) + Self.varintSize(count)
            previous = value
        }
        // Exactly sized: thousands of hours are kept.
        packed = ContiguousArray<UInt8>(unsafeUninitializedCapacity: size) { buffer, initialized in
            var at = 0, previous: UInt64 = 0
            func put(_ value: UInt64) {
                var rest = value
                while rest >= 0x80 {
                    buffer[at] = UInt8(truncatingIfNeeded: rest) | 0x80
                    rest >>= 7
                    at += 1
                }
                buffer[at] = UInt8(rest)
                at += 1
            }
            for (value, count) in entries {
                put(value - previous)
                put(count)
                previous = value
            }
            initialized = at
        }
        packedEntries = entries.count
        packedTotal = histogram.totalCount
        packedMax = histogram.totalCount == 0 ? 0 : histogram.max
    }

    var isRecording: Bool { whole != nil }

    /// Cheap for an hour at rest too: cache keys and empty checks read them.
    var totalCount: UInt64 { whole?.totalCount ?? packedTotal }
    var max: UInt64 {
        guard let whole else { return packedMax }
        return whole.totalCount == 0 ? 0 : whole.max
    }

    mutating func record(_ value: UInt64) {
        if whole == nil {
            whole = histogram
            packed = []
        }
        _ = whole!.record(value)
    }

    /// Back to entries; an hour already at rest is left as it is.
    mutating func pack() {
        guard let whole else { return }
        self = HourHistogram(packing: whole)
    }

    /// The whole histogram (built afresh from the entries of an hour at rest).
    var histogram: Histogram<UInt64> {
        if let whole { return whole }
        var histogram = MetricsProjection.histogram()
        Self.forEach(packed) { _ = histogram.record($0, count: $1) }
        return histogram
    }

    /// Adds this hour's counts to `merged` (a histogram of the view's configuration), as
    /// `merged.add(histogram)` would, without building the whole histogram of an hour at rest.
    func add(to merged: inout Histogram<UInt64>) {
        if let whole {
            merged.add(whole)
        } else {
            Self.forEach(packed) { _ = merged.record($0, count: $1) }
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
        if let whole {
            for (value, count) in Self.entries(of: whole) { body(value, count) }
        } else {
            Self.forEach(packed, body)
        }
    }

    var entryCount: Int {
        if let whole { return Self.entries(of: whole).count }
        return packedEntries
    }

    private static func varintSize(_ value: UInt64) -> Int {
        value == 0 ? 1 : (70 - value.leadingZeroBitCount) / 7
    }

    /// The (value, count) entries of packed bytes this type wrote (so never malformed).
    private static func forEach(_ packed: ContiguousArray<UInt8>, _ body: (UInt64, UInt64) -> Void) {
        var at = 0, value: UInt64 = 0
        func next() -> UInt64 {
            var result: UInt64 = 0, shift: UInt64 = 0
            while true {
                let byte = packed[at]
                at += 1
                result |= UInt64(byte & 0x7F) << shift
                if byte < 0x80 { return result }
                shift += 7
            }
        }
        while at < packed.count {
            value += next()
            body(value, next())
        }
    }
}
