/// What one HTTP connection may take of the server's time: a request head must arrive
/// whole within `headerTimeout` of its first byte, and its body within `bodyTimeout` of
/// the head; a request the HTTP parser refuses before its head is complete (a header past
/// the size limit, a malformed request line) is answered with a problem document and the
/// connection closed. A pure state machine: `ConnectionGuardHandler` feeds it the
/// connection's events and carries out the actions it returns.
struct ConnectionGuard: Sendable {
    enum Phase: Sendable, Equatable {
        /// No request begun: the keep-alive idle time, which Hummingbird's idle timeout bounds.
        case idle
        /// Bytes of a request have arrived, its head is not complete.
        case readingHead
        /// The head is in, the body's end is not.
        case readingBody
        /// The request is read whole; the response is being made.
        case answering
    }

    /// Which deadline an armed timer stands for.
    enum Deadline: Sendable, Equatable {
        case head, body
    }

    enum Action: Sendable, Equatable {
        case none
        /// Cancel any armed timer and arm one for `deadline`, firing after `after`.
        case arm(Deadline, after: Duration)
        /// Cancel the armed timer.
        case disarm
        /// Close the connection without an answer: a deadline passed.
        case close(Deadline)
        /// Answer the refused request with a problem (400 `bad_request`), then close.
        case refuse
        /// Pass the error on: a response may already be under way, so the route's error
        /// handling (or Hummingbird's) deals with it.
        case forward
    }

    let headerTimeout: Duration
    let bodyTimeout: Duration
    private(set) var phase = Phase.idle

    init(headerTimeout: Duration, bodyTimeout: Duration) {
        self.headerTimeout = headerTimeout
        self.bodyTimeout = bodyTimeout
    }

    /// Bytes arrived from the client (before HTTP parsing).
    mutating func bytesArrived() -> Action {
        guard phase == .idle else { return .none }
        phase = .readingHead
        return .arm(.head, after: headerTimeout)
    }

    mutating func receivedHead() -> Action {
        phase = .readingBody
        return .arm(.body, after: bodyTimeout)
    }

    mutating func receivedEnd() -> Action {
        phase = .answering
        return .disarm
    }

    /// The response's end was written. A response written before the body was read (an
    /// early refusal) leaves the body deadline armed: the body still has to arrive.
    mutating func wroteEnd() -> Action {
        if phase == .answering { phase = .idle }
        return .none
    }

    mutating func timerFired(_ deadline: Deadline) -> Action {
        switch (phase, deadline) {
        case (.readingHead, .head), (.readingBody, .body): .close(deadline)
        default: .none
        }
    }

    /// The HTTP parser refused the bytes. Before a head was complete nothing answers the
    /// request, so the guard does; later, the route reading the body sees the error.
    mutating func parserFailed() -> Action {
        switch phase {
        case .idle, .readingHead:
            phase = .answering
            return .refuse
        case .readingBody, .answering:
            return .forward
        }
    }

    /// A configured duration (settings bound it to an hour at most) as NIO's nanoseconds.
    static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? .max : whole.addingReportingOverflow(attoseconds / 1_000_000_000).partialValue
    }
}
