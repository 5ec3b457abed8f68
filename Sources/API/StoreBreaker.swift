import Commands
public import Events
import Synchronization

/// The circuit breaker in front of the store for commands (reads never go through it): the
/// decisions are `BreakerStateMachine`'s; this wrapper holds it under a lock and does the
/// I/O around it: the command deadline, and handing the transitions to a recorder (which
/// appends them as `CircuitBreakerChanged` events) once the store takes writes again.
public final class StoreBreaker: Sendable {
    public let failureThreshold: Int
    public let openDuration: Duration
    /// A command the store has not answered within this long fails with 503 and counts as a
    /// store failure: a slow store opens the breaker like a failing one. The command may
    /// still complete later; a client's retry with the same Idempotency-Key is safe.
    public let commandDeadline: Duration

    private let machine: Mutex<BreakerStateMachine<ContinuousClock>>

    public init(failureThreshold: Int = 5, openDuration: Duration = .seconds(5), commandDeadline: Duration = .seconds(5)) {
        let machine = BreakerStateMachine(failureThreshold: failureThreshold, openDuration: openDuration, clock: ContinuousClock())
        self.failureThreshold = machine.failureThreshold
        self.openDuration = openDuration
        self.commandDeadline = commandDeadline
        self.machine = Mutex(machine)
    }

    public var current: BreakerState { machine.withLock { $0.state } }

    /// Runs `command` unless the breaker refuses it (`BreakerOpen`); reports to the breaker
    /// how the store answered.
    func run<T: Sendable>(_ command: @escaping @Sendable () async throws -> T) async throws -> T {
        if case .reject(let retryAfter, let state) = machine.withLock({ $0.admit() }) {
            throw BreakerOpen(state: state, retryAfter: retryAfter)
        }
        do {
            let result = try await withDeadline(commandDeadline, command)
            machine.withLock { $0.succeeded() }
            return result
        } catch let error as CommandError where error.code == .storeUnavailable {
            machine.withLock { $0.failed(reason: error.message) }
            throw error
        } catch is DeadlineExceeded {
            let error = CommandError(.storeUnavailable, "the store did not answer within \(commandDeadline); retry with the same Idempotency-Key")
            machine.withLock { $0.failed(reason: error.message) }
            throw error
        } catch {
            machine.withLock { $0.refused() }
            throw error
        }
    }

    /// Runs `command` through the breaker, then hands `record` the transitions the store
    /// could not take while it was failing (it takes writes again: this command succeeded).
    func run<T: Sendable>(_ command: @escaping @Sendable () async throws -> T,
                          recording record: ([CircuitBreakerChanged]) async -> Void) async throws -> T {
        let result = try await run(command)
        let transitions = takeUnrecorded()
        if !transitions.isEmpty { await record(transitions) }
        return result
    }

    /// Half-opens the breaker now (the operator says the store is back); the next command tries it.
    public func reset(reason: String) {
        machine.withLock { $0.reset(reason: reason) }
    }

    /// Transitions to append, taken once the store is writable again.
    func takeUnrecorded() -> [CircuitBreakerChanged] {
        machine.withLock { $0.takeUnrecorded() }
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
