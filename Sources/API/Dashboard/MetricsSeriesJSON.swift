import Events
import Projections

/// The metrics series body written by hand: a 30-day hourly series is 720 buckets and
/// ≈ 400 KB, and `JSONEncoder` (sorted keys, a dictionary per bucket) spent most of a
/// request on it. The bytes are exactly `JSONResponse.encoder`'s for the same body (keys
/// sorted, optional fields left out), which `MetricsSeriesJSONTests` holds it to.
enum MetricsSeriesJSON {
    static func encode(_ body: MetricsSeriesBody) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(128 + body.buckets.count * 600)
        out.append(contentsOf: #"{"buckets":["#.utf8)
        for (index, bucket) in body.buckets.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            write(bucket, &out)
        }
        out.append(contentsOf: #"],"from":"#.utf8)
        string(body.from, &out)
        if let keptFrom = body.keptFrom {
            out.append(contentsOf: #","kept_from":"#.utf8)
            string(keptFrom, &out)
        }
        out.append(contentsOf: #","resolution":"#.utf8)
        string(body.resolution, &out)
        out.append(contentsOf: #","until":"#.utf8)
        string(body.until, &out)
        out.append(UInt8(ascii: "}"))
        return out
    }

    private static func write(_ b: SeriesBucketBody, _ out: inout [UInt8]) {
        out.append(contentsOf: #"{"analyses_failed":"#.utf8)
        integer(b.analysesFailed, &out)
        out.append(contentsOf: #","analyses_ok":"#.utf8)
        integer(b.analysesOK, &out)
        out.append(contentsOf: #","cache_hits":"#.utf8)
        integer(b.cacheHits, &out)
        out.append(contentsOf: #","cdn":{"#.utf8)
        for (index, name) in b.cdn.keys.sorted(by: utf8Order).enumerated() {
            let cdn = b.cdn[name]!
            if index > 0 { out.append(UInt8(ascii: ",")) }
            string(name, &out)
            out.append(contentsOf: #":{"failed":"#.utf8)
            integer(cdn.failed, &out)
            out.append(contentsOf: #","queued":"#.utf8)
            integer(cdn.queued, &out)
            out.append(contentsOf: #","succeeded":"#.utf8)
            integer(cdn.succeeded, &out)
            out.append(UInt8(ascii: "}"))
        }
        out.append(contentsOf: #"},"credits_spent":"#.utf8)
        integer(b.creditsSpent, &out)
        if let latency = b.latencyMs {
            out.append(contentsOf: #","latency_ms":{"#.utf8)
            for (index, kind) in latency.keys.sorted(by: utf8Order).enumerated() {
                let s = latency[kind]!
                if index > 0 { out.append(UInt8(ascii: ",")) }
                string(kind, &out)
                out.append(contentsOf: #":{"count":"#.utf8)
                unsigned(s.count, &out)
                out.append(contentsOf: #","max":"#.utf8)
                unsigned(s.max, &out)
                out.append(contentsOf: #","p50":"#.utf8)
                unsigned(s.p50, &out)
                out.append(contentsOf: #","p90":"#.utf8)
                unsigned(s.p90, &out)
                out.append(contentsOf: #","p99":"#.utf8)
                unsigned(s.p99, &out)
                out.append(UInt8(ascii: "}"))
            }
            out.append(UInt8(ascii: "}"))
        }
        out.append(contentsOf: #","searches":"#.utf8)
        integer(b.searches, &out)
        out.append(contentsOf: #","start":"#.utf8)
        string(b.start, &out)
        out.append(contentsOf: #","unlocks":"#.utf8)
        integer(b.unlocks, &out)
        out.append(UInt8(ascii: "}"))
    }

    /// `JSONEncoder`'s `.sortedKeys` order for these ASCII keys.
    private static func utf8Order(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }

    private static func integer(_ value: Int64, _ out: inout [UInt8]) { JSONText.appendInteger(value, to: &out) }

    private static func unsigned(_ value: UInt64, _ out: inout [UInt8]) { JSONText.appendUnsigned(value, to: &out) }

    /// As `JSONEncoder` writes it with `.withoutEscapingSlashes`: the same escapes.
    private static func string(_ value: String, _ out: inout [UInt8]) { JSONText.appendString(value, to: &out) }
}
