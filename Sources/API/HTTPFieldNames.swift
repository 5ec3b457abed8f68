public import HTTPTypes

/// Tally's own headers, spelled once.
extension HTTPField.Name {
    /// Request: wait (bounded) until the view includes this log position.
    public static let tallyAfter = Self("Tally-After")!
    /// Response: the position the view answered at.
    public static let tallyPosition = Self("Tally-Position")!
    /// Response: how many events the view is behind the log's head.
    public static let tallyLagEvents = Self("Tally-Lag-Events")!
    /// Request: makes a command safe to retry.
    public static let idempotencyKey = Self("Idempotency-Key")!
    /// Request: recorded on the events a command writes (at most 64 characters kept).
    public static let correlationID = Self("X-Correlation-Id")!
    /// Response: the id of the request in the server's logs.
    public static let requestID = Self("Request-Id")!
}
