import Events

/// The store breaker's logic, without I/O, locks or HTTP: the wrapper (`StoreBreaker`) asks
/// `admit()` before a command and reports how the store answered; the clock is injected,
/// so tests move time by hand.
///
/// Closed: every command runs; `failureThreshold` consecutive store failures open it.
/// Open: commands are rejected until `openDuration` has passed, then it half-opens.
/// Half-open: one trial command at a time; its success closes the breaker, its failure
/// opens it again. Every transition is kept and handed out, once closed, to be written as
/// `CircuitBreakerChanged` events (component `store`): the store takes them only then.
struct BreakerStateMachine<C: Clock>: Sendable where C.Duration == Duration {
    /// What to do with a command.
    enum Admission: Equatable, Sendable {
        /// Run it.
        case allow
        /// Run it as the half-open trial: its outcome decides the state.
        case trial
        /// Refuse it without calling the store; retry after this long.
        case reject(retryAfter: Duration, state: BreakerState)
    }

    let failureThreshold: Int
    let openDuration: Duration
    let clock: C

    private(set) var state: BreakerState = .closed
    /// Consecutive store failures.
    private(set) var failures = 0
    private var openedAt: C.Instant?
    private var trialInFlight = false
    /// Transitions not yet written to the log.
    private var unrecorded: [CircuitBreakerChanged] = []

    init(failureThreshold: Int, openDuration: Duration, clock: C) {
        self.failureThreshold = max(1, failureThreshold)
        self.openDuration = openDuration
        self.clock = clock
    }

    mutating func admit() -> Admission {
        switch state {
        case .closed:
            return .allow
        case .open:
            let elapsed = openedAt.map { $0.duration(to: clock.now) } ?? openDuration
            guard elapsed >= openDuration else { return .reject(retryAfter: openDuration - elapsed, state: .open) }
            transition(to: .halfOpen, reason: "trying the store again")
            return admitTrial()
        case .halfOpen:
            return admitTrial()
        }
    }

    private mutating func admitTrial() -> Admission {
        // One trial at a time: the others wait for its outcome.
        guard !trialInFlight else { return .reject(retryAfter: .seconds(1), state: .halfOpen) }
        trialInFlight = true
        return .trial
    }

    /// The store took the command.
    mutating func succeeded() {
        failures = 0
        trialInFlight = false
        if state != .closed {
            openedAt = nil
            transition(to: .closed, reason: "the store took a write again")
        }
    }

    /// The store failed or missed the deadline; `reason` is kept with an opening transition.
    mutating func failed(reason: String) {
        failures += 1
        trialInFlight = false
        if state == .halfOpen || (state == .closed && failures >= failureThreshold) {
            openedAt = clock.now
            transition(to: .open, reason: String("\(failures) consecutive store failures; last: \(reason)".prefix(1_000)))
        }
    }

    /// The command was refused for itself (bad input, credits, a conflict): that says
    /// nothing about the store, but a trial is over.
    mutating func refused() {
        trialInFlight = false
    }

    /// The operator says the store is back: half-open now; the next command tries it.
    mutating func reset(reason: String) {
        guard state != .closed else { return }
        trialInFlight = false
        transition(to: .halfOpen, reason: reason)
    }

    /// The transitions to append, handed out once (only when closed: the store takes writes).
    mutating func takeUnrecorded() -> [CircuitBreakerChanged] {
        guard state == .closed else { return [] }
        defer { unrecorded = [] }
        return unrecorded
    }

    private mutating func transition(to next: BreakerState, reason: String) {
        state = next
        unrecorded.append(CircuitBreakerChanged(component: "store", state: next, reason: reason))
    }
}
