/// Waits for `condition` to hold, looking again every `poll`, for at most `timeout`; true
/// once it holds, false if the deadline passed first. The deadline is a liveness bound (how
/// long a broken build may hang a test), never a performance assertion.
public func eventually(
    timeout: Duration = .seconds(60), poll: Duration = .milliseconds(5), _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now.advanced(by: timeout)
    while clock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: poll)
    }
    return try await condition()
}

/// `eventually`, throwing `TestFailure(message)` when the deadline passes.
public func waitUntil(
    _ message: @autoclosure () -> String, timeout: Duration = .seconds(60), poll: Duration = .milliseconds(5),
    _ condition: () async throws -> Bool
) async throws {
    guard try await eventually(timeout: timeout, poll: poll, condition) else {
        throw TestFailure("not within \(timeout): \(message())")
    }
}
