/// The domain's event types and the stream category each belongs to. The payload codec
/// for each type arrives with the domain issue; the names are fixed now because the log,
/// projections and tools all key on them.
public enum EventCatalogue {
    public struct Entry: Sendable, Hashable {
        public var type: String
        /// The stream category: events of this type go to `<category>-<id>` streams.
        public var category: String
    }

    public static let entries: [Entry] = [
        Entry(type: "CreditsGranted", category: "user"),
        Entry(type: "CreatorSearched", category: "user"),
        Entry(type: "ProfileRefreshed", category: "profile"),
        Entry(type: "ProfileUnlocked", category: "user"),
        Entry(type: "PostAnalysisCompleted", category: "profile"),
        Entry(type: "PostAnalysisFailed", category: "profile"),
        Entry(type: "CdnJobQueued", category: "cdn"),
        Entry(type: "CdnJobSucceeded", category: "cdn"),
        Entry(type: "CdnJobFailed", category: "cdn"),
        Entry(type: "HealthSampled", category: "health"),
        Entry(type: "CircuitBreakerChanged", category: "health"),
    ]

    private static let byType: [String: Entry] = Dictionary(uniqueKeysWithValues: entries.map { ($0.type, $0) })

    /// The catalogue entry of `type`, or nil for a type this build does not know (kept
    /// as opaque bytes and skipped by projections, never a crash).
    public static func entry(for type: String) -> Entry? { byType[type] }
}
