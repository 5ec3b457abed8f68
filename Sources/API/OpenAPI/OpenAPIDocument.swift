import Events
import Foundation
import Hummingbird
import Projections
import OpenAPIKit

/// `/openapi.json`: an OpenAPI 3.1 description of every route, built with OpenAPIKit from
/// this table. A test compares the table with the router's routes, so a route cannot be
/// added or removed without the document following; another runs `openapi-spec-validator`
/// on the served document and `schemathesis` against a live server.
///
/// Adding a route is one entry here: method, path, roles, summary, its query parameters,
/// its request body schema and its success body schema (inline, or `Schemas.ref` to a
/// shared component). The error responses follow from the entry (Operations.swift).
enum OpenAPIDocument {
    struct Operation {
        var method: String
        var path: String
        /// Roles allowed; empty: public.
        var roles: [Role]
        var summary: String
        var query: [QueryParameter] = []
        /// Answers from a view: takes `Tally-After`, carries freshness headers.
        var view = false
        /// Takes an `Idempotency-Key`.
        var idempotent = false
        /// The JSON request body, if the route reads one.
        var body: JSONSchema? = nil
        var bodyRequired = false
        /// The success body (`application/json` unless `contentType` says otherwise).
        var response: JSONSchema
        var contentType: OpenAPI.ContentType = .json
        /// Success statuses: the first is the usual one.
        var success: [Int] = [200]
        /// Refusals particular to this route, beyond the ones every route of its kind has.
        var errors: [Int] = []
        /// The 503 body when it is not a problem document (the seed envelope's fallback).
        var unavailable: JSONSchema? = nil
    }

    /// A query parameter and the values the handler accepts.
    struct QueryParameter {
        var name: String
        var schema: JSONSchema
        var description: String

        /// A whole number in `range` (`TallyAPI.intQuery`).
        static func integer(_ name: String, _ range: ClosedRange<Int>, default value: Int? = nil, _ description: String) -> Self {
            Self(name: name, schema: .integer(maximum: (range.upperBound, exclusive: false), minimum: (range.lowerBound, exclusive: false),
                                              defaultValue: value.map { AnyCodable($0) }), description: description)
        }

        static func string(_ name: String, _ schema: JSONSchema = .string, _ description: String) -> Self {
            Self(name: name, schema: schema, description: description)
        }
    }

    static let operations: [Operation] = coreOperations + dashboardOperations

