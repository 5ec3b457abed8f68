import Foundation

/// What a finished child process printed and how it exited.
public struct ProcessOutput: Sendable {
    public var status: Int32
    public var stdoutBytes: [UInt8]
    public var stderr: String
    public var stdout: String { String(decoding: stdoutBytes, as: UTF8.self) }
}

/// Runs `executable` to completion with stdout and stderr sent to files in a temporary
/// directory, so neither pipe can fill and block the child. Suspends rather than blocks
/// while the child runs: a blocked thread of the cooperative pool (two on this machine)
/// would stall every other test of the process.
public func runProcess(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) async throws -> ProcessOutput {
    let directory = try makeTemporaryDirectory("process")
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let (outPath, errPath) = (directory + "/stdout", directory + "/stderr")
    _ = FileManager.default.createFile(atPath: outPath, contents: nil)
    _ = FileManager.default.createFile(atPath: errPath, contents: nil)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment { process.environment = environment }
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
    process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
    let (exited, exit) = AsyncStream<Void>.makeStream()
    process.terminationHandler = { _ in exit.finish() }
    // Waited for outside the test's task: a stream's iteration ends at once when its task is
    // cancelled (a suite's time limit), and reading the status of a child still running traps
    // the whole test process. On cancellation the child is terminated, then waited for.
    let waiter = Task.detached { for await _ in exited {} }
    do {
        try process.run()
    } catch {
        exit.finish()
        throw error
    }
    await withTaskCancellationHandler {
        await waiter.value
    } onCancel: {
        process.terminate()
    }
    try Task.checkCancellation()
    let out = FileManager.default.contents(atPath: outPath) ?? Data()
    let err = FileManager.default.contents(atPath: errPath) ?? Data()
    return ProcessOutput(status: process.terminationStatus, stdoutBytes: [UInt8](out), stderr: String(decoding: err, as: UTF8.self))
}
