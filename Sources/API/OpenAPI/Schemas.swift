import Events
import OpenAPIKit
import Projections

/// The JSON schemas of `/openapi.json`: what the encoders in ResponseBodies.swift,
/// TallyAPI*.swift, Problem.swift and `EventLine` really send. Optional Swift fields are
/// omitted when nil (not `null`), so they are optional properties; a property is `null`
/// only where the encoder writes null (`next_cursor`, `next_from_*`, an opaque event's
/// `data`). Objects are closed (`additionalProperties: false`) where one encoder writes them
/// all; maps keyed by component or priority name are open by design.
enum Schemas {
    static func ref(_ name: String, required: Bool = true) -> JSONSchema {
        .reference(.component(named: name), required: required)
    }

    /// A closed object: exactly these properties (optional ones marked `required: false`).
    static func object(_ properties: OrderedDictionary<String, JSONSchema>, description: String? = nil) -> JSONSchema {
        .object(description: description, properties: properties, additionalProperties: .a(false))
    }

    /// A map from names to values of one schema.
    static func map(_ values: JSONSchema, description: String? = nil) -> JSONSchema {
        .object(description: description, additionalProperties: .b(values))
    }

    /// A view's answer: its own properties plus `freshness` and `stale` (ViewBody,
    /// `JSONResponse.view(encoded:)`).
    static func view(_ properties: OrderedDictionary<String, JSONSchema>, description: String? = nil) -> JSONSchema {
        var all = properties
        all["freshness"] = ref("Freshness")
        all["stale"] = .boolean(description: "true when the view could not catch up (store unavailable) and answers from what it has")
        return object(all, description: description)
    }

    static let position = JSONSchema.integer(description: "A log position (1 is the first event; 0: none yet).", minimum: (0, exclusive: false))
    static let count = JSONSchema.integer(minimum: (0, exclusive: false))
    static let rate = JSONSchema.number(maximum: (1, exclusive: false), minimum: (0, exclusive: false))
    static let micros = JSONSchema.integer(description: "Event time, µs since 1970 UTC.")
    static let iso8601 = JSONSchema.string(description: "ISO 8601 UTC with µs, e.g. 2026-01-01T00:00:00.000000Z.")
    static let percent = JSONSchema.number()

    /// A SHA-256 value as 64 lowercase hex digits.
    static func hash(_ description: String) -> JSONSchema {
        .string(description: description, pattern: "^[0-9a-f]{64}$")
    }

    static var hashPath: JSONSchema {
        .array(description: "Hashes, bottom up (RFC 9162).", maxItems: 64, items: hash("A node hash."))
    }

    static func enumeration<T: CaseIterable & RawRepresentable>(_: T.Type, description: String? = nil) -> JSONSchema where T.RawValue == String {
        .string(description: description, allowedValues: T.allCases.map { AnyCodable($0.rawValue) })
    }

