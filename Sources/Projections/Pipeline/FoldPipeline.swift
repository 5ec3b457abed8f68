public import EventLog
import Synchronization

/// Folds on both cores: the caller's task reads the log (the store decodes ahead), and hands
/// each batch, in order, to every lane; each lane folds its own views on its own OS thread.
/// The lanes share nothing but the immutable batches, and each folds every batch in log
/// order, so each view ends exactly as a sequential fold would leave it: the result does not
/// depend on timing. The hand-off is bounded (`capacity` batches, `BatchHandOff`): a reader
/// ahead of the slowest lane waits, suspended, never blocking a pool thread.
///
/// One use per pipeline. A store error, a lane's error or a cancellation stops every lane
/// and is thrown; the caller then must not use the lanes' states (they are partial).
/// `run` returns or throws only after every lane thread has left its loop
/// (`runningThreads` is 0 again).
public final class FoldPipeline: Sendable {
    /// One lane's fold of a batch, on its thread. A throw stops the whole fold.
    public typealias Lane = @Sendable ([RecordedEvent]) throws -> Void

    /// Feeds the lanes; given to the producer closure of `run`.
    public struct Feed: Sendable {
        let pipeline: FoldPipeline

        /// Hands `batch` to every lane; waits (suspended) while the window is full. Throws
        /// when the fold has stopped (a lane failed, or the task was cancelled).
        public func offer(_ batch: [RecordedEvent]) async throws {
            try await pipeline.offer(batch)
        }
    }

    private struct State: @unchecked Sendable {
        var handOff: BatchHandOff<[RecordedEvent], CheckedContinuation<Void, Never>>
        var outcome: BatchHandOff<[RecordedEvent], CheckedContinuation<Void, Never>>.Outcome?
        var started = false
    }

    /// Batches that wait for the slowest lane at most, by default: enough to ride out one
    /// slow batch, small against the views (a batch of the generated logs is ~3 MB decoded).
    public static let defaultCapacity = 4

    public let capacity: Int
    private let lock = ConditionLock()
    /// Only touched inside `lock`.
    nonisolated(unsafe) private var state: State
    private let threads = Atomic<Int>(0)
    private let laneCount: Int

    /// `lanes`: how many lanes `run` will be given.
    public init(lanes: Int, capacity: Int = FoldPipeline.defaultCapacity) {
        precondition(lanes > 0 && capacity > 0, "a pipeline needs a lane and room for a batch")
        self.capacity = capacity
        laneCount = lanes
        state = State(handOff: BatchHandOff(lanes: lanes, capacity: capacity))
    }

    /// Lane threads that have not yet left their loop: 0 before `run` and after it returns
    /// or throws.
    public var runningThreads: Int { threads.load(ordering: .acquiring) }

    /// True while the reader waits for the slowest lane (tests wait on it).
    var isProducerParked: Bool { lock.withLock { state.handOff.isProducerParked } }

    /// Starts the lanes, runs `produce` (which reads the log and offers its batches) and
    /// waits for every lane to fold the last batch. Throws the store's or a lane's error,
    /// or `CancellationError` when the task is cancelled (also when the read ends early
    /// because of it).
    public func run(lanes: [Lane], produce: (Feed) async throws -> Void) async throws {
        precondition(lanes.count == laneCount, "\(lanes.count) lanes given to a pipeline made for \(laneCount)")
        let first = lock.withLock {
            defer { state.started = true }
            return !state.started
        }
        precondition(first, "a FoldPipeline runs once")
        var startFailure: (any Error)?
        for (index, lane) in lanes.enumerated() {
            threads.add(1, ordering: .relaxed)
            do {
                try startFoldThread { [self] in laneLoop(index, lane) }
            } catch {
                threads.subtract(1, ordering: .relaxed)
                startFailure = error
                stop(.failed(error))
                // The lanes not started count as exited, so completion is still reached.
                for _ in index..<lanes.count { laneLeft() }
                break
            }
        }
        if startFailure == nil {
            await withTaskCancellationHandler {
                do {
                    try await produce(Feed(pipeline: self))
                    // A store's read may end early, without an error, when the task is cancelled.
                    try Task.checkCancellation()
                    lock.withLock {
                        state.handOff.finish()
                        lock.broadcast()
                    }
                } catch is CancellationError {
                    stop(.cancelled)
                } catch {
                    stop(.failed(error))
                }
            } onCancel: {
                stop(.cancelled)
            }
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = lock.withLock { () -> Bool in
                guard let outcome = state.handOff.awaitCompletion(continuation) else { return false }
                state.outcome = outcome
                return true
            }
            if done { continuation.resume() }
        }
        let outcome = lock.withLock { state.outcome }
        switch outcome {
        case .finished?: return
        case .stopped(.cancelled)?: throw CancellationError()
        case .stopped(.failed(let error))?: throw error
        case nil: preconditionFailure("the pipeline completed without an outcome")
        }
    }

    private func offer(_ batch: [RecordedEvent]) async throws {
        while true {
            if Task.isCancelled { throw CancellationError() }
            let action = lock.withLock {
                let action = state.handOff.offer(batch)
                if case .accepted = action { lock.broadcast() }
                return action
            }
            switch action {
            case .accepted: return
            case .stopped(.cancelled): throw CancellationError()
            case .stopped(.failed): throw Stopped()
            case .full:
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let now = lock.withLock { state.handOff.parkProducer(continuation) }
                    now?.resume()
                }
            }
        }
    }

    /// The offer failed because a lane did: `run` throws the lane's error, not this.
    private struct Stopped: Error {}

    private func stop(_ stop: BatchHandOff<[RecordedEvent], CheckedContinuation<Void, Never>>.Stop) {
        let producer = lock.withLock {
            let producer = state.handOff.stop(stop)
            lock.broadcast()
            return producer
        }
        producer?.resume()
    }

    private func laneLoop(_ lane: Int, _ fold: Lane) {
        while true {
            let action = lock.withLock {
                var action = state.handOff.take(lane: lane)
                while case .wait = action {
                    lock.wait()
                    action = state.handOff.take(lane: lane)
                }
                return action
            }
            guard case .fold(let batch, let producer) = action else { break }
            producer?.resume()
            do {
                try fold(batch)
            } catch {
                stop(.failed(error))
                break
            }
        }
        exited()
    }

    private func exited() {
        threads.subtract(1, ordering: .releasing)
        laneLeft()
    }

    private func laneLeft() {
        let completion = lock.withLock { () -> CheckedContinuation<Void, Never>? in
            guard let (waiter, outcome) = state.handOff.laneExited() else { return nil }
            state.outcome = outcome
            return waiter
        }
        completion?.resume()
    }
}
