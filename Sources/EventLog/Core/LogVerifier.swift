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
        /// Set when a hash decided the break: which one the log (or the digest) records there,
        /// and which one the bytes give.
        public var hashes: HashMismatch?

        public init(position: LogPosition, segment: String, offset: Int, reason: String, hashes: HashMismatch? = nil) {
            self.position = position
            self.segment = segment
            self.offset = offset
            self.reason = reason
            self.hashes = hashes
        }

        public var description: String {
            let detail = hashes.map { "; expected hash \($0.expectedHex), found \($0.foundHex)" } ?? ""
            return "position \(position) (\(segment), byte \(offset)): \(reason)\(detail)"
        }
    }

    /// Two chain hashes that should be one. `expected` is what the record claims (a batch
    /// header's chain hash, the previous batch's hash, a digest's hash); `found` is what the
    /// bytes hash to (or the hash the log holds there, against a digest).
    public struct HashMismatch: Sendable, Equatable {
        public var expected: [UInt8]
        public var found: [UInt8]

        public init(expected: [UInt8], found: [UInt8]) {
            self.expected = expected
            self.found = found
        }

        public var expectedHex: String { hexString(expected) }
        public var foundHex: String { hexString(found) }
    }
}
