@testable import API
import EventLog
import Events
import Foundation
import Projections
import Testing

/// The hand-written metrics series body is byte for byte what `JSONEncoder` writes for the
/// same body (the OpenAPI document and the dashboard read that shape), on random buckets.
@Suite struct MetricsSeriesJSONTests {
    @Test(arguments: [1, 7, 2026] as [UInt64]) func handWrittenBytesEqualTheEncoders(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        let hour: Int64 = 3_600_000_000
        let start: Int64 = 1_790_000_000_000_000
        for round in 0..<20 {
            let count = Int.random(in: 0...40, using: &rng)
            let buckets = try (0..<count).map { i -> SeriesBucketBody in
                var bucket = MetricsBucket(start: start + Int64(i) * hour)
                bucket.searches = Int64.random(in: 0...1_000_000, using: &rng)
                bucket.cacheHits = Int64.random(in: 0...bucket.searches, using: &rng)
                bucket.unlocks = Int64.random(in: 0...5_000, using: &rng)
                // Credits are a running sum of signed amounts: any Int64, the extremes too.
                bucket.creditsSpent = [Int64.min, -1, 0, Int64.max, Int64.random(in: -9_999...9_999_999, using: &rng)].randomElement(using: &rng)!
                bucket.analysesOK = Int64.random(in: 0...90_000, using: &rng)
                bucket.analysesFailed = Int64.random(in: 0...900, using: &rng)
                for slot in bucket.cdn.indices { bucket.cdn[slot] = Int64.random(in: 0...4_000, using: &rng) }
                let latency = try LatencyKind.allCases.filter { _ in Bool.random(using: &rng) }.map { kind in
                    let values = (0..<5).map { _ in UInt64.random(in: 0...UInt64.max / 2, using: &rng) }.sorted()
                    let json = #"{"count":\#(values[4]),"p50":\#(values[0]),"p90":\#(values[1]),"p99":\#(values[2]),"max":\#(values[3])}"#
                    return ("\(kind)", try JSONDecoder().decode(LatencySummary.self, from: Data(json.utf8)))
                }
                return SeriesBucketBody(bucket, latency: latency)
            }
            let body = MetricsSeriesBody(
                resolution: Bool.random(using: &rng) ? "hour" : "minute",
                from: EventTime.iso8601(micros: start), until: EventTime.iso8601(micros: start + Int64(count) * hour),
                keptFrom: round % 3 == 0 ? nil : EventTime.iso8601(micros: start - hour), buckets: buckets
            )
            let expected = try JSONResponse.encoder.encode(body)
            let written = MetricsSeriesJSON.encode(body)
            #expect(written == Array(expected), "seed \(seed), round \(round): \(String(decoding: written, as: UTF8.self).prefix(300))")
        }
    }
}
