import Events
import OpenAPIKit
import Projections

/// The dashboard's routes in the document: the page and its files, the series endpoints
/// and the live stream (TallyAPI+Series.swift, TallyAPI+Live.swift, DashboardAssets.swift).
extension OpenAPIDocument {
    static let dashboardOperations: [Operation] = [
        asset("/", "The dashboard page (also at /dashboard): sign in with a token; no data without one.", .html),
        asset("/dashboard", "The dashboard page.", .html),
        asset("/dashboard/app.js", "The dashboard's script.", .textJavaScript),
        asset("/dashboard/charts.js", "The dashboard's SVG charts.", .textJavaScript),
        asset("/dashboard/app.css", "The dashboard's style sheet.", .css),
        Operation(method: "GET", path: "/api/v1/system/metrics/series", roles: [.admin],
                  summary: "The metrics view's buckets per minute or per hour over a range of event time, every bucket start in it (empty ones as zeros), within the window the view keeps (24 h of minutes, 30 days of hours).",
                  query: [
                      .string("resolution", .string(allowedValues: "minute", "hour"), "Bucket width (default hour)."),
                      .string("from", Schemas.iso8601, "Start (ISO 8601 UTC or a date), rounded down to a bucket start; default: 60 minutes or 24 hours before `until`."),
                      .string("until", Schemas.iso8601, "End, exclusive (default: the end of the newest event's bucket). At most 1440 minute or 720 hour buckets."),
                  ], view: true, response: metricsSeries),
        Operation(method: "GET", path: "/api/v1/system/stats/series", roles: [.user, .admin],
                  summary: "The system stats as of the end of each interval (as `replay stats --every`): from the stats view's hourly rows where it holds them (hour boundaries of the last 92 days), else folded from the log from the nearest checkpoint; kept until an event recorded before a row's end is appended; at most 1000 rows, two requests at once (one folds, the other waits; else 503 busy).",
                  query: [
                      .string("every", .string(pattern: "^[0-9]+[mhd]$"), "Interval: N followed by m, h or d (default 1h), N in 1...10000."),
                      .string("from", Schemas.iso8601, "First interval's start (default: 24 intervals before `until`)."),
                      .string("until", Schemas.iso8601, "Last interval's end, exclusive (default: the end of the newest event's interval)."),
                  ], view: true, response: statsSeries),
        Operation(method: "GET", path: "/api/v1/live", roles: [.user, .admin, .auditor],
                  summary: "Server-Sent Events: a `positions` event a second with each view's freshness, the head and the breaker, until the client goes or the server shuts down; 503 busy past the stream limit. Read it with fetch() to keep the token in the Authorization header.",
                  response: .string(description: "text/event-stream: `event: positions` then `data: {\"head\": …, \"breaker\": …, \"views\": [{\"name\": …, \"freshness\": {…}}], \"subscribers\": …}`."),
                  contentType: .eventStream),
    ]

    static func asset(_ path: String, _ summary: String, _ type: OpenAPI.ContentType) -> Operation {
        Operation(method: "GET", path: path, roles: [], summary: summary + " Served from memory with an ETag (If-None-Match answers 304) and a strict Content-Security-Policy.",
                  response: .string, contentType: type)
    }

    static let metricsSeries = Schemas.view([
        "resolution": .string(allowedValues: "minute", "hour"),
        "from": Schemas.iso8601, "until": Schemas.iso8601,
        "kept_from": Schemas.iso8601.with(description: "The oldest bucket the view keeps; absent before any counted event.").optionalSchemaObject(),
        "buckets": .array(items: Schemas.object([
            "start": Schemas.iso8601, "searches": Schemas.count, "cache_hits": Schemas.count, "unlocks": Schemas.count,
            "credits_spent": Schemas.count, "analyses_ok": Schemas.count, "analyses_failed": Schemas.count,
            "cdn": Schemas.map(Schemas.object(["queued": Schemas.count, "succeeded": Schemas.count, "failed": Schemas.count]),
                               description: "By priority: critical, high, medium, low."),
            "latency_ms": Schemas.map(MonitoringSchemas.latency, description: "Hours only, by kind (search, analysis, cdn) recorded in the hour.")
                .optionalSchemaObject(),
        ])),
    ])

    static let statsSeries = Schemas.view([
        "every": .string,
        "rows": .array(items: Schemas.object([
            "from": Schemas.iso8601, "until": Schemas.iso8601, "position": Schemas.position,
            "stats": Schemas.object(statsProperties),
        ])),
    ])
}

extension OpenAPI.ContentType {
    static let eventStream = OpenAPI.ContentType(rawValue: "text/event-stream")!
    /// What browsers and RFC 9239 name JavaScript (OpenAPIKit's `.javascript` is application/javascript).
    static let textJavaScript = OpenAPI.ContentType(rawValue: "text/javascript")!
}
