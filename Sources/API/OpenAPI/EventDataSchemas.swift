import Events
import OpenAPIKit

/// The `data` object of each event type a worker reports, from the catalogue's field list
/// (`DomainEvent.jsonFields`): every field with its JSON type, the optional ones not
/// required, nothing else allowed (the parser refuses unknown members). Value rules beyond
/// the type (lengths, ranges) are the handlers' and answer 400 naming the field.
enum EventDataSchemas {
    /// One report item of `type`: `{"type": T, "data": {…}}`.
    static func item(_ type: EventType) -> JSONSchema {
        Schemas.object([
            "type": .string(allowedValues: AnyCodable(type.rawValue)),
            "data": data(type),
        ])
    }

    static func data(_ type: EventType) -> JSONSchema {
        var properties: OrderedDictionary<String, JSONSchema> = [:]
        for field in DomainEvent.jsonFields(of: type) {
            let schema = fieldSchema(field.name)
            properties[field.name] = field.optional ? schema.optionalSchemaObject() : schema
        }
        return Schemas.object(properties, description: "The fields of a \(type.rawValue) event.")
    }

    /// A field's JSON type; the catalogue uses each field name with one type.
    static func fieldSchema(_ name: String) -> JSONSchema {
        switch name {
        case "username":
            .string(minLength: 1, maxLength: FieldRules.maxUsernameLength, pattern: "^[A-Za-z0-9._]+$")
        case "served_from": Schemas.enumeration(ServedFrom.self)
        case "priority": Schemas.enumeration(CdnPriority.self)
        case "status": Schemas.enumeration(HealthStatus.self)
        case "state": Schemas.enumeration(BreakerState.self)
        case "duration_ms": .integer(maximum: (FieldRules.maxDurationMs, exclusive: false), minimum: (0, exclusive: false))
        case "amount", "followers", "following", "posts_count", "credits_spent", "bytes", "attempt": .integer
        case "found", "verified", "will_retry": .boolean
        case "sentiment", "memory_pct", "cpu_pct", "disk_pct", "latency_ms": .number
        default: .string
        }
    }
}
