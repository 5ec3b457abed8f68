/// When the writer makes a batch durable before acknowledging it.
public enum FsyncPolicy: Sendable, Hashable, CustomStringConvertible {
    /// fdatasync every batch before acknowledging any append in it (the default).
    case always
    /// Acknowledge once written; fdatasync at most this many milliseconds later.
    case interval(milliseconds: Int)
    /// Never fdatasync batches (bulk import); segments are still synced on seal and close.
    case never

    public var description: String {
        switch self {
        case .always: "always"
        case .interval(let ms): "interval(\(ms)ms)"
        case .never: "never"
        }
    }

    /// Parses `always`, `never`, `interval` (100 ms) or `interval:MS`.
    public init?(parsing text: String) {
        switch text {
        case "always": self = .always
        case "never": self = .never
        case "interval": self = .interval(milliseconds: 100)
        default:
            guard text.hasPrefix("interval:"), let ms = Int(text.dropFirst("interval:".count)), ms > 0, ms <= 60_000 else {
                return nil
            }
            self = .interval(milliseconds: ms)
        }
    }
}