    static let components: OrderedDictionary<OpenAPI.ComponentKey, JSONSchema> = [
        "Problem": problem,
        "Freshness": object([
            "position": position.with(description: "The position the view has folded."),
            "head": position.with(description: "The newest position known in the log."),
            "lag_events": count,
            "lag_seconds": .number(description: "Event-time lag; -1 when unknown."),
            "state": .string(allowedValues: "live", "catchingUp", "rebuilding", "storeUnavailable"),
        ]),
        "ProfileSummary": object([
            "followers": .integer(required: false),
            "following": .integer(required: false),
            "posts_count": .integer(required: false),
            "verified": .boolean(required: false),
            "category": .string(required: false),
            "posts_analysed": count,
            "posts_failed": count,
        ]),
        "ComponentHealth": object([
            "status": enumeration(HealthStatus.self),
            "memory_pct": percent, "cpu_pct": percent, "disk_pct": percent, "latency_ms": .number(),
            "sampled_at_us": micros,
            "breaker": enumeration(BreakerState.self).optionalSchemaObject(),
        ]),
        "ComponentReport": object([
            "status": .string(description: "The sample's status, or stale when the sample is older than --health-stale-after-s.",
                              allowedValues: "ok", "degraded", "down", "stale"),
            "reported_status": enumeration(HealthStatus.self),
            "sample_age_seconds": .number(), "sampled_at": iso8601, "sampled_at_us": micros,
            "memory_pct": percent, "cpu_pct": percent, "disk_pct": percent, "latency_ms": .number(),
            "breaker": enumeration(BreakerState.self).optionalSchemaObject(),
        ]),
        "SystemStatus": object([
            "status": .string(allowedValues: "healthy", "degraded", "down", "unknown"),
            "ai_system": .string(allowedValues: "operational", "degraded", "down", "unknown"),
        ]),
        "CdnCounts": object(["queued": count, "succeeded": count, "failed": count, "success_rate": rate]),
        "Cdn": cdn,
        "MetricsBucket": object([
            "start": micros.with(description: "Start of the bucket, µs since 1970 UTC."),
            "searches": count, "cache_hits": count, "unlocks": count, "credits_spent": count,
            "analyses_ok": count, "analyses_failed": count,
            "cdn": .array(description: "CDN jobs by priority (critical, high, medium, low) × outcome (queued, succeeded, failed).",
                          items: count),
        ]),
        "EventLine": eventLine,
        "InclusionProof": object([
            "proof": .string(allowedValues: "inclusion"), "position": Schemas.position, "tree_size": count,
            "leaf_hash": hash("SHA-256(0x00 ‖ the event's canonical bytes)."), "root_hash": hash("The root of the first `tree_size` events."),
            "audit_path": hashPath,
        ]),
        "ConsistencyProof": object([
            "proof": .string(allowedValues: "consistency"), "from": count, "to": count,
            "from_root": hash("The root of the first `from` events."), "to_root": hash("The root of the first `to` events."),
            "consistency_path": hashPath,
        ]),
        "EventPage": eventPage("next_from_position", "The `from_position` of the next page; null on the last page."),
        "StreamPage": eventPage("next_from_version", "The `from_version` of the next page; null on the last page."),
        "Positions": object([
            "position": position, "positions": .array(items: position), "events": count,
            "replayed": .boolean(description: "true: the Idempotency-Key was used before; nothing new was written"),
        ]),
    ]

    /// Open: handlers add members for their refusal (ProblemMapping.swift), so a new member
    /// is not a schema violation.
    static var problem: JSONSchema {
        .object(description: "Every error (RFC 9457). `code` is stable and has one status: " + OpenAPIDocument.problemCodes, properties: [
            "type": .string(allowedValues: "about:blank"),
            "title": .string,
            "detail": .string(description: "What went wrong and what to do."),
            "code": .string(allowedValues: ProblemCode.all.map { AnyCodable($0.rawValue) }),
            "status": .integer(maximum: (599, exclusive: false), minimum: (400, exclusive: false)),
            "field": .string(required: false, description: "The field at fault (invalid_input, unknown_type)."),
            "item": .integer(required: false, description: "The batch item at fault.", minimum: (0, exclusive: false)),
            "head": .integer(required: false, description: "view_not_ready: the log's head position."),
            "state": .string(required: false, description: "view_not_ready: the view's state."),
            "balance": .integer(required: false, description: "insufficient_credits: the caller's balance."),
            "cost": .integer(required: false, description: "insufficient_credits: the unlock's cost."),
            "breaker": enumeration(BreakerState.self).optionalSchemaObject().with(description: "store_unavailable: the store breaker's state."),
        ])
    }

    static var cdn: JSONSchema {
        object([
            "queued": count, "succeeded": count, "failed": count, "success_rate": rate,
            "by_priority": map(ref("CdnCounts"), description: "Keyed by priority: critical, high, medium, low (all four present)."),
        ])
    }

    /// `EventLine.object`: the line `replay inspect` prints.
    static var eventLine: JSONSchema {
        object([
            "position": position, "stream": .string, "version": count, "type": .string,
            "schema_version": .integer(maximum: (65535, exclusive: false), minimum: (1, exclusive: false)),
            "recorded_at": iso8601, "actor": .string, "correlation_id": .string, "causation_id": .string,
            "idempotency_key": .string(required: false, description: "Only when the append had one."),
            "data": .object(nullable: true, description: "The event's fields; null for an event this build cannot read."),
            "opaque": object(["reason": .string, "payload_base64": .string]).optionalSchemaObject()
                .with(description: "Only with data null: why it is unreadable and its payload."),
            "leaf_hash": hash("The event's RFC 9162 leaf hash, SHA-256(0x00 ‖ canonical bytes), for `replay check-proof`."),
        ])
    }

    static func eventPage(_ next: String, _ description: String) -> JSONSchema {
        object(["events": .array(items: ref("EventLine")), next: .integer(nullable: true, description: description, minimum: (0, exclusive: false))])
    }
}
