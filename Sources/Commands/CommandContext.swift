public import Events
import EventLog

/// Who issued a command and within what request: every event the command writes carries
/// it, so an auditor can follow a fact back to its caller and its request.
public struct CommandContext: Sendable, Hashable {
    /// `user:<sub>` or `service:<name>`: who caused the events.
    public var actor: String
    /// The request the command belongs to (e.g. a request id), shared by everything it caused.
    public var correlationID: String
    /// The message or event that directly caused this command.
    public var causationID: String
    /// Microseconds since 1970-01-01 UTC to stamp the events with, for tests and imports;
    /// nil lets the log stamp its commit time.
    public var recordedAt: Int64?

    public init(actor: String, correlationID: String = "", causationID: String = "", recordedAt: Int64? = nil) {
        self.actor = actor
        self.correlationID = correlationID
        self.causationID = causationID
        self.recordedAt = recordedAt
    }

    /// Checks the bounds the log sets, so that a bad context is `invalid_input` with the
    /// field named rather than a refusal from the store.
    func validated() throws(CommandError) -> CommandContext {
        try CommandError.validating {
            try FieldRules.text(actor, field: "actor", maxBytes: EventLimits.maxActorBytes, allowEmpty: false)
            try FieldRules.text(correlationID, field: "correlation_id", maxBytes: EventLimits.maxCorrelationBytes)
            try FieldRules.text(causationID, field: "causation_id", maxBytes: EventLimits.maxCausationBytes)
            if let recordedAt { try FieldRules.integer(recordedAt, field: "recorded_at", in: 0...Int64.max) }
        }
        return self
    }

    /// The log's form of a validated domain event, stamped with this context.
    func proposed(_ event: DomainEvent) -> ProposedEvent {
        event.proposed(actor: actor, correlationID: correlationID, causationID: causationID, recordedAt: recordedAt)
    }

    /// Checks a client's idempotency key against the log's bounds (1…128 bytes, no control
    /// characters) and returns the key the store is given: scoped by this context's actor
    /// and the route (`IdempotencyScope`).
    func scopedKey(_ key: String?, route: CommandRoute) throws(CommandError) -> String? {
        guard let key else { return nil }
        try CommandError.validating {
            try FieldRules.text(key, field: "idempotency_key", maxBytes: EventLimits.maxIdempotencyKeyBytes, allowEmpty: false)
        }
        return IdempotencyScope.storedKey(client: key, actor: actor, route: route)
    }
}

/// One outcome the AI worker reports for a post, for `recordAnalysis`.
public enum AnalysisResult: Sendable, Hashable {
    case completed(PostAnalysisCompleted)
    case failed(PostAnalysisFailed)

    var event: DomainEvent {
        switch self {
        case .completed(let e): .postAnalysisCompleted(e)
        case .failed(let e): .postAnalysisFailed(e)
        }
    }
}

/// One CDN job transition, for `recordCdn`.
public enum CdnTransition: Sendable, Hashable {
    case queued(CdnJobQueued)
    case succeeded(CdnJobSucceeded)
    case failed(CdnJobFailed)

    var event: DomainEvent {
        switch self {
        case .queued(let e): .cdnJobQueued(e)
        case .succeeded(let e): .cdnJobSucceeded(e)
        case .failed(let e): .cdnJobFailed(e)
        }
    }
}

/// One report of a monitor, for `recordHealth`: a health sample or a breaker change.
public enum HealthReport: Sendable, Hashable {
    case sample(HealthSampled)
    case breaker(CircuitBreakerChanged)

    var event: DomainEvent {
        switch self {
        case .sample(let e): .healthSampled(e)
        case .breaker(let e): .circuitBreakerChanged(e)
        }
    }
}
