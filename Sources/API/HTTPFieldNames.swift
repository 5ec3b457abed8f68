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
    /// Request: recorded as `correlation_id` on the events a command writes (1…64 visible
    /// ASCII characters; default: the request id). Response: echoed when sent.
    public static let correlationID = Self("X-Correlation-Id")!
    /// Request: recorded as `causation_id` on the events a command writes (1…64 visible
    /// ASCII characters): the message or event that caused the request.
    public static let causationID = Self("X-Causation-Id")!
    /// Request: the client's id for the request, used as the request id when it is 1…64
    /// visible ASCII characters (otherwise the server makes one).
    public static let clientRequestID = Self("X-Request-Id")!
    /// Response: the id of the request in the server's logs.
    public static let requestID = Self("Request-Id")!
}
