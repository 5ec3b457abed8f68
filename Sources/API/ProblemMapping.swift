public import EventLog

/// The one place errors become HTTP statuses and problem codes
/// (`application/problem+json` bodies carry `code`).
public struct Problem: Sendable, Hashable {
    public var status: Int
    public var code: String
    public var title: String
    public var detail: String
    /// Seconds a client should wait before retrying, for 503s.
    public var retryAfter: Int?

    public init(status: Int, code: String, title: String, detail: String, retryAfter: Int? = nil) {
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.retryAfter = retryAfter
    }

    public init(_ error: EventLogError) {
        switch error.code {
        case .invalidInput:
            self.init(status: 422, code: error.code.description, title: "Invalid input", detail: error.message)
        case .wrongExpectedVersion:
            self.init(status: 409, code: error.code.description, title: "Conflict", detail: error.message)
        case .closed, .io, .locked, .readOnly:
            self.init(status: 503, code: error.code.description, title: "Store unavailable", detail: error.message, retryAfter: 1)
        default:
            self.init(status: 500, code: error.code.description, title: "Store error", detail: error.message)
        }
    }
}
