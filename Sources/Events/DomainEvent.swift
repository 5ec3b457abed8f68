public import EventLog

/// One fact of the creator-analytics backend, as the catalogue defines it.
public enum DomainEvent: Sendable, Hashable {
    case creditsGranted(CreditsGranted)
    case creatorSearched(CreatorSearched)
    case profileRefreshed(ProfileRefreshed)
    case profileUnlocked(ProfileUnlocked)
    case postAnalysisCompleted(PostAnalysisCompleted)
    case postAnalysisFailed(PostAnalysisFailed)
    case cdnJobQueued(CdnJobQueued)
    case cdnJobSucceeded(CdnJobSucceeded)
    case cdnJobFailed(CdnJobFailed)
    case healthSampled(HealthSampled)
    case circuitBreakerChanged(CircuitBreakerChanged)

    public var type: EventType {
        switch self {
        case .creditsGranted: .creditsGranted
        case .creatorSearched: .creatorSearched
        case .profileRefreshed: .profileRefreshed
        case .profileUnlocked: .profileUnlocked
        case .postAnalysisCompleted: .postAnalysisCompleted
        case .postAnalysisFailed: .postAnalysisFailed
        case .cdnJobQueued: .cdnJobQueued
        case .cdnJobSucceeded: .cdnJobSucceeded
        case .cdnJobFailed: .cdnJobFailed
        case .healthSampled: .healthSampled
        case .circuitBreakerChanged: .circuitBreakerChanged
        }
    }

    /// The id part of the event's stream (`<category>-<id>`).
    public var streamID: String {
        switch self {
        case .creditsGranted(let e): e.user
        case .creatorSearched(let e): e.user
        case .profileUnlocked(let e): e.user
        case .profileRefreshed(let e): e.username
        case .postAnalysisCompleted(let e): e.username
        case .postAnalysisFailed(let e): e.username
        case .cdnJobQueued(let e): e.jobID
        case .cdnJobSucceeded(let e): e.jobID
        case .cdnJobFailed(let e): e.jobID
        case .healthSampled(let e): e.component
        case .circuitBreakerChanged(let e): e.component
        }
    }

    public var stream: String { type.category + "-" + streamID }

    /// The event with every field checked against its bounds and usernames normalised to
    /// lowercase; throws a `DomainError` naming the first bad field.
    public func validated() throws -> DomainEvent {
        switch self {
        case .creditsGranted(let e): .creditsGranted(try e.validated())
        case .creatorSearched(let e): .creatorSearched(try e.validated())
        case .profileRefreshed(let e): .profileRefreshed(try e.validated())
        case .profileUnlocked(let e): .profileUnlocked(try e.validated())
        case .postAnalysisCompleted(let e): .postAnalysisCompleted(try e.validated())
        case .postAnalysisFailed(let e): .postAnalysisFailed(try e.validated())
        case .cdnJobQueued(let e): .cdnJobQueued(try e.validated())
        case .cdnJobSucceeded(let e): .cdnJobSucceeded(try e.validated())
        case .cdnJobFailed(let e): .cdnJobFailed(try e.validated())
        case .healthSampled(let e): .healthSampled(try e.validated())
        case .circuitBreakerChanged(let e): .circuitBreakerChanged(try e.validated())
        }
    }

    /// The event as the log takes it: type name, current schema version, binary payload.
    /// Call on a validated event.
    public func proposed(actor: String = "", correlationID: String = "", causationID: String = "", recordedAt: Int64? = nil) -> ProposedEvent {
        ProposedEvent(
            type: type.rawValue, schemaVersion: EventType.currentSchemaVersion, recordedAt: recordedAt,
            actor: actor, correlationID: correlationID, causationID: causationID, payload: PayloadCodec.encode(self)
        )
    }
}

/// A stored event this build cannot read as a `DomainEvent`: an unknown type, a newer schema
/// version or malformed bytes. Shown as such and skipped by projections, never a crash.
public struct OpaqueEvent: Sendable, Hashable {
    public var type: String
    public var schemaVersion: UInt16
    public var payload: [UInt8]
    public var reason: DomainError
}

/// What a stored event's payload holds, as far as this build can tell.
public enum DecodedEvent: Sendable, Hashable {
    case known(DomainEvent)
    case opaque(OpaqueEvent)
}

extension RecordedEvent {
    /// The domain event, or nil when it is opaque to this build. The fast path for folds.
    public var domainEvent: DomainEvent? {
        guard let type = EventType(of: self) else { return nil }
        return try? withPayload { try PayloadCodec.decode(type, schemaVersion: schemaVersion, from: $0) }
    }

    /// The domain event, or why it is opaque: for tools that show every event.
    public func decoded() -> DecodedEvent {
        let reason: DomainError
        if let type = EventType(of: self) {
            do {
                return .known(try withPayload { try PayloadCodec.decode(type, schemaVersion: schemaVersion, from: $0) })
            } catch let error as DomainError {
                reason = error
            } catch {
                reason = DomainError(.malformedPayload, "\(error)")
            }
        } else {
            reason = DomainError(.unknownType, "type \(self.type) is not in this build's catalogue")
        }
        return .opaque(OpaqueEvent(type: self.type, schemaVersion: schemaVersion, payload: payload, reason: reason))
    }
}
