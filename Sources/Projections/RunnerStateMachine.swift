public import EventLog

/// The projection runner's decisions, without I/O, locks or clock reads (the caller passes
/// `now`): which state the view is in, when to publish, when to ask the store for its head,
/// how long to wait after a failure, and when to write a snapshot. `ProjectionRunner` does
/// what the returned actions say.
///
/// States: `catchingUp` until the fold first reaches the head the store reports, then
/// `live`; `rebuilding` instead of `catchingUp` when the fold restarted from the start of
/// the log (another version's snapshot, or one from another log); `storeUnavailable` while
/// the store fails, until the next subscription. While an older version's view is served
/// during a rebuild, nothing of the partial rebuild is published until it is live.
struct RunnerStateMachine: Sendable {
    enum Action: Equatable, Sendable {
        /// Publish the fold's view; change the state too when one is given.
        case publish(ProjectionState?)
        /// Publish the older version's view, stamped with its position (`rebuilding`).
        case publishPrevious
        /// Change the state only; the published view stays.
        case setState(ProjectionState)
        /// The fold is ahead of the log's head: its snapshot came from another log. Drop the
        /// fold and its snapshot position, fold from position 0.
        case restart(head: LogPosition, position: LogPosition)
    }

    private(set) var rebuilding: Bool
    /// The fold has reached the head of this subscription.
    private(set) var live = false
    /// The older version's view is published; the rebuild publishes only once live.
    private(set) var servingPrevious: Bool
    /// The head the store last reported in this run.
    private(set) var head: LogPosition = 0
    /// Failed attempts since the last successful subscription.
    private(set) var attempt = 0

    private let publishInterval: Duration
    private let retryDelays: [Duration]
    private let snapshotEveryEvents: UInt64
    private let snapshotEvery: Duration
    private var lastPublish: ContinuousClock.Instant
    /// Where and when the last snapshot was scheduled (or the fold started).
    private var snapshotScheduled: (position: LogPosition, time: ContinuousClock.Instant)

    /// `rebuilding`: the fold starts over (no snapshot of this version); `servingPrevious`:
    /// an older version's view can be served meanwhile.
    init(position: LogPosition, rebuilding: Bool, servingPrevious: Bool, options: ProjectionRunnerOptions, now: ContinuousClock.Instant) {
        self.rebuilding = rebuilding || servingPrevious
        self.servingPrevious = servingPrevious
        publishInterval = .milliseconds(max(0, options.publishMinimumIntervalMilliseconds))
        retryDelays = options.retryDelays.isEmpty ? [.seconds(1)] : options.retryDelays
        snapshotEveryEvents = UInt64(max(1, options.snapshotEveryEvents))
        snapshotEvery = .seconds(options.snapshotEverySeconds)
        lastPublish = now
        snapshotScheduled = (position, now)
    }

    /// What to publish before the first subscription.
    var started: Action {
        servingPrevious ? .publishPrevious : .publish(rebuilding ? .rebuilding : .catchingUp)
    }

    /// The store answered `head` at the start of a subscription from `position`, while the
    /// view published is at `published`.
    mutating func subscribed(head: LogPosition, position: LogPosition, published: LogPosition, now: ContinuousClock.Instant) -> [Action] {
        self.head = head
        attempt = 0
        lastPublish = now
        var actions: [Action] = []
        var position = position
        if head < position {
            actions += [.restart(head: head, position: position), .publish(.rebuilding)]
            position = 0
            rebuilding = true
            servingPrevious = false
            snapshotScheduled.position = 0
        }
        if servingPrevious, published > head {
            // The older version's view is ahead of this log: it came from another log.
            servingPrevious = false
            actions.append(.publish(.rebuilding))
        }
        live = position >= head
        if live {
            rebuilding = false
            actions.append(.publish(.live))
        } else {
            actions.append(.setState(rebuilding ? .rebuilding : .catchingUp))
        }
        return actions
    }

    /// After folding up to `position`: true when the fold may have caught up and the store
    /// must be asked for its head (then `headAnswered`).
    func needsHead(at position: LogPosition) -> Bool {
        !live && position >= head
    }

    mutating func headAnswered(_ head: LogPosition, position: LogPosition) {
        self.head = head
        live = position >= head
        if live { rebuilding = false }
    }

    /// What to publish after a batch: every batch once live; while catching up at most every
    /// `publishMinimumIntervalMilliseconds`, and nothing while the older version is served.
    mutating func folded(now: ContinuousClock.Instant) -> Action? {
        if live { return .publish(.live) }
        guard !servingPrevious, now - lastPublish >= publishInterval else { return nil }
        lastPublish = now
        return .publish(nil)
    }

    /// The store failed: the state to show and how long to wait before the next attempt
    /// (the delays in turn, the last one repeating).
    mutating func failed() -> (action: Action, retryIn: Duration) {
        let delay = retryDelays[min(attempt, retryDelays.count - 1)]
        attempt += 1
        return (.setState(.storeUnavailable), delay)
    }

    /// True when a snapshot of the fold at `position` is due (`snapshotEveryEvents` and a
    /// quarter of the last snapshot's position folded since it, or `snapshotEverySeconds`
    /// passed) and none is being written; then it counts as scheduled. The quarter keeps
    /// the bytes written while catching up through n events a small multiple of one
    /// snapshot's, where a fixed spacing would write n ÷ spacing whole views.
    mutating func snapshotDue(at position: LogPosition, now: ContinuousClock.Instant, writing: Bool) -> Bool {
        let spacing = max(snapshotEveryEvents, snapshotScheduled.position / 4)
        guard position > snapshotScheduled.position, !writing,
              position - snapshotScheduled.position >= spacing || now - snapshotScheduled.time >= snapshotEvery
        else { return false }
        snapshotScheduled = (position, now)
        return true
    }
}
