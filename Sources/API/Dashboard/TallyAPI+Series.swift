import EventLog
import Events
import Foundation
import Hummingbird
import Projections
import Synchronization

/// The series endpoints the dashboard draws and scripts can read: the metrics view's
/// buckets per minute or hour over a range, and the system stats as of the end of each
/// interval (what `replay stats --every` prints). Both carry the freshness every view read
/// carries; both refuse a range of more rows than they answer, before reading anything.
extension TallyAPI {
    func addSeriesRoutes(to v1: RouterGroup<TallyRequestContext>) {
        v1.get("system/metrics/series", use: metricsSeries)
        v1.get("system/stats/series", use: statsSeries)
    }

    /// `?resolution=minute|hour&from=&until=`: buckets from the metrics view only (never
    /// the store). Without a range, the last 60 minutes or 24 hours back from the newest event.
    @Sendable func metricsSeries(_ request: Request, context: TallyRequestContext) async throws -> Response {
        _ = try context.require(.admin)
        let query = request.uri.queryParameters
        let resolution = try SeriesQuery.resolution(query.get("resolution"))
        let from = try SeriesQuery.time(query.get("from"), "from")
        let until = try SeriesQuery.time(query.get("until"), "until")
        let width = resolution.width
        if let from, let until {
            _ = try SeriesQuery.rows(from: SeriesQuery.floor(from, width), until: until, width: width, maximum: resolution.kept, what: "buckets")
        }
        let read = try await view(hub.metrics, request)
        let m = read.view
        let defaultSpan = Int64(resolution == .minute ? 60 : 24) * width
        let end = until ?? (m.newestBucket(resolution).map { $0 + width } ?? 0)
        let start = SeriesQuery.floor(from ?? (end - defaultSpan), width)
        if from == nil || until == nil {
            _ = try SeriesQuery.rows(from: start, until: end, width: width, maximum: resolution.kept, what: "buckets")
        }
        let buckets = m.buckets(resolution, from: start, until: end).map { bucket in
            SeriesBucketBody(bucket, latency: resolution == .hour ? LatencyKind.allCases.compactMap { kind in
                m.latency(kind, hourStarting: bucket.start, cache: latencySummaries).map { ("\(kind)", $0) }
            } : [])
        }
        let body = MetricsSeriesBody(resolution: resolution.rawValue, from: EventTime.iso8601(micros: start), until: EventTime.iso8601(micros: end),
                                     keptFrom: m.keptFrom(resolution).map(EventTime.iso8601(micros:)), buckets: buckets)
        return JSONResponse.view(encoded: MetricsSeriesJSON.encode(body), freshness: read.freshness, stale: read.stale)
    }

