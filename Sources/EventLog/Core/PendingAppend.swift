import Dispatch

/// An append waiting for the writer: validated on the caller's task, so that the writer
/// only decides (versions, idempotency) and writes.
struct PendingAppend: Sendable {
    var appends: [StreamAppend]
    var idempotencyKey: String?
    var eventCount: Int
    /// An upper bound of the encoded size, for sizing batches.
    var estimatedBytes: Int
    var continuation: CheckedContinuation<AppendResult, any Error>?

    static func validate(_ appends: [StreamAppend], idempotencyKey: String?) throws -> PendingAppend {
        guard !appends.isEmpty else { throw EventLogError(.invalidInput, "an append needs at least one stream") }
        if let key = idempotencyKey {
            guard !key.utf8.isEmpty, key.utf8.count <= EventLimits.maxIdempotencyKeyBytes else {
                throw EventLogError(.invalidInput, "idempotency key must be 1...\(EventLimits.maxIdempotencyKeyBytes) bytes")
            }
        }
        var seen = Set<String>()
        var events = 0
        var bytes = 0
        for append in appends {
            try StreamNameRules.validate(append.stream)
            guard seen.insert(append.stream).inserted else {
                throw EventLogError(.invalidInput, "stream \(append.stream) appears twice in one append; merge its events")
            }
            guard !append.events.isEmpty else {
                throw EventLogError(.invalidInput, "the append to \(append.stream) has no events")
            }
            for event in append.events {
                try validate(event, stream: append.stream)
                bytes += 64 + append.stream.utf8.count + event.type.utf8.count + event.actor.utf8.count
                    + event.correlationID.utf8.count + event.causationID.utf8.count
                    + (idempotencyKey?.utf8.count ?? 0) + event.payload.count
            }
            events += append.events.count
        }
        guard bytes <= EventLimits.maxBatchBytes, events <= EventLimits.maxBatchEvents else {
            throw EventLogError(.invalidInput, "an append may hold up to \(EventLimits.maxBatchBytes >> 20) MiB of events; split it (got about \(bytes) bytes)")
        }
        return PendingAppend(appends: appends, idempotencyKey: idempotencyKey, eventCount: events, estimatedBytes: bytes)
    }

    private static func validate(_ event: ProposedEvent, stream: String) throws {
        func bounded(_ value: String, _ name: String, _ max: Int, required: Bool = false) throws {
            let count = value.utf8.count
            guard count <= max, !required || count > 0 else {
                throw EventLogError(.invalidInput, "\(name) of an event for \(stream) must be \(required ? 1 : 0)...\(max) bytes, got \(count)")
            }
        }
        try bounded(event.type, "type", EventLimits.maxTypeBytes, required: true)
        guard isTypeName(event.type) else {
            throw EventLogError(.invalidInput, "event type '\(event.type)' may hold only letters, digits, '_' and '.'")
        }
        try bounded(event.actor, "actor", EventLimits.maxActorBytes)
        try bounded(event.correlationID, "correlation id", EventLimits.maxCorrelationBytes)
        try bounded(event.causationID, "causation id", EventLimits.maxCausationBytes)
        guard event.payload.count <= EventLimits.maxPayloadBytes else {
            throw EventLogError(.invalidInput, "payload of a \(event.type) event is \(event.payload.count) bytes; the bound is \(EventLimits.maxPayloadBytes)")
        }
        guard event.schemaVersion >= 1 else { throw EventLogError(.invalidInput, "schema versions start at 1") }
    }
}

/// Letters, digits, `_` and `.`, checked over contiguous UTF-8 when the string has it.
private func isTypeName(_ type: String) -> Bool {
    func allowed(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte | 0x20 >= 0x61 && byte | 0x20 <= 0x7A) || byte == 0x5F || byte == 0x2E
    }
    if let result = type.utf8.withContiguousStorageIfAvailable({ bytes in
        for byte in bytes where !allowed(byte) { return false }
        return true
    }) {
        return result
    }
    return type.utf8.allSatisfy(allowed)
}