    static let coreOperations: [Operation] = [
        Operation(method: "GET", path: "/api/health", roles: [], summary: "Liveness; cheap, no token.",
                  response: Schemas.object(["status": .string(allowedValues: "ok")])),
        Operation(method: "GET", path: "/metrics", roles: [], summary: "Prometheus text format (TALLY_METRICS_TOKEN makes it require that bearer).",
                  response: .string, contentType: .txt, errors: [401]),
        Operation(method: "GET", path: "/openapi.json", roles: [], summary: "This document.", response: .object(description: "An OpenAPI 3.1 document.")),
        Operation(method: "POST", path: "/api/v1/creator/search/{username}", roles: [.user],
                  summary: "Record a search; the profile summary and whether the caller unlocked it.",
                  view: true, idempotent: true, body: searchRequest, response: Schemas.view([
                      "username": .string, "position": Schemas.position, "unlocked": .boolean,
                      "profile": Schemas.ref("ProfileSummary", required: false), "replayed": .boolean,
                  ])),
        Operation(method: "POST", path: "/api/v1/creator/unlock/{username}", roles: [.user], summary: "Unlock a profile; 402 when credits are short.",
                  idempotent: true, response: Schemas.object([
                      "username": .string, "position": Schemas.position, "charged": Schemas.count, "already_unlocked": .boolean,
                      "balance": .integer, "replayed": .boolean,
                  ]), errors: [402]),
        Operation(method: "GET", path: "/api/v1/creator/unlocked", roles: [.user], summary: "The caller's unlocked profiles, newest first.",
                  query: unlockedQuery, view: true, response: unlockedPage),
        Operation(method: "GET", path: "/api/v1/simple/creator/unlocked", roles: [.user],
                  summary: "The caller's unlocked profiles in the seed backend's envelope (success, profiles, message); 503 with the seed's fallback while the view was never built.",
                  query: unlockedQuery, view: true, response: SeedSchemas.unlockedPage, unavailable: SeedSchemas.unlockedFallback),
        Operation(method: "GET", path: "/api/v1/credits/balance", roles: [.user], summary: "The caller's balance and recent movements.",
                  view: true, response: balance),
        Operation(method: "POST", path: "/api/v1/credits/grant", roles: [.admin], summary: "Grant credits to a user.", idempotent: true,
                  body: grantRequest, bodyRequired: true, response: Schemas.object(["position": Schemas.position, "balance": .integer])),
        Operation(method: "GET", path: "/api/v1/system/stats", roles: [.user, .admin], summary: "System stats.", view: true, response: stats),
        Operation(method: "GET", path: "/api/v1/simple/creator/system/stats", roles: [.user, .admin],
                  summary: "System stats in the seed backend's envelope (success, stats.profiles/posts/system, message); 503 with the seed's fallback while the view was never built.",
                  view: true, response: SeedSchemas.stats, unavailable: SeedSchemas.stats),
        report("profiles", "Report ProfileRefreshed events, all or none.", [.profileRefreshed]),
        report("analysis", "Report PostAnalysisCompleted/Failed events.", [.postAnalysisCompleted, .postAnalysisFailed]),
        report("cdn", "Report CdnJobQueued/Succeeded/Failed events.", [.cdnJobQueued, .cdnJobSucceeded, .cdnJobFailed]),
        report("health", "Report HealthSampled/CircuitBreakerChanged events.", [.healthSampled, .circuitBreakerChanged]),
        Operation(method: "POST", path: "/api/v1/system/recovery/database", roles: [.admin],
                  summary: "Half-open the store's breaker: the next command tries the store.",
                  response: Schemas.object(["breaker": Schemas.enumeration(BreakerState.self)])),
        Operation(method: "GET", path: "/api/v1/system/health", roles: [.admin],
                  summary: "Store, each projection's position, lag and state, latest health per component.", response: systemHealth),
        Operation(method: "GET", path: "/api/v1/system/monitoring/performance", roles: [.admin], summary: "Metrics over the last N hours of event time.",
                  query: [.integer("hours", 1...720, default: 24, "Hours of event time, back from the newest event.")], view: true, response: performance),
        Operation(method: "GET", path: "/api/v1/cdn/metrics", roles: [.admin], summary: "CDN jobs by priority and outcome.", view: true,
                  response: Schemas.view(cdnProperties)),
        Operation(method: "GET", path: "/api/v1/cdn/queue/status", roles: [.admin], summary: "CDN jobs queued and not finished, by priority.", view: true,
                  response: Schemas.view([
                      "by_priority": Schemas.map(Schemas.object(["queued": Schemas.count, "finished": Schemas.count, "pending": Schemas.count])),
                      "pending": Schemas.count,
                  ])),
        Operation(method: "GET", path: "/api/v1/system/alerts", roles: [.admin], summary: "Active alerts from the latest health samples.", view: true,
                  response: Schemas.view(["alerts": .array(items: alert)])),
        Operation(method: "GET", path: "/api/v1/system/health/comprehensive", roles: [.admin],
                  summary: "Every component's latest health (stale past the bound), the overall status, alerts and each view's state, from the views.",
                  view: true, response: MonitoringSchemas.comprehensive),
        Operation(method: "GET", path: "/api/v1/system/performance/report", roles: [.admin],
                  summary: "Counts, rates and latency over the last N hours (1...720) of event time.",
                  query: [.integer("hours", 1...720, default: 24, "Hours of event time, back from the newest event.")], view: true,
                  response: MonitoringSchemas.performanceReport),
        Operation(method: "GET", path: "/api/v1/system/monitoring/status", roles: [.admin],
                  summary: "Health sampling, alerting and breaker state at a glance.", view: true, response: MonitoringSchemas.monitoringStatus),
        Operation(method: "GET", path: "/api/v1/system/recovery/history", roles: [.admin],
                  summary: "Breaker transitions from the log (CircuitBreakerChanged), newest first; the view keeps the newest 100.",
                  query: [.integer("limit", 1...MetricsProjection.recentTransitionsKept, default: MetricsProjection.recentTransitionsKept, "Transitions to list.")],
                  view: true, response: MonitoringSchemas.recoveryHistory),
        Operation(method: "GET", path: "/api/v1/cdn/health", roles: [.admin],
                  summary: "CDN status from the last hour's job outcomes and the cdn-worker's health.", view: true, response: MonitoringSchemas.cdnHealth),
        Operation(method: "GET", path: "/api/v1/cdn/statistics", roles: [.admin],
                  summary: "CDN jobs all time by priority, pending, the last 24 h and latency.", view: true, response: MonitoringSchemas.cdnStatistics),
        Operation(method: "GET", path: "/api/v1/audit/events", roles: [.auditor], summary: "Events as `replay inspect` shows them, a page at a time.",
                  query: [
                      .string("stream", .string, "Only this stream's events."),
                      .string("type", Schemas.enumeration(EventType.self), "Only events of this type."),
                      .integer("from_position", 1...Int.max, default: 1, "The first position to read (a previous page's next_from_position)."),
                      .string("since", Schemas.iso8601, "Recorded at or after (ISO 8601)."),
                      .string("until", Schemas.iso8601, "Recorded before (ISO 8601)."),
                      .integer("limit", 1...1_000, default: 100, "Events per page."),
                  ], response: .any(of: [Schemas.ref("EventPage"), Schemas.ref("StreamPage")],
                                    core: .init(description: "With `stream`, the page is the stream's and continues by `next_from_version`."))),
        Operation(method: "GET", path: "/api/v1/audit/streams/{stream}", roles: [.auditor], summary: "One stream's events in version order.",
                  query: [
                      .integer("from_version", 0...Int.max, default: 0, "The first stream version to read (a previous page's next_from_version)."),
                      .integer("limit", 1...1_000, default: 100, "Events per page."),
                  ], response: Schemas.ref("StreamPage")),
        Operation(method: "GET", path: "/api/v1/audit/digest", roles: [.auditor], summary: "The head position, its chain hash and the RFC 9162 tree head of every event.",
                  response: Schemas.object([
                      "position": Schemas.position, "chain_hash": .string(description: "Hex SHA-256 chain hash at `position`."),
                      "tree_size": Schemas.count, "root_hash": Schemas.hash("RFC 9162 root of the first `tree_size` events."),
                  ])),
        Operation(method: "GET", path: "/api/v1/audit/proof/{position}", roles: [.auditor],
                  summary: "An RFC 9162 inclusion proof of the event at `position` (check it offline with `replay check-proof`).",
                  query: [.integer("tree_size", 1...Int.max, default: nil, "The tree size the proof is for (default: the head); from the position to the head.")],
                  response: Schemas.ref("InclusionProof")),
        Operation(method: "GET", path: "/api/v1/audit/consistency", roles: [.auditor],
                  summary: "An RFC 9162 consistency proof that the tree of `from` events is a prefix of the tree of `to`.",
                  query: [
                      .integer("from", 1...Int.max, default: nil, "The older tree size (required)."),
                      .integer("to", 1...Int.max, default: nil, "The newer tree size, at most the head (default: the head)."),
                  ], response: Schemas.ref("ConsistencyProof")),
    ]