    /// `?every=1h&from=&until=`: the stats view as of each interval's end, from the stats
    /// runner's hourly rows where they hold it, else folded from the log in one pass from the
    /// nearest checkpoint (`AsOfSeries`, as `replay stats --every`); each row's `position` is
    /// the last event it holds. Rows are kept between requests until an event recorded
    /// before their end is appended (`StatsSeriesCache`). Without a range,
    /// the last 24 intervals up to the end of the newest event's interval. One request folds
    /// at a time, the next waits for it, and one more is `503 busy`.
    @Sendable func statsSeries(_ request: Request, context: TallyRequestContext) async throws -> Response {
        _ = try context.require(.user, .admin)
        let query = request.uri.queryParameters
        let every = try SeriesQuery.interval(query.get("every") ?? "1h")
        let from = try SeriesQuery.time(query.get("from"), "from")
        let until = try SeriesQuery.time(query.get("until"), "until")
        if let from, let until { _ = try SeriesQuery.ends(from: from, until: until, every: every) }
        let read = try await view(hub.stats, request)
        // The stats view keeps no event time of its own: the metrics view's newest event.
        let newest = hub.metrics.current.view.newestEventTime
        let end = until ?? (newest.map { SeriesQuery.floor($0, every) + every } ?? 0)
        let start = from ?? (end - every * 24)
        let intervals = try SeriesQuery.ends(from: start, until: end, every: every)
        guard seriesFolds.enter() else {
            var error = APIError(.busy, "\(SeriesQuery.maximumConcurrentStatsFolds) stats series are being folded; retry shortly")
            error.retryAfter = 1
            throw error
        }
        defer { seriesFolds.leave() }
        let answer: StatsSeriesCache.Answer
        do {
            answer = try await statsSeriesRows.rows(ends: intervals.map(\.end), store: hub.store, checkpoints: hub.checkpoints,
                                                     live: { [hub] in hub.stats.currentWithRows })
        } catch let error as EventLogError {
            throw error
        } catch {
            var refused = APIError(.storeUnavailable, "the log could not be read for the series; retry shortly", cause: error)
            refused.retryAfter = 1
            throw refused
        }
        // `{"every":…,"rows":[…]}`, keys sorted as `JSONResponse.encoder` sorts them, from each
        // row's JSON written once while it is kept.
        var body = Array(#"{"every":"#.utf8)
        body += try JSONResponse.encoder.encode(query.get("every") ?? "1h")
        body += Array(#","rows":["#.utf8)
        for (index, (interval, row)) in zip(intervals, answer.rows).enumerated() {
            if index > 0 { body.append(UInt8(ascii: ",")) }
            body += try statsSeriesRows.encoded(id: answer.ids[index], until: row.until, from: interval.start) {
                let shown = StatsSeriesRow(from: EventTime.iso8601(micros: interval.start), until: EventTime.iso8601(micros: interval.end),
                                           position: row.position, stats: row.view)
                return Array(try JSONResponse.encoder.encode(shown))
            }
        }
        body += Array("]}".utf8)
        return JSONResponse.view(encoded: body, freshness: read.freshness, stale: read.stale)
    }
}

/// Stats series being folded right now, bounded.
final class InFlightCounter: Sendable {
    private let count = Mutex(0)
    let maximum: Int

    init(maximum: Int) { self.maximum = maximum }

    func enter() -> Bool {
        count.withLock { n in
            guard n < maximum else { return false }
            n += 1
            return true
        }
    }

    func leave() { count.withLock { $0 -= 1 } }
}

struct MetricsSeriesBody: Encodable {
    var resolution: String
    var from: String
    var until: String
    var keptFrom: String?
    var buckets: [SeriesBucketBody]
    enum CodingKeys: String, CodingKey { case resolution, from, until, keptFrom = "kept_from", buckets }
}

/// A bucket as the series shows it: counts, CDN jobs by priority and outcome, and (hours
/// only) latency by kind.
struct SeriesBucketBody: Encodable {
    struct Cdn: Encodable {
        var queued: Int64
        var succeeded: Int64
        var failed: Int64
    }

    var start: String
    var searches: Int64
    var cacheHits: Int64
    var unlocks: Int64
    var creditsSpent: Int64
    var analysesOK: Int64
    var analysesFailed: Int64
    var cdn: [String: Cdn]
    var latencyMs: [String: LatencySummary]?

    init(_ b: MetricsBucket, latency: [(String, LatencySummary)]) {
        start = EventTime.iso8601(micros: b.start)
        (searches, cacheHits, unlocks, creditsSpent) = (b.searches, b.cacheHits, b.unlocks, b.creditsSpent)
        (analysesOK, analysesFailed) = (b.analysesOK, b.analysesFailed)
        var cdn: [String: Cdn] = [:]
        for p in CdnPriority.allCases { cdn[p.rawValue] = Cdn(queued: b.cdn(p, .queued), succeeded: b.cdn(p, .succeeded), failed: b.cdn(p, .failed)) }
        self.cdn = cdn
        latencyMs = latency.isEmpty ? nil : Dictionary(uniqueKeysWithValues: latency)
    }

    enum CodingKeys: String, CodingKey {
        case start, searches, cacheHits = "cache_hits", unlocks, creditsSpent = "credits_spent", analysesOK = "analyses_ok",
             analysesFailed = "analyses_failed", cdn, latencyMs = "latency_ms"
    }
}

struct StatsSeriesRow: Encodable {
    var from: String
    var until: String
    var position: LogPosition
    var stats: SystemStats
}
