/// The decisions of a pipelined fold's hand-off, with no threads and no I/O: one producer
/// (the log reader) offers batches in order; every lane (a fold on its own thread) takes
/// every batch, in the same order. At most `capacity` batches wait in the window; a full
/// window parks the producer until the slowest lane takes the oldest batch (back-pressure,
/// never an unbounded buffer). Each lane also holds the one batch it folds, so at most
/// `capacity + lanes` batches are alive at once.
///
/// `Waiter` is what a suspended party is resumed through (a continuation in
/// `FoldPipeline`, a plain value in tests); the state machine only hands waiters back in the
/// actions, and the caller resumes them outside its lock.
struct BatchHandOff<Batch, Waiter> {
    /// Why the fold stopped before the producer finished.
    enum Stop {
        case failed(any Error)
        case cancelled
    }

    enum Phase {
        /// The producer may still offer batches.
        case running
        /// The producer offered its last batch; lanes drain the window, then exit.
        case finished
        /// A failure or a cancellation: lanes exit at their next take, the window is dropped.
        case stopped(Stop)
    }

    enum OfferAction {
        /// Queued; wake the lanes.
        case accepted
        /// The window is full: park the producer (`parkProducer`) and offer again when resumed.
        case full
        /// Offer nothing more; the fold has stopped.
        case stopped(Stop)
    }

    enum TakeAction {
        /// Fold this batch; resume `producer` (parked on a full window) if there is one.
        case fold(Batch, resumeProducer: Waiter?)
        /// Nothing to take yet: sleep until woken.
        case wait
        /// The fold is over for this lane.
        case exit
    }

    /// How the whole fold ended, once every lane exited.
    enum Outcome {
        case finished
        case stopped(Stop)
    }

    let capacity: Int
    private(set) var phase: Phase = .running
    private var window: [Batch] = []
    /// Sequence number of `window[0]`.
    private var base = 0
    /// Per lane: the sequence number of the next batch it takes.
    private var next: [Int]
    private var producer: Waiter?
    private var completion: Waiter?
    /// Lanes that have not exited.
    private(set) var runningLanes: Int

    init(lanes: Int, capacity: Int) {
        precondition(lanes > 0 && capacity > 0, "a hand-off needs a lane and room for a batch")
        self.capacity = capacity
        next = Array(repeating: 0, count: lanes)
        runningLanes = lanes
    }

    /// Batches waiting in the window (for tests and the bound's proof).
    var waiting: Int { window.count }

    /// True while the producer is parked on a full window.
    var isProducerParked: Bool { producer != nil }

    mutating func offer(_ batch: Batch) -> OfferAction {
        switch phase {
        case .stopped(let stop): return .stopped(stop)
        case .finished: preconditionFailure("a batch offered after the producer finished")
        case .running: break
        }
        guard window.count < capacity else { return .full }
        window.append(batch)
        return .accepted
    }

    /// Parks the producer after `.full`; returns the waiter back when it must not wait
    /// (room appeared meanwhile, or the fold stopped), so the caller resumes it at once.
    mutating func parkProducer(_ waiter: Waiter) -> Waiter? {
        if case .running = phase, window.count >= capacity {
            producer = waiter
            return nil
        }
        return waiter
    }

    mutating func take(lane: Int) -> TakeAction {
        switch phase {
        case .stopped: return .exit
        case .running, .finished: break
        }
        let index = next[lane] - base
        guard index < window.count else {
            if case .finished = phase { return .exit }
            return .wait
        }
        let batch = window[index]
        next[lane] += 1
        var resume: Waiter?
        // The oldest batch leaves the window once the slowest lane took it.
        while !window.isEmpty, next.allSatisfy({ $0 > base }) {
            window.removeFirst()
            base += 1
            resume = producer
            producer = nil
        }
        return .fold(batch, resumeProducer: resume)
    }

    /// The producer offered its last batch.
    mutating func finish() {
        guard case .running = phase else { return }
        phase = .finished
    }

    /// A store error, a lane's error or a cancellation: the first one wins. Returns the
    /// parked producer to resume (it then sees `.stopped` on its next offer).
    mutating func stop(_ stop: Stop) -> Waiter? {
        if case .stopped = phase { return nil }
        phase = .stopped(stop)
        window.removeAll()
        defer { producer = nil }
        return producer
    }

    /// A lane left its loop. Returns the completion waiter when this was the last lane and
    /// someone waits, with the outcome to resume it with.
    mutating func laneExited() -> (Waiter, Outcome)? {
        precondition(runningLanes > 0, "more lanes exited than started")
        runningLanes -= 1
        guard runningLanes == 0, let completion else { return nil }
        self.completion = nil
        return (completion, outcome)
    }

    /// Waits for every lane to exit; returns the outcome at once when they all have.
    mutating func awaitCompletion(_ waiter: Waiter) -> Outcome? {
        guard runningLanes > 0 else { return outcome }
        completion = waiter
        return nil
    }

    private var outcome: Outcome {
        switch phase {
        case .stopped(let stop): .stopped(stop)
        case .running, .finished: .finished
        }
    }
}
