public import EventLog

/// The catalogue's event types. The raw value is the type name stored in the log; each
/// type lives in streams of one category (`<category>-<id>`).
public enum EventType: String, Sendable, Hashable, CaseIterable, Codable {
    case creditsGranted = "CreditsGranted"
    case creatorSearched = "CreatorSearched"
    case profileRefreshed = "ProfileRefreshed"
    case profileUnlocked = "ProfileUnlocked"
    case postAnalysisCompleted = "PostAnalysisCompleted"
    case postAnalysisFailed = "PostAnalysisFailed"
    case cdnJobQueued = "CdnJobQueued"
    case cdnJobSucceeded = "CdnJobSucceeded"
    case cdnJobFailed = "CdnJobFailed"
    case healthSampled = "HealthSampled"
    case circuitBreakerChanged = "CircuitBreakerChanged"

    /// The schema version this build writes. Older versions are upcast on read (none exist
    /// yet: version 1 is the first); newer ones are kept opaque.
    public static let currentSchemaVersion: UInt16 = 1

    public var category: String {
        switch self {
        case .creditsGranted, .creatorSearched, .profileUnlocked: "user"
        case .profileRefreshed, .postAnalysisCompleted, .postAnalysisFailed: "profile"
        case .cdnJobQueued, .cdnJobSucceeded, .cdnJobFailed: "cdn"
        case .healthSampled, .circuitBreakerChanged: "health"
        }
    }

    private static let names: [(type: EventType, bytes: [UInt8])] = allCases.map { ($0, Array($0.rawValue.utf8)) }

    /// The type of a stored event without building its type string (folds call this for
    /// every event). Nil for a type this build does not know.
    public init?(of event: RecordedEvent) {
        guard let found = event.withTypeBytes({ bytes in
            Self.names.first { $0.bytes.count == bytes.count && $0.bytes.withUnsafeBytes { $0.elementsEqual(bytes) } }?.type
        }) else { return nil }
        self = found
    }
}
