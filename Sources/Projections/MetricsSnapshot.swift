import Events
import Histogram

/// The metrics fold state in a binary snapshot (docs/snapshot-format.md). Rings are written
/// sparsely (occupied slots only); histograms as their non-zero (value, count) pairs, which
/// re-recorded into a histogram of the same configuration give back equal counts, total,
/// min and max levels.
extension MetricsProjection {
    enum Section: UInt8 {
        case scalars = 1, minutes, hours, latency, hourlyLatency, gauges, transitions
    }

    public func writeSnapshot(to w: inout SnapshotWriter) {
        w.section(Section.scalars.rawValue, count: 2)
        w.signed(transitionCount)
        if let newestEventTime {
            w.byte(1)
            w.signed(newestEventTime)
        } else {
            w.byte(0)
        }
        w.writeRing(minutes, Section.minutes.rawValue)
        w.writeRing(hours, Section.hours.rawValue)
        w.section(Section.latency.rawValue, count: latency.count)
        for histogram in latency { w.writeHistogram(histogram) }
        w.section(Section.hourlyLatency.rawValue, count: hourlyLatency.count)
        for (hour, histograms) in hourlyLatency {
            w.signed(hour)
            w.unsigned(UInt64(histograms.count))
            for histogram in histograms { w.writeHistogram(histogram) }
        }
        w.section(Section.gauges.rawValue, count: gauges.count)
        for gauge in gauges.values {
            w.string(gauge.component)
            w.choice(gauge.status)
            for value in [gauge.memoryPct, gauge.cpuPct, gauge.diskPct, gauge.latencyMs] { w.double(value) }
            w.signed(gauge.sampledAt)
        }
        w.section(Section.transitions.rawValue, count: transitions.count)
        for t in transitions {
            w.string(t.component)
            w.choice(t.state)
            w.string(t.reason)
            w.signed(t.at)
            w.unsigned(t.position)
        }
    }

    public init(snapshot r: inout SnapshotReader) throws {
        self.init()
        guard try r.section(Section.scalars.rawValue, minimumBytes: 1) == 2 else { throw r.corrupted("the scalars section holds 2 values") }
        transitionCount = try r.signed("transition count")
        newestEventTime = try r.bool("newest event time present") ? try r.signed("newest event time") : nil
        try r.readRing(&minutes, Section.minutes.rawValue)
        try r.readRing(&hours, Section.hours.rawValue)
        guard try r.section(Section.latency.rawValue, minimumBytes: 1) == LatencyKind.allCases.count else {
            throw r.corrupted("the latency section holds \(LatencyKind.allCases.count) histograms")
        }
        for i in latency.indices { latency[i] = try r.readHistogram() }
        let hourCount = try r.section(Section.hourlyLatency.rawValue, minimumBytes: 2 + LatencyKind.allCases.count)
        guard hourCount <= hours.buckets.count else { throw r.corrupted("\(hourCount) hours of latency, the window holds \(hours.buckets.count)") }
        for _ in 0..<hourCount {
            let hour = try r.signed("latency hour")
            guard try r.count("histograms of an hour", minimumBytes: 1) == LatencyKind.allCases.count else {
                throw r.corrupted("an hour holds \(LatencyKind.allCases.count) histograms")
            }
            // Each hour is checked as a whole histogram, then kept packed.
            var histograms: [HourHistogram] = []
            for _ in LatencyKind.allCases { histograms.append(HourHistogram(packing: try r.readHistogram())) }
            guard hourlyLatency.updateValue(histograms, forKey: hour) == nil else { throw r.corrupted("latency hour \(hour) appears twice") }
        }
        let gaugeCount = try r.section(Section.gauges.rawValue, minimumBytes: 35)
        for _ in 0..<gaugeCount {
            let component = try r.string("gauge component")
            let status = try r.choice(HealthStatus.self, "gauge status")
            let gauge = HealthGauge(component: component, status: status, memoryPct: try r.double("memory pct"), cpuPct: try r.double("cpu pct"),
                                    diskPct: try r.double("disk pct"), latencyMs: try r.double("latency ms"), sampledAt: try r.signed("sampled at"))
            guard gauges.updateValue(gauge, forKey: component) == nil else { throw r.corrupted("gauge \(component) appears twice") }
        }
        let transitionCount = try r.section(Section.transitions.rawValue, minimumBytes: 5)
        guard transitionCount <= Self.recentTransitionsKept else { throw r.corrupted("\(transitionCount) transitions, at most \(Self.recentTransitionsKept) are kept") }
        for _ in 0..<transitionCount {
            transitions.append(BreakerTransition(component: try r.string("transition component"), state: try r.choice(BreakerState.self, "transition state"),
                                                 reason: try r.string("transition reason"), at: try r.signed("transition at"),
                                                 position: try r.unsigned("transition position")))
        }
    }
}

