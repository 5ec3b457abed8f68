/// Bounds and normalisation of the fields the catalogue shares. Every check throws a
/// `DomainError` naming the field; nothing is clamped silently.
public enum FieldRules {
    public static let maxUserIDBytes = 128
    public static let maxPostIDBytes = 64
    public static let maxJobIDBytes = 64
    public static let maxComponentBytes = 64
    public static let maxLabelBytes = 64
    public static let maxTextBytes = 1_024
    public static let maxUsernameLength = 30
    /// One day: no duration the backend reports is longer.
    public static let maxDurationMs = 86_400_000
    public static let maxCount: Int64 = 100_000_000_000
    public static let maxCredits: Int64 = 1_000_000_000

    /// Instagram's rules: 1–30 of a-z 0-9 . _, case-insensitive; returns the lowercase form.
    public static func username(_ value: String, field: String = "username") throws -> String {
        var out: [UInt8] = []
        out.reserveCapacity(value.utf8.count)
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"):
                out.append(byte)
            case UInt8(ascii: "A")...UInt8(ascii: "Z"):
                out.append(byte + 32)
            default:
                throw DomainError.invalid(field, "may hold only letters, digits, '.' and '_' (got \(quoted(value)))")
            }
        }
        guard (1...maxUsernameLength).contains(out.count) else {
            throw DomainError.invalid(field, "must be 1...\(maxUsernameLength) characters, got \(out.count)")
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// An identifier that becomes part of a stream name: printable ASCII without spaces.
    public static func identifier(_ value: String, field: String, maxBytes: Int) throws {
        let count = value.utf8.count
        guard (1...maxBytes).contains(count) else {
            throw DomainError.invalid(field, "must be 1...\(maxBytes) bytes, got \(count)")
        }
        guard value.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw DomainError.invalid(field, "may hold only printable ASCII without spaces (got \(quoted(value)))")
        }
    }

    /// Free text (reasons, error messages, categories): bounded, no control characters.
    public static func text(_ value: String, field: String, maxBytes: Int, allowEmpty: Bool = true) throws {
        let count = value.utf8.count
        guard count <= maxBytes, allowEmpty || count > 0 else {
            throw DomainError.invalid(field, allowEmpty ? "must be at most \(maxBytes) bytes, got \(count)" : "must be 1...\(maxBytes) bytes, got \(count)")
        }
        guard !value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw DomainError.invalid(field, "must not hold control characters")
        }
    }

    public static func integer<T: BinaryInteger>(_ value: T, field: String, in range: ClosedRange<T>) throws {
        guard range.contains(value) else {
            throw DomainError.invalid(field, "must be in \(range.lowerBound)...\(range.upperBound), got \(value)")
        }
    }

    public static func number(_ value: Double, field: String, in range: ClosedRange<Double>) throws {
        guard value.isFinite, range.contains(value) else {
            throw DomainError.invalid(field, "must be a number in \(range.lowerBound)...\(range.upperBound), got \(value)")
        }
    }

    static func quoted(_ value: String) -> String {
        let shown = value.utf8.count > 40 ? String(value.prefix(40)) + "…" : value
        return "'\(shown)'"
    }
}
