/// An error from the event log. `code` is stable and safe to match on; `message` says what
/// went wrong and what to do; `cause` carries the underlying error when there is one.
public struct EventLogError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        private init(_ name: String) { self.name = name }

        /// An event or append broke a documented bound (sizes, counts, name rules).
        public static let invalidInput = Code("invalid_input")
        /// The stream was not at the version the append expected; nothing was written.
        public static let wrongExpectedVersion = Code("wrong_expected_version")
        /// Another process holds the writer lock on the data directory.
        public static let locked = Code("locked")
        /// Stored bytes failed a check (checksum, chain, bounds) before the end of the log.
        public static let corrupted = Code("corrupted")
        /// A system call on the data directory failed.
        public static let io = Code("io")
        /// LZ4 compression or decompression failed.
        public static let compression = Code("compression")
        /// The log was closed, or failed earlier and must be reopened.
        public static let closed = Code("closed")
        /// The shared store (PostgreSQL) cannot be reached. The operation was not done, or,
        /// when the connection broke during a commit, its outcome is unknown: retry with the
        /// same idempotency key.
        public static let unavailable = Code("unavailable")
        /// The store does not offer the operation (an in-memory stand-in asked to verify).
        public static let unsupported = Code("unsupported")
        /// The log was opened read-only.
        public static let readOnly = Code("read_only")

        public var description: String { name }
    }

    public var code: Code
    public var message: String
    public var cause: (any Error & Sendable)?

    public init(_ code: Code, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String {
        if let cause { return "\(code): \(message) (cause: \(cause))" }
        return "\(code): \(message)"
    }
}

extension EventLogError {
    /// Any error as an `EventLogError`, wrapping the unexpected ones.
    static func wrapping(_ error: any Error, _ code: Code = .io) -> EventLogError {
        if let error = error as? EventLogError { return error }
        return EventLogError(code, "\(error)")
    }
}
