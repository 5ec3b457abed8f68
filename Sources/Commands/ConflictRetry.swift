public import EventLog

/// Runs a decide-and-append step again when the stream moved on underneath it, a bounded
/// number of times: optimistic concurrency per stream, as DESIGN.md describes.
public struct ConflictRetry: Sendable {
    public var maxAttempts: Int

    public init(maxAttempts: Int = 5) {
        self.maxAttempts = max(1, maxAttempts)
    }

    /// Calls `attempt` until it returns, throws something other than a version conflict,
    /// or has conflicted `maxAttempts` times (then the last conflict is thrown).
    public func run<Result: Sendable>(_ attempt: () async throws -> Result) async throws -> Result {
        var attempts = 0
        while true {
            attempts += 1
            do {
                return try await attempt()
            } catch let error as EventLogError where error.code == .wrongExpectedVersion && attempts < maxAttempts {
                continue
            }
        }
    }
}