extension SnapshotWriter {
    /// The newest bucket start (zig-zag; `Int64.min` when empty), then each occupied slot's
    /// index and bucket.
    mutating func writeRing(_ ring: BucketRing, _ tag: UInt8) {
        section(tag, count: ring.buckets.lazy.filter { $0 != nil }.count)
        signed(ring.newest)
        for (slot, bucket) in ring.buckets.enumerated() {
            guard let bucket else { continue }
            unsigned(UInt64(slot))
            for value in [bucket.start, bucket.searches, bucket.cacheHits, bucket.unlocks, bucket.creditsSpent, bucket.analysesOK, bucket.analysesFailed] {
                signed(value)
            }
            unsigned(UInt64(bucket.cdn.count))
            for value in bucket.cdn { signed(value) }
        }
    }

    /// (value, count) entries, values strictly increasing (`HourHistogram.entries(of:)`),
    /// which `record(value, count:)` turns back into an equal histogram.
    mutating func writeHistogram(_ histogram: Histogram<UInt64>) {
        let entries = HourHistogram.entries(of: histogram)
        unsigned(UInt64(entries.count))
        for (value, count) in entries {
            unsigned(value)
            unsigned(count)
        }
    }

    /// The same entries for an hour, from its packed form when it is at rest.
    mutating func writeHistogram(_ hour: HourHistogram) {
        guard !hour.isRecording else { return writeHistogram(hour.histogram) }
        unsigned(UInt64(hour.entryCount))
        hour.forEachEntry { value, count in
            unsigned(value)
            unsigned(count)
        }
    }
}

extension SnapshotReader {
    mutating func readRing(_ ring: inout BucketRing, _ tag: UInt8) throws {
        let occupied = try section(tag, minimumBytes: 9)
        guard occupied <= ring.buckets.count else { throw corrupted("\(occupied) buckets, the ring holds \(ring.buckets.count)") }
        ring.newest = try signed("newest bucket")
        var previous = -1
        for _ in 0..<occupied {
            let slot = Int(try unsigned("bucket slot", max: UInt64(ring.buckets.count - 1)))
            guard slot > previous else { throw corrupted("bucket slots out of order") }
            previous = slot
            var bucket = MetricsBucket(start: try signed("bucket start"))
            guard ring.slot(bucket.start) == slot, ring.start(of: bucket.start) == bucket.start else {
                throw corrupted("bucket start \(bucket.start) does not belong in slot \(slot)")
            }
            bucket.searches = try signed("searches")
            bucket.cacheHits = try signed("cache hits")
            bucket.unlocks = try signed("unlocks")
            bucket.creditsSpent = try signed("credits spent")
            bucket.analysesOK = try signed("analyses ok")
            bucket.analysesFailed = try signed("analyses failed")
            guard try count("cdn counts", minimumBytes: 1) == bucket.cdn.count else { throw corrupted("a bucket holds \(bucket.cdn.count) CDN counts") }
            for i in bucket.cdn.indices { bucket.cdn[i] = try signed("cdn count") }
            ring.buckets[slot] = bucket
        }
    }

    mutating func readHistogram() throws -> Histogram<UInt64> {
        var histogram = MetricsProjection.histogram()
        let pairs = try count("histogram values", minimumBytes: 2)
        var previous: UInt64?
        for _ in 0..<pairs {
            let value = try unsigned("histogram value")
            let occurrences = try unsigned("histogram count")
            if let previous, value <= previous { throw corrupted("histogram values out of order") }
            previous = value
            guard histogram.totalCount <= UInt64.max - occurrences else { throw corrupted("histogram count \(occurrences) overflows the total") }
            guard histogram.record(value, count: occurrences) else { throw corrupted("histogram value \(value) is out of range") }
        }
        return histogram
    }
}
