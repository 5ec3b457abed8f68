/// The bounds every event and append is checked against, on write and on read.
/// They are part of the log format: a decoder refuses anything outside them.
public enum EventLimits {
    public static let maxStreamBytes = 256
    public static let maxTypeBytes = 128
    public static let maxActorBytes = 128
    public static let maxCorrelationBytes = 64
    public static let maxCausationBytes = 64
    public static let maxIdempotencyKeyBytes = 128
    public static let maxPayloadBytes = 1 << 20
    /// Encoded (uncompressed) events of one batch, and so of one append.
    public static let maxBatchBytes = 64 << 20
    /// Events in one batch. A batch at the size bound with minimal events stays below it.
    public static let maxBatchEvents = 1 << 22
}

/// Stream names are `category-id`: a category of `[a-z0-9_]`, a dash, then an id of
/// printable ASCII other than space (`user-42`, `profile-fit.bayann`, `health-database`).
enum StreamNameRules {
    static func validate(_ name: String) throws {
        let bytes = name.utf8
        guard !bytes.isEmpty, bytes.count <= EventLimits.maxStreamBytes else {
            throw EventLogError(.invalidInput, "stream name must be 1...\(EventLimits.maxStreamBytes) bytes, got \(bytes.count)")
        }
        var seenDash = false
        var categoryLength = 0
        var idLength = 0
        for byte in bytes {
            if !seenDash {
                if byte == UInt8(ascii: "-") {
                    seenDash = true
                } else if isCategoryByte(byte) {
                    categoryLength += 1
                } else {
                    throw EventLogError(.invalidInput, "stream category of '\(name)' may hold only a-z, 0-9 and _, then '-' and an id")
                }
            } else {
                guard byte > 0x20, byte < 0x7F else {
                    throw EventLogError(.invalidInput, "stream id of '\(name)' may hold only printable ASCII without spaces")
                }
                idLength += 1
            }
        }
        guard seenDash, categoryLength > 0, idLength > 0 else {
            throw EventLogError(.invalidInput, "stream name '\(name)' must be 'category-id', e.g. 'user-42'")
        }
    }

    private static func isCategoryByte(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
            || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
            || byte == UInt8(ascii: "_")
    }
}
