import Commands
import EventLog
public import Events
import Foundation
import Hummingbird
import Synchronization

/// The circuit breaker in front of the store for commands: after `failureThreshold`
/// consecutive store failures it opens and commands fail fast (503 with Retry-After,
/// nothing written); after `openDuration` it lets one command through (half-open); a
/// success closes it. Reads never go through it. Transitions are kept and appended as
/// `CircuitBreakerChanged` events (component `store`) once the store takes writes again.
public final class StoreBreaker: Sendable {
    public let failureThreshold: Int
    public let openDuration: Duration
    /// A command the store has not answered within this long fails with 503 and counts as a
    /// store failure: a slow store opens the breaker like a failing one. The command may
    /// still complete later; a client's retry with the same Idempotency-Key is safe.
    public let commandDeadline: Duration

    private struct State {
        var breaker: BreakerState = .closed
        var failures = 0
        var openedAt: ContinuousClock.Instant?
        var trialInFlight = false
        /// Transitions not yet written to the log.
        var unrecorded: [CircuitBreakerChanged] = []
    }

    private let state = Mutex(State())

    public init(failureThreshold: Int = 5, openDuration: Duration = .seconds(5), commandDeadline: Duration = .seconds(5)) {
        self.failureThreshold = max(1, failureThreshold)
        self.openDuration = openDuration
        self.commandDeadline = commandDeadline
    }

    public var current: BreakerState { state.withLock { $0.breaker } }

    /// Runs `command` unless the breaker is open; counts store failures and successes.
    func run<T: Sendable>(_ command: @escaping @Sendable () async throws -> T) async throws -> T {
        try admit()
        do {
            let result = try await withDeadline(commandDeadline, command)
            succeeded()
            return result
        } catch let error as CommandError where error.code == .storeUnavailable {
            failed(error)
            throw error
        } catch is DeadlineExceeded {
            let error = CommandError(.storeUnavailable, "the store did not answer within \(commandDeadline); retry with the same Idempotency-Key")
            failed(error)
            throw error
        } catch {
            // Refusals of the request (bad input, credits, conflicts) say nothing about the store.
            state.withLock { $0.trialInFlight = false }
            throw error
        }
    }

    /// Closes the breaker now (the operator says the store is back); the next command tries it.
    public func reset(reason: String) {
        state.withLock { s in
            guard s.breaker != .closed else { return }
            s.breaker = .halfOpen
            s.trialInFlight = false
            s.unrecorded.append(CircuitBreakerChanged(component: "store", state: .halfOpen, reason: reason))
        }
    }

    /// Transitions to append, taken once the store is writable again.
    func takeUnrecorded() -> [CircuitBreakerChanged] {
        state.withLock { s in
            guard s.breaker == .closed else { return [] }
            defer { s.unrecorded = [] }
            return s.unrecorded
        }
    }

    private func admit() throws {
        let refusal: Duration? = state.withLock { s in
            switch s.breaker {
            case .closed:
                return nil
            case .open:
                let elapsed = s.openedAt.map { ContinuousClock.now - $0 } ?? openDuration
                guard elapsed >= openDuration else { return openDuration - elapsed }
                s.breaker = .halfOpen
                s.unrecorded.append(CircuitBreakerChanged(component: "store", state: .halfOpen, reason: "trying the store again"))
                fallthrough
            case .halfOpen:
                guard !s.trialInFlight else { return .seconds(1) }
                s.trialInFlight = true
                return nil
            }
        }
        if let refusal {
            let seconds = max(1, Int((Double(refusal.components.seconds) + Double(refusal.components.attoseconds) / 1e18).rounded(.up)))
            var problem = Problem(.serviceUnavailable, code: "store_unavailable", title: "Store unavailable",
                                  detail: "the event store is failing; commands are refused for now and nothing was written. Retry after \(seconds) s with the same Idempotency-Key",
                                  retryAfter: seconds)
            problem.extra["breaker"] = .string(current.rawValue)
            throw problem
        }
    }

    private func succeeded() {
        state.withLock { s in
            s.failures = 0
            s.trialInFlight = false
            if s.breaker != .closed {
                s.breaker = .closed
                s.openedAt = nil
                s.unrecorded.append(CircuitBreakerChanged(component: "store", state: .closed, reason: "the store took a write again"))
            }
        }
    }

    private func failed(_ error: CommandError) {
        state.withLock { s in
            s.failures += 1
            s.trialInFlight = false
            if s.breaker == .halfOpen || (s.breaker == .closed && s.failures >= failureThreshold) {
                s.breaker = .open
                s.openedAt = .now
                let reason = String("\(s.failures) consecutive store failures; last: \(error.message)".prefix(1_000))
                s.unrecorded.append(CircuitBreakerChanged(component: "store", state: .open, reason: reason))
            }
        }
    }
}

struct DeadlineExceeded: Error {}

/// `body`'s result, or `DeadlineExceeded` once `deadline` passes, without waiting for `body`
/// to finish (it runs on in its own task: a store call cannot be taken back).
func withDeadline<T: Sendable>(_ deadline: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let outcome = Mutex<CheckedContinuation<T, any Error>?>(nil)
    return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        outcome.withLock { $0 = continuation }
        let finish: @Sendable (Result<T, any Error>) -> Void = { result in
            outcome.withLock { pending in
                pending?.resume(with: result)
                pending = nil
            }
        }
        let timer = Task {
            guard (try? await Task.sleep(for: deadline)) != nil else { return }
            finish(.failure(DeadlineExceeded()))
        }
        Task {
            do { finish(.success(try await body())) } catch { finish(.failure(error)) }
            timer.cancel()
        }
    }
}
