/// What a verification found, on either backend: counts, the head it reached, the first
/// break. `FileLog` directories are walked by `verify(directory:)`, PostgreSQL rows by
/// `PostgresLog.verify`.
public enum LogVerifier {
    public struct Report: Sendable, Equatable {
        public var segments: Int
        public var batches: Int
        public var events: UInt64
        public var head: LogHead
        /// The first break, if any.
        public var firstBreak: Break?
        /// Set when the last batch is incomplete (a writer mid-append or a crash): not a break.
        public var tornTailBytes: Int?

        public var intact: Bool { firstBreak == nil }
    }

    public struct Break: Sendable, Equatable, CustomStringConvertible {
        public var position: LogPosition
        public var segment: String
        public var offset: Int
        public var reason: String
        public var description: String { "position \(position) (\(segment), byte \(offset)): \(reason)" }
    }
}
