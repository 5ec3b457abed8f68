import Commands
public import Events
import Foundation
public import Logging
import Synchronization

/// The circuit breaker in front of the store for commands (reads never go through it): the
/// decisions are `BreakerStateMachine`'s; this wrapper holds it under a lock and does the
/// I/O around it: the command deadline, and handing the transitions to a recorder (which
/// appends them as `CircuitBreakerChanged` events) once the store takes writes again. A
/// transition stays queued until such an append succeeds; it is retried after every later
/// successful command (the first of which is the one that closes the breaker).
public final class StoreBreaker: Sendable {
    public let failureThreshold: Int
    public let openDuration: Duration
    /// A command the store has not answered within this long fails with 503 and counts as a
    /// store failure: a slow store opens the breaker like a failing one. The command may
    /// still complete later; a client's retry with the same Idempotency-Key is safe.
    public let commandDeadline: Duration

    private let machine: Mutex<BreakerStateMachine<ContinuousClock>>
    private let logger: Logger
    /// Names this process's batches of transitions in their idempotency keys.
    private let instance = UUID().uuidString.lowercased()

    public init(failureThreshold: Int = 5, openDuration: Duration = .seconds(5), commandDeadline: Duration = .seconds(5),
                logger: Logger = Logger(label: "tally.breaker")) {
        let machine = BreakerStateMachine(failureThreshold: failureThreshold, openDuration: openDuration, clock: ContinuousClock())
        self.failureThreshold = machine.failureThreshold
        self.openDuration = openDuration
        self.commandDeadline = commandDeadline
        self.machine = Mutex(machine)
        self.logger = logger
    }

    public var current: BreakerState { machine.withLock { $0.state } }

    /// Transitions dropped since the start because the queue of unrecorded ones was full.
    public var droppedTransitions: Int { machine.withLock { $0.droppedTransitions } }

    /// Transitions waiting for an append.
    public var pendingTransitions: Int { machine.withLock { $0.pendingTransitions } }

    /// Changes the machine under the lock, and logs a transition it had to drop.
    private func mutate<R>(_ body: (inout BreakerStateMachine<ContinuousClock>) -> R) -> R {
        let (result, dropped, total) = machine.withLock { m in
            let before = m.droppedTransitions
            let result = body(&m)
            return (result, m.droppedTransitions - before, m.droppedTransitions)
        }
        if dropped > 0 {
            logger.warning("the queue of breaker transitions not yet written is full; dropped the oldest", metadata: [
                "dropped": "\(dropped)", "dropped_total": "\(total)", "capacity": "\(BreakerStateMachine<ContinuousClock>.unrecordedCapacity)",
            ])
        }
        return result
    }

    /// Runs `command` unless the breaker refuses it (`BreakerOpen`); reports to the breaker
    /// how the store answered.
    func run<T: Sendable>(_ command: @escaping @Sendable () async throws -> T) async throws -> T {
        if case .reject(let retryAfter, let state) = mutate({ $0.admit() }) {
            throw BreakerOpen(state: state, retryAfter: retryAfter)
        }
        do {
            let result = try await withDeadline(commandDeadline, command)
            mutate { $0.succeeded() }
            return result
        } catch let error as CommandError where error.code == .storeUnavailable {
            mutate { $0.failed(reason: error.message) }
            throw error
        } catch is DeadlineExceeded {
            let error = CommandError(.storeUnavailable, "the store did not answer within \(commandDeadline); retry with the same Idempotency-Key")
            mutate { $0.failed(reason: error.message) }
            throw error
        } catch {
            machine.withLock { $0.refused() }
            throw error
        }
    }

    /// Runs `command` through the breaker, then hands `record` the queued transitions the
    /// store could not take while it was failing (it takes writes again: this command
    /// succeeded), with the idempotency key of their batch. `record` answers whether the
    /// append succeeded; if not, the same batch is handed out after the next success.
    func run<T: Sendable>(_ command: @escaping @Sendable () async throws -> T,
                          recording record: ([CircuitBreakerChanged], _ idempotencyKey: String) async -> Bool) async throws -> T {
        let result = try await run(command)
        await recordPending(record)
        return result
    }

    /// Appends the queued transitions through `record`, when the breaker is closed and no
    /// other append of them is running.
    func recordPending(_ record: ([CircuitBreakerChanged], _ idempotencyKey: String) async -> Bool) async {
        guard let batch = machine.withLock({ $0.beginRecording() }) else { return }
        let appended = await record(batch.transitions, "breaker-\(instance)-\(batch.firstSequence)-\(batch.transitions.count)")
        machine.withLock { $0.endRecording(appended: appended) }
        if !appended {
            logger.warning("breaker transitions could not be written; kept for the next successful command",
                           metadata: ["transitions": "\(batch.transitions.count)"])
        }
    }

    /// Half-opens the breaker now (the operator says the store is back); the next command tries it.
    public func reset(reason: String) {
        mutate { $0.reset(reason: reason) }
    }

    /// The queued transitions, handed out for one append that is taken as successful (tests).
    func takeUnrecorded() -> [CircuitBreakerChanged] {
        machine.withLock { m in
            guard let batch = m.beginRecording() else { return [] }
            m.endRecording(appended: true)
            return batch.transitions
        }
    }
}

/// A command the open (or half-open, trial busy) breaker refused without calling the store:
/// nothing was written.
public struct BreakerOpen: Error, Sendable, CustomStringConvertible {
    public var state: BreakerState
    public var retryAfter: Duration

    /// `retryAfter` in whole seconds, rounded up, at least 1 (the `Retry-After` header).
    public var retryAfterSeconds: Int {
        let (seconds, attoseconds) = retryAfter.components
        return max(1, Int(seconds) + (attoseconds > 0 ? 1 : 0))
    }

    public var message: String {
        "the event store is failing; commands are refused for now and nothing was written. Retry after \(retryAfterSeconds) s with the same Idempotency-Key"
    }

    public var description: String { "breaker \(state.rawValue): \(message)" }
}
