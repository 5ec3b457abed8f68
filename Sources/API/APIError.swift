public import EventLog
public import Projections

/// A refusal the HTTP edge makes itself (a body of the wrong shape, a bad query parameter or
/// header, a view not built yet), in the problem vocabulary. Thrown by handlers; turned
/// into a response by `Problem.init(_:)` like every other error.
public struct APIError: Error, Sendable, CustomStringConvertible {
    public var code: ProblemCode
    /// What went wrong and what to do.
    public var message: String
    /// The field at fault (JSON member, query parameter or header name), when one is.
    public var field: String?
    /// For batches: the index of the item at fault.
    public var item: Int?
    /// Seconds a client should wait before retrying (503s).
    public var retryAfter: Int?
    /// For `view_not_ready`: the log's head and the view's state, to show progress.
    public var head: LogPosition?
    public var viewState: ProjectionState?
    public var cause: (any Error & Sendable)?

    public init(_ code: ProblemCode, _ message: String, field: String? = nil, item: Int? = nil, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.field = field
        self.item = item
        self.cause = cause
    }

    public var description: String { "\(code): \(message)" }
}

extension APIError {
    /// A body that is not what the endpoint takes; `message` says which shape it takes.
    static func malformedBody(_ message: String) -> APIError {
        APIError(.malformedBody, message)
    }

    /// A query parameter or header out of its rules.
    static func invalid(_ field: String, _ message: String) -> APIError {
        APIError(.invalidInput, "\(field) \(message)", field: field)
    }
}
