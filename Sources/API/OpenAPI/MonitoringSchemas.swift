import Events
import OpenAPIKit
import Projections

/// The bodies of the seed backend's paths (Seed/): the `/simple/` envelope and the
/// monitoring routes, as SeedEnvelope.swift and MonitoringBodies.swift encode them.
enum SeedSchemas {
    static let coverage = Schemas.object([
        "total": Schemas.count, "with_ai_analysis": Schemas.count,
        "ai_completion_rate": .string(description: "A percent with at most one decimal, e.g. \"66.7%\".", pattern: "^[0-9]{1,3}(\\\\.[0-9])?%$"),
    ])

    /// The seed's stats envelope; the fallback (503) adds `error` and `code`, and carries
    /// `freshness` and `stale` like the success.
    static let stats = Schemas.object([
        "success": .boolean,
        "stats": Schemas.object([
            "profiles": coverage, "posts": coverage,
            "system": Schemas.object(["status": .string, "ai_system": .string]),
        ]),
        "message": .string,
        "error": .string(required: false, description: "Only in the fallback: why there is no data."),
        "code": .string(required: false, description: "Only in the fallback: view_not_ready."),
        "freshness": Schemas.ref("Freshness"),
        "stale": .boolean,
    ])

    static let unlockedPage = Schemas.view([
        "success": .boolean, "message": .string,
        "profiles": OpenAPIDocument.unlockedProfiles,
        "next_cursor": .string(nullable: true, description: "The cursor of the next page; null on the last page."),
        "total": Schemas.count,
    ])

    static let unlockedFallback = Schemas.object([
        "success": .boolean, "profiles": .array(maxItems: 0, items: .string), "error": .string, "message": .string, "code": .string,
        "freshness": Schemas.ref("Freshness"), "stale": .boolean,
    ])
}

enum MonitoringSchemas {
    static let statusCounts = Schemas.object(["ok": Schemas.count, "degraded": Schemas.count, "down": Schemas.count, "stale": Schemas.count])

    static let alertCounts = Schemas.object([
        "total": Schemas.count, "warning": Schemas.count, "critical": Schemas.count, "emergency": Schemas.count,
        "alerts": .array(items: OpenAPIDocument.alert),
    ])

    static let projections = JSONSchema.array(items: Schemas.object(["name": .string, "state": .string, "position": Schemas.position]))

    static let latency = Schemas.object(["count": Schemas.count, "p50": Schemas.count, "p90": Schemas.count, "p99": Schemas.count,
                                         "max": Schemas.count])

    static let comprehensive = Schemas.view([
        "status": .string, "ai_system": .string,
        "components": Schemas.map(Schemas.ref("ComponentReport"), description: "By component name."),
        "status_counts": statusCounts,
        "server": Schemas.object(["breaker": Schemas.enumeration(BreakerState.self), "known_head": Schemas.position, "store_kind": .string]),
        "projections": projections,
        "alerts": alertCounts,
        "stale_after_seconds": Schemas.count,
        "checked_at": Schemas.iso8601,
    ])

    static let performanceReport = Schemas.view([
        "hours": .integer(maximum: (720, exclusive: false), minimum: (1, exclusive: false)),
        "from": Schemas.iso8601.optionalSchemaObject(), "to": Schemas.iso8601.optionalSchemaObject(),
        "summary": Schemas.object([
            "searches": Schemas.count, "cache_hits": Schemas.count, "cache_hit_ratio": Schemas.rate, "unlocks": Schemas.count,
            "credits_spent": Schemas.count, "analyses_completed": Schemas.count, "analyses_failed": Schemas.count,
            "analysis_failure_rate": Schemas.rate, "cdn": Schemas.ref("CdnCounts"),
        ]),
        "latency_ms": Schemas.map(latency, description: "By kind: search, analysis, cdn."),
        "buckets": .array(items: Schemas.ref("MetricsBucket")),
        "breaker_transitions": Schemas.count,
    ])

    static let monitoringStatus = Schemas.view([
        "status": .string,
        "health_sampling": Schemas.object([
            "components": Schemas.count, "status_counts": statusCounts,
            "newest_sample_at": Schemas.iso8601.optionalSchemaObject(), "stale_after_seconds": Schemas.count,
        ]),
        "alerts": alertCounts,
        "breaker": Schemas.enumeration(BreakerState.self),
        "breaker_transitions": Schemas.count,
        "projections": projections,
    ])

    static let recoveryHistory = Schemas.view([
        "transitions": .array(items: Schemas.object([
            "component": .string, "state": Schemas.enumeration(BreakerState.self), "reason": .string, "at": Schemas.iso8601,
            "at_us": Schemas.micros, "position": Schemas.position,
        ])),
        "total": Schemas.count, "kept": Schemas.count,
        "current": Schemas.map(Schemas.enumeration(BreakerState.self), description: "Each component's latest breaker state."),
    ])

    static let cdnHealth = Schemas.view([
        "status": .string(allowedValues: "healthy", "degraded", "down", "unknown"),
        "last_hour": Schemas.ref("CdnCounts"), "pending": Schemas.count, "latency_ms": latency,
        "worker": Schemas.ref("ComponentReport", required: false),
    ])

    static let cdnStatistics = Schemas.view([
        "all_time": Schemas.ref("Cdn"), "pending": Schemas.count, "last_24h": Schemas.ref("CdnCounts"), "latency_ms": latency,
    ])
}
