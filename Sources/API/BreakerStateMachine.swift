import Events

/// The store breaker's logic, without I/O, locks or HTTP: the wrapper (`StoreBreaker`) asks
/// `admit()` before a command and reports how the store answered; the clock is injected,
/// so tests move time by hand.
///
/// Closed: every command runs; `failureThreshold` consecutive store failures open it.
/// Open: commands are rejected until `openDuration` has passed, then it half-opens.
/// Half-open: one trial command at a time; its success closes the breaker, its failure
/// opens it again. Every transition is kept and handed out, once closed, to be written as
/// `CircuitBreakerChanged` events (component `store`): the store takes them only then. They
/// stay queued until an append of them succeeds (`beginRecording` / `endRecording`), one
/// batch at a time, retried unchanged after a failure so that its idempotency key makes a
/// retry of an append that did land write nothing twice.
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
    /// Queued transitions past this many (not counting a batch being appended) drop the
    /// oldest: a store down for days must not grow memory with every half-open trial.
    static var unrecordedCapacity: Int { 100 }

    /// A batch of transitions for one append: `firstSequence` numbers its first transition
    /// (this process's count of transitions so far), so the batch names itself.
    struct RecordingBatch: Equatable, Sendable {
        var firstSequence: UInt64
        var transitions: [CircuitBreakerChanged]
    }

    /// Transitions not yet written to the log, oldest first; the first `attempted` of them
    /// are the batch last handed out (it stays the same until it is appended).
    private var unrecorded: [CircuitBreakerChanged] = []
    private var firstUnrecordedSequence: UInt64 = 0
    private var attempted = 0
    private var recording = false
    /// Transitions dropped because the queue was full, since the start.
    private(set) var droppedTransitions = 0

    /// Transitions waiting for an append.
    var pendingTransitions: Int { unrecorded.count }

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

    /// The batch to append now, oldest first: nil unless closed (the store takes writes),
    /// something is queued and no other append of a batch is running. After a failed append
    /// the same batch comes again (later transitions wait for the next one).
    mutating func beginRecording() -> RecordingBatch? {
        guard state == .closed, !recording, !unrecorded.isEmpty else { return nil }
        if attempted == 0 { attempted = unrecorded.count }
        recording = true
        return RecordingBatch(firstSequence: firstUnrecordedSequence, transitions: Array(unrecorded.prefix(attempted)))
    }

    /// The append of the batch from `beginRecording` ended: `appended` drops it from the
    /// queue (it is durable); otherwise it is kept, and handed out again next time.
    mutating func endRecording(appended: Bool) {
        guard recording else { return }
        recording = false
        guard appended else { return }
        unrecorded.removeFirst(attempted)
        firstUnrecordedSequence += UInt64(attempted)
        attempted = 0
    }

    private mutating func transition(to next: BreakerState, reason: String) {
        state = next
        unrecorded.append(CircuitBreakerChanged(component: "store", state: next, reason: reason))
        if unrecorded.count - attempted > Self.unrecordedCapacity {
            // The oldest one not in the batch being appended; the batch keeps its numbers.
            unrecorded.remove(at: attempted)
            droppedTransitions += 1
            if attempted == 0 { firstUnrecordedSequence += 1 }
        }
    }
}
