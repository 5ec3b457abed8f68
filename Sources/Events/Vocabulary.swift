/// The closed vocabularies of the catalogue. Raw values are the JSON spellings; the binary
/// codec stores a case's index in `allCases`, so new cases are only ever appended.
public enum ServedFrom: String, Sendable, Hashable, CaseIterable, Codable {
    case cache
    case fresh
}

public enum CdnPriority: String, Sendable, Hashable, CaseIterable, Codable {
    case critical
    case high
    case medium
    case low
}

public enum HealthStatus: String, Sendable, Hashable, CaseIterable, Codable {
    case ok
    case degraded
    case down
}

public enum BreakerState: String, Sendable, Hashable, CaseIterable, Codable {
    case closed
    case open
    case halfOpen = "half_open"
}

extension CaseIterable where Self: RawRepresentable, Self.RawValue == String, AllCases == [Self] {
    /// The case spelled `raw`, or a `DomainError` listing the spellings.
    static func parse(_ raw: String, field: String) throws -> Self {
        guard let value = Self(rawValue: raw) else {
            throw DomainError.invalid(field, "must be one of \(allCases.map(\.rawValue).joined(separator: ", ")), got \(FieldRules.quoted(raw))")
        }
        return value
    }
}