    /// The methods of the routes whose template matches `path` (a `{name}` segment matches
    /// any one non-empty segment), in the table's order.
    static func methods(atPath path: String) -> [String] {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        var methods: [String] = []
        for op in operations where !methods.contains(op.method) {
            let template = op.path.split(separator: "/", omittingEmptySubsequences: false)
            guard template.count == segments.count else { continue }
            let matches = zip(template, segments).allSatisfy { pattern, segment in
                pattern.hasPrefix("{") ? !segment.isEmpty : pattern == segment
            }
            if matches { methods.append(op.method) }
        }
        return methods
    }

    /// `code (status), …`: the vocabulary with the status of each code.
    static var problemCodes: String {
        ProblemCode.all.map { "\($0.rawValue) (\($0.status.code))" }.joined(separator: ", ")
    }

    /// The document as served, encoded once.
    static func json() -> String { encoded }

    private static let encoded: String = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(document) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }()

    // MARK: - Bodies of the table's entries

    static let searchRequest = Schemas.object([
        "served_from": Schemas.enumeration(ServedFrom.self).optionalSchemaObject(),
        "duration_ms": JSONSchema.integer(required: false, maximum: (FieldRules.maxDurationMs, exclusive: false), minimum: (0, exclusive: false)),
        "found": JSONSchema.boolean(required: false),
    ], description: "Optional; an empty body is the same as {}.")

    static let grantRequest = Schemas.object([
        "user": .string(minLength: 1, maxLength: FieldRules.maxUserIDBytes),
        "amount": .integer(maximum: (Int(FieldRules.maxCredits), exclusive: false), minimum: (1, exclusive: false)),
        "reason": .string(maxLength: FieldRules.maxLabelBytes * 4),
    ])

    static let unlockedQuery: [QueryParameter] = [
        .integer("limit", 1...100, default: 20, "Profiles per page."),
        .string("cursor", .string(pattern: "^[0-9]{1,19}$"), "A previous page's next_cursor."),
    ]

    static let unlockedProfiles = JSONSchema.array(items: Schemas.object([
        "username": .string, "unlocked_at": Schemas.iso8601, "credits_spent": .integer, "position": Schemas.position,
        "profile": Schemas.ref("ProfileSummary"),
    ]))

    static let unlockedPage = Schemas.view([
        "profiles": unlockedProfiles,
        "next_cursor": .string(nullable: true, description: "The cursor of the next page; null on the last page."),
        "total": Schemas.count,
    ])

    static let balance = Schemas.view([
        "user": .string, "balance": .integer, "total_granted": Schemas.count, "total_spent": Schemas.count, "unlocked": Schemas.count,
        "position": Schemas.position,
        "recent": .array(items: Schemas.object([
            "kind": .string, "position": Schemas.position, "amount": .integer, "recorded_at": Schemas.iso8601, "balance_after": .integer,
            "detail": .string,
        ])),
    ])

    static var cdnProperties: OrderedDictionary<String, JSONSchema> {
        [
            "queued": Schemas.count, "succeeded": Schemas.count, "failed": Schemas.count, "success_rate": Schemas.rate,
            "by_priority": Schemas.map(Schemas.ref("CdnCounts"), description: "Keyed by priority: critical, high, medium, low (all four present)."),
        ]
    }

    static let stats = Schemas.view(statsProperties)

    static let statsProperties: OrderedDictionary<String, JSONSchema> = [
        "profiles": Schemas.object(["total": Schemas.count, "with_ai_analysis": Schemas.count, "ai_completion_rate": Schemas.rate]),
        "posts": Schemas.object(["total": Schemas.count, "with_ai_analysis": Schemas.count, "failed_unrecovered": Schemas.count]),
        "analyses": Schemas.object(["completed": Schemas.count, "failed": Schemas.count, "completion_rate": Schemas.rate]),
        "searches": Schemas.object(["total": Schemas.count, "cache_hits": Schemas.count, "cache_hit_ratio": Schemas.rate]),
        "unlocks": Schemas.object(["total": Schemas.count, "distinct": Schemas.count, "users": Schemas.count]),
        "credits": Schemas.object(["granted": Schemas.count, "spent": Schemas.count]),
        "cdn": Schemas.ref("Cdn"),
        "health": Schemas.object([
            "latest": Schemas.map(Schemas.ref("ComponentHealth"), description: "By component name."),
            "status_counts": Schemas.map(Schemas.count, description: "Components whose latest sample is ok, degraded, down."),
        ]),
        "system": Schemas.ref("SystemStatus"),
    ]

    static let systemHealth = Schemas.object([
        "store": Schemas.object([
            "kind": .string, "reachable": .boolean, "breaker": Schemas.enumeration(BreakerState.self), "head_position": Schemas.position,
            "chain_hash": .string(required: false, description: "Absent when the store did not answer in time."),
        ]),
        "projections": .array(items: Schemas.object(["name": .string, "freshness": Schemas.ref("Freshness")])),
        "components": Schemas.map(Schemas.ref("ComponentReport"), description: "By component name."),
        "system": Schemas.ref("SystemStatus"),
    ])

    static let performance = Schemas.view([
        "hours": .integer(maximum: (720, exclusive: false), minimum: (1, exclusive: false)),
        "totals": Schemas.ref("MetricsBucket"),
        "buckets": .array(items: Schemas.ref("MetricsBucket")),
        "latency_ms": Schemas.map(Schemas.object(["count": Schemas.count, "p50": Schemas.count, "p90": Schemas.count, "p99": Schemas.count,
                                                  "max": Schemas.count]), description: "By kind: search, analysis, cdn."),
        "gauges": Schemas.map(Schemas.object([
            "component": .string, "status": Schemas.enumeration(HealthStatus.self), "memory_pct": Schemas.percent, "cpu_pct": Schemas.percent,
            "disk_pct": Schemas.percent, "latency_ms": .number, "sampled_at_us": Schemas.micros,
        ]), description: "The latest sample by component name."),
        "breaker_transitions": .array(items: Schemas.object([
            "component": .string, "state": Schemas.enumeration(BreakerState.self), "reason": .string, "at_us": Schemas.micros,
            "position": Schemas.position,
        ])),
    ])

    static let alert = Schemas.object([
        "component": .string, "resource": .string(allowedValues: "memory", "cpu", "disk", "status", "sample_age"),
        "level": .string(allowedValues: "warning", "critical", "emergency"),
        "value": .number(required: false, description: "The gauge's value, or a stale sample's age in seconds; absent for a status alert."),
        "since": Schemas.micros.with(description: "Event time of the sample that raised it, µs."),
    ])

    /// A worker report route: `{"events": [{"type": T, "data": {…}}, …]}` of the types it owns.
    static func report(_ name: String, _ summary: String, _ types: [EventType]) -> Operation {
        let body = Schemas.object([
            "events": .array(minItems: 1, maxItems: 1_000,
                             items: types.count == 1 ? EventDataSchemas.item(types[0]) : .one(of: types.map(EventDataSchemas.item))),
        ])
        return Operation(method: "POST", path: "/api/v1/events/" + name, roles: [.service], summary: summary, idempotent: true,
                         body: body, bodyRequired: true, response: Schemas.ref("Positions"), success: [201, 200])
    }
}
