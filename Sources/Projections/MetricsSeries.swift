import Histogram

/// The metrics view's buckets over a range of event time, for the series endpoints: every
/// bucket start in the range (empty ones as zeros, so a chart's x axis has no gaps), cut to
/// the window the view keeps (24 h of minutes, 30 days of hours, back from the newest event).
public enum MetricsResolution: String, Sendable, Hashable, CaseIterable {
    case minute, hour

    /// The bucket width, µs.
    public var width: Int64 { self == .minute ? MetricsProjection.minute : MetricsProjection.hour }
    /// How many buckets of this width the view keeps.
    public var kept: Int { self == .minute ? 24 * 60 : 30 * 24 }
}

extension MetricsProjection {
    private func ring(_ resolution: MetricsResolution) -> BucketRing { resolution == .minute ? minutes : hours }

    /// The start of the oldest bucket the view keeps at `resolution`; nil before any counted event.
    public func keptFrom(_ resolution: MetricsResolution) -> Int64? {
        let ring = ring(resolution)
        guard ring.newest != .min else { return nil }
        return ring.newest - ring.width * Int64(ring.buckets.count - 1)
    }

    /// The start of the newest bucket counted at `resolution`; nil before any counted event.
    public func newestBucket(_ resolution: MetricsResolution) -> Int64? {
        let ring = ring(resolution)
        return ring.newest == .min ? nil : ring.newest
    }

    /// `time` rounded down to a bucket start of `resolution` (also before 1970).
    public static func bucketStart(_ time: Int64, _ resolution: MetricsResolution) -> Int64 {
        let q = time / resolution.width
        return (time % resolution.width < 0 ? q - 1 : q) * resolution.width
    }

    /// One bucket per start in `[from, until)` (both bucket starts) that lies in the kept
    /// window, oldest first; a start with no event is a bucket of zeros.
    public func buckets(_ resolution: MetricsResolution, from: Int64, until: Int64) -> [MetricsBucket] {
        let ring = ring(resolution)
        guard let kept = keptFrom(resolution) else { return [] }
        let width = ring.width
        var start = max(Self.bucketStart(from, resolution), kept)
        let end = min(until, ring.newest + width)
        var out: [MetricsBucket] = []
        while start < end {
            let slot = ring.slot(start)
            out.append(ring.buckets[slot].flatMap { $0.start == start ? $0 : nil } ?? MetricsBucket(start: start))
            start += width
        }
        return out
    }

    /// Latency of one kept hour (nil when nothing of `kind` was recorded in it).
    /// With `cache`, a summary computed before for the same histogram is reused.
    public func latency(_ kind: LatencyKind, hourStarting start: Int64, cache: LatencySummaryCache? = nil) -> LatencySummary? {
        guard let histograms = hourlyLatency[start], histograms[kind.rawValue].totalCount > 0 else { return nil }
        let hour = histograms[kind.rawValue]
        return cache?.summary(of: hour, hour: start, kind: kind) ?? LatencySummary(hour.histogram)
    }
}
