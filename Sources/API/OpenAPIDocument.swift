import Events
import Foundation
import Hummingbird

/// `/openapi.json`: an OpenAPI 3.1 description of every route. A test compares it with the
/// router's routes, so a route cannot be added or removed without the document following.
enum OpenAPIDocument {
    struct Operation {
        var method: String
        var path: String
        /// Roles allowed; empty: public.
        var roles: [Role]
        var summary: String
        var query: [String] = []
        var view = false
        var idempotent = false
        var body: String?
    }

    static let operations: [Operation] = [
        Operation(method: "GET", path: "/api/health", roles: [], summary: "Liveness; cheap, no token."),
        Operation(method: "GET", path: "/metrics", roles: [], summary: "Prometheus text format (TALLY_METRICS_TOKEN makes it require that bearer)."),
        Operation(method: "GET", path: "/openapi.json", roles: [], summary: "This document."),
        Operation(method: "POST", path: "/api/v1/creator/search/{username}", roles: [.user], summary: "Record a search; the profile summary and whether the caller unlocked it.",
                  view: true, idempotent: true, body: "{served_from?: cache|fresh, duration_ms?: int, found?: bool}"),
        Operation(method: "POST", path: "/api/v1/creator/unlock/{username}", roles: [.user], summary: "Unlock a profile; 402 when credits are short.", idempotent: true),
        Operation(method: "GET", path: "/api/v1/creator/unlocked", roles: [.user], summary: "The caller's unlocked profiles, newest first.", query: ["limit", "cursor"], view: true),
        Operation(method: "GET", path: "/api/v1/simple/creator/unlocked", roles: [.user], summary: "The caller's unlocked profiles in the seed backend's envelope (success, profiles, message); 503 with the seed's fallback while the view was never built.", query: ["limit", "cursor"], view: true),
        Operation(method: "GET", path: "/api/v1/credits/balance", roles: [.user], summary: "The caller's balance and recent movements."),
        Operation(method: "POST", path: "/api/v1/credits/grant", roles: [.admin], summary: "Grant credits to a user.", idempotent: true,
                  body: "{user: string, amount: 1...1e9, reason: string}"),
        Operation(method: "GET", path: "/api/v1/system/stats", roles: [.user, .admin], summary: "System stats.", view: true),
        Operation(method: "GET", path: "/api/v1/simple/creator/system/stats", roles: [.user, .admin], summary: "System stats in the seed backend's envelope (success, stats.profiles/posts/system, message); 503 with the seed's fallback while the view was never built.", view: true),
        Operation(method: "POST", path: "/api/v1/events/profiles", roles: [.service], summary: "Report ProfileRefreshed events, all or none.", idempotent: true, body: reportBody),
        Operation(method: "POST", path: "/api/v1/events/analysis", roles: [.service], summary: "Report PostAnalysisCompleted/Failed events.", idempotent: true, body: reportBody),
        Operation(method: "POST", path: "/api/v1/events/cdn", roles: [.service], summary: "Report CdnJobQueued/Succeeded/Failed events.", idempotent: true, body: reportBody),
        Operation(method: "POST", path: "/api/v1/events/health", roles: [.service], summary: "Report HealthSampled/CircuitBreakerChanged events.", idempotent: true, body: reportBody),
        Operation(method: "POST", path: "/api/v1/system/recovery/database", roles: [.admin], summary: "Half-open the store's breaker: the next command tries the store."),
        Operation(method: "GET", path: "/api/v1/system/health", roles: [.admin], summary: "Store, each projection's position, lag and state, latest health per component."),
        Operation(method: "GET", path: "/api/v1/system/monitoring/performance", roles: [.admin], summary: "Metrics over the last N hours of event time.", query: ["hours"], view: true),
        Operation(method: "GET", path: "/api/v1/cdn/metrics", roles: [.admin], summary: "CDN jobs by priority and outcome.", view: true),
        Operation(method: "GET", path: "/api/v1/cdn/queue/status", roles: [.admin], summary: "CDN jobs queued and not finished, by priority.", view: true),
        Operation(method: "GET", path: "/api/v1/system/alerts", roles: [.admin], summary: "Active alerts from the latest health samples.", view: true),
        Operation(method: "GET", path: "/api/v1/system/health/comprehensive", roles: [.admin],
                  summary: "Every component's latest health (stale past the bound), the overall status, alerts and each view's state, from the views.", view: true),
        Operation(method: "GET", path: "/api/v1/system/performance/report", roles: [.admin],
                  summary: "Counts, rates and latency over the last N hours (1...720) of event time.", query: ["hours"], view: true),
        Operation(method: "GET", path: "/api/v1/system/monitoring/status", roles: [.admin],
                  summary: "Health sampling, alerting and breaker state at a glance.", view: true),
        Operation(method: "GET", path: "/api/v1/system/recovery/history", roles: [.admin],
                  summary: "Breaker transitions from the log (CircuitBreakerChanged), newest first; the view keeps the newest 100.", query: ["limit"], view: true),
        Operation(method: "GET", path: "/api/v1/cdn/health", roles: [.admin],
                  summary: "CDN status from the last hour's job outcomes and the cdn-worker's health.", view: true),
        Operation(method: "GET", path: "/api/v1/cdn/statistics", roles: [.admin],
                  summary: "CDN jobs all time by priority, pending, the last 24 h and latency.", view: true),
        Operation(method: "GET", path: "/api/v1/audit/events", roles: [.auditor], summary: "Events as `replay inspect` shows them, a page at a time.",
                  query: ["stream", "type", "from_position", "since", "until", "limit"]),
        Operation(method: "GET", path: "/api/v1/audit/streams/{stream}", roles: [.auditor], summary: "One stream's events in version order.", query: ["from_version", "limit"]),
        Operation(method: "GET", path: "/api/v1/audit/digest", roles: [.auditor], summary: "The head position and its chain hash."),
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

    static let reportBody = "{events: [{type: string, data: object}] (1...1000)}"

    static func json() -> String {
        var paths: [String: [String: Any]] = [:]
        for op in operations {
            var operation: [String: Any] = [
                "summary": op.summary,
                "x-roles": op.roles.map(\.rawValue),
                "responses": responses(op),
            ]
            if !op.roles.isEmpty { operation["security"] = [["bearer": [String]()]] }
            var parameters: [[String: Any]] = []
            for name in pathParameters(op.path) {
                parameters.append(["name": name, "in": "path", "required": true, "schema": ["type": "string"]])
            }
            for name in op.query { parameters.append(["name": name, "in": "query", "required": false, "schema": ["type": "string"]]) }
            if op.view { parameters.append(["name": "Tally-After", "in": "header", "required": false, "schema": ["type": "integer"]]) }
            if op.idempotent { parameters.append(["name": "Idempotency-Key", "in": "header", "required": false, "schema": ["type": "string"]]) }
            if !parameters.isEmpty { operation["parameters"] = parameters }
            if let body = op.body {
                operation["requestBody"] = ["content": ["application/json": ["schema": ["type": "object", "description": body]]]]
            }
            paths[op.path, default: [:]][op.method.lowercased()] = operation
        }
        let document: [String: Any] = [
            "openapi": "3.1.0",
            "info": ["title": "Tally", "version": "1", "description": "Event-sourced analytics core of a creator-analytics backend."],
            "components": [
                "securitySchemes": ["bearer": ["type": "http", "scheme": "bearer", "bearerFormat": "JWT"]],
                "schemas": [
                    "Problem": ["type": "object", "required": ["code", "title", "detail", "status"],
                                "description": "Every error. `code` is stable and has one status: " + problemCodes,
                                "properties": ["code": ["type": "string", "enum": ProblemCode.all.map(\.rawValue)], "title": ["type": "string"],
                                               "detail": ["type": "string"], "status": ["type": "integer"],
                                               "field": ["type": "string", "description": "The field at fault (invalid_input, unknown_type)."],
                                               "item": ["type": "integer", "description": "The batch item at fault."]]],
                    "Freshness": ["type": "object", "properties": ["position": ["type": "integer"], "head": ["type": "integer"], "lag_events": ["type": "integer"],
                                                                    "lag_seconds": ["type": "number"], "state": ["type": "string", "enum": ["live", "catchingUp", "rebuilding", "storeUnavailable"]]]],
                ],
            ],
            "paths": paths,
        ]
        let data = (try? JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// `code (status), …`: the vocabulary with the status of each code.
    static var problemCodes: String {
        ProblemCode.all.map { "\($0.rawValue) (\($0.status.code))" }.joined(separator: ", ")
    }

    static func pathParameters(_ path: String) -> [String] {
        path.split(separator: "/").compactMap { $0.hasPrefix("{") && $0.hasSuffix("}") ? String($0.dropFirst().dropLast()) : nil }
    }

    static func responses(_ op: Operation) -> [String: Any] {
        let problem: [String: Any] = ["content": ["application/problem+json": ["schema": ["$ref": "#/components/schemas/Problem"]]]]
        var responses: [String: Any] = ["200": ["description": op.view ? "The view with its `freshness` and `stale`; headers Tally-Position, Tally-Lag-Events." : "OK"]]
        if op.path.hasPrefix("/api/v1/events/") { responses["201"] = ["description": "Written; the positions of the events."] }
        if !op.roles.isEmpty {
            responses["401"] = problem
            responses["403"] = problem
            responses["400"] = problem
            responses["503"] = problem
        }
        if op.path.contains("unlock/") { responses["402"] = problem }
        if op.idempotent {
            responses["409"] = problem
            responses["422"] = problem
        }
        if op.method == "POST" { responses["413"] = problem }
        return responses
    }
}
