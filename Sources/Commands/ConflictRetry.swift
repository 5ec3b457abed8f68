public import EventLog

/// Runs a decide-and-append step again when the stream moved on underneath it, a bounded
/// number of times: optimistic concurrency per stream, as DESIGN.md describes. Between
/// attempts it waits a short, growing, jittered delay, so that many contenders on one
/// stream spread out instead of colliding again in lockstep.
public struct ConflictRetry: Sendable {
    /// A refused append: which stream, and the version it was at when the log decided.
    public struct Conflict: Error, Sendable, Hashable, CustomStringConvertible {
        public var stream: String
        /// The stream's version when the append was refused (nil: it had no events), so the
        /// next attempt can wait until its read of the stream has caught up that far.
        public var actualVersion: UInt64?

        public init(stream: String, actualVersion: UInt64?) {
            self.stream = stream
            self.actualVersion = actualVersion
        }

        public var description: String {
            "\(stream) \(actualVersion.map { "was at version \($0)" } ?? "had no events") when the append was decided"
        }

        /// The conflict an `EventLogError` describes, or nil when it is another error.
        public init?(_ error: EventLogError, appendingTo streams: [String]) {
            guard error.code == .wrongExpectedVersion else { return nil }
            if let cause = error.cause as? WrongExpectedVersion {
                self.init(stream: cause.stream, actualVersion: cause.actual)
            } else {
                self.init(stream: streams.first ?? "", actualVersion: nil)
            }
        }
    }

    /// What one attempt came to.
    public enum Step<Result: Sendable>: Sendable {
        /// Decided: return this.
        case done(Result)
        /// The append conflicted: read again and decide again.
        case retry(Conflict)
    }

    public var maxAttempts: Int
    /// The first back-off delay; each later one doubles, up to `maxDelayNanoseconds`.
    public var baseDelayNanoseconds: UInt64
    public var maxDelayNanoseconds: UInt64

    public init(maxAttempts: Int = 8, baseDelayNanoseconds: UInt64 = 500_000, maxDelayNanoseconds: UInt64 = 50_000_000) {
        self.maxAttempts = max(1, maxAttempts)
        self.baseDelayNanoseconds = baseDelayNanoseconds
        self.maxDelayNanoseconds = max(baseDelayNanoseconds, maxDelayNanoseconds)
    }

    /// Calls `attempt` (with its number, from 1, and the previous attempt's conflict) until
    /// it is done or throws; after `maxAttempts` conflicts throws a `conflict` error.
    public func run<Result: Sendable>(
        _ attempt: (_ number: Int, _ previous: Conflict?) async throws(CommandError) -> Step<Result>
    ) async throws(CommandError) -> Result {
        var previous: Conflict?
        for number in 1...maxAttempts {
            if number > 1 {
                await backOff(before: number)
                // Abandoned (its deadline passed): the conflicts so far wrote nothing; stop there.
                if Task.isCancelled {
                    throw CommandError.abandoned("after \(number - 1) conflicting attempts", cause: previous)
                }
            }
            switch try await attempt(number, previous) {
            case .done(let result):
                return result
            case .retry(let conflict):
                previous = conflict
            }
        }
        let stream = previous?.stream ?? "the stream"
        throw CommandError(
            .conflict,
            "\(stream) kept changing while the command decided: \(maxAttempts) attempts conflicted and nothing was written; "
                + "retry the request (with the same idempotency key)",
            cause: previous
        )
    }

    /// Full jitter: a random delay up to base × 2^(attempt − 2), capped.
    private func backOff(before number: Int) async {
        let shift = UInt64(min(number - 2, 20))
        let ceiling = min(maxDelayNanoseconds, baseDelayNanoseconds << shift)
        guard ceiling > 0 else {
            await Task.yield()
            return
        }
        try? await Task.sleep(nanoseconds: UInt64.random(in: 0...ceiling))
    }
}
