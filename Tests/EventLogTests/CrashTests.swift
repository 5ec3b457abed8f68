import Foundation
import Synchronization
import TallyTestSupport
import Testing
import replay
@testable import EventLog

#if canImport(Glibc)
import Glibc
#endif

/// Crash test: the real `replay append-until-killed` writer is SIGKILLed at a random moment;
/// every append it acknowledged must be in the reopened log, intact. Rounds reuse the same
/// directory, so each writer resumes on what the previous crash left.
@Suite(.timeLimit(.minutes(5))) struct CrashTests {
    /// Bytes a child writes to a pipe, read on a thread as they arrive.
    final class PipeReader: Sendable {
        private let state = Mutex<(bytes: [UInt8], eof: Bool)>(([], false))

        init(_ handle: FileHandle) {
            let fd = handle.fileDescriptor
            let thread = Thread { [self] in
                var buffer = [UInt8](repeating: 0, count: 65_536)
                while true {
                    let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { break }
                    state.withLock { $0.bytes.append(contentsOf: buffer[0..<n]) }
                }
                state.withLock { $0.eof = true }
            }
            thread.start()
        }

        var eof: Bool { state.withLock { $0.eof } }
        var text: String { state.withLock { String(decoding: $0.bytes, as: UTF8.self) } }
        /// Complete lines only: a line cut by the kill is not an acknowledgement.
        var lines: [String] {
            let all = text
            var lines = all.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            lines.removeLast()  // after the last newline: empty, or an incomplete line
            return lines
        }
    }

    struct Ack: Hashable {
        var appender: Int
        var version: Int
        var first: LogPosition
        var last: LogPosition
    }

    static func parseAck(_ line: String) -> Ack? {
        let parts = line.split(separator: " ")
        guard parts.count == 5, parts[0] == "ACK", let a = Int(parts[1]), let v = Int(parts[2]),
              let first = LogPosition(parts[3]), let last = LogPosition(parts[4]) else { return nil }
        return Ack(appender: a, version: v, first: first, last: last)
    }

    struct Round {
        var readyHead: LogPosition
        var acks: [Ack]
    }

    /// Starts the writer, kills it `delayMs` after READY, returns what it printed.
    static func crashRound(binary: String, directory: String, delayMs: Int, label: String) async throws -> Round {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        // 64 KiB segments (the smallest) so that crashes also land around segment seals.
        process.arguments = ["append-until-killed", "--log", directory, "--appenders", "8", "--batch", "4", "--segment-kib", "64"]
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = PipeReader(out.fileHandleForReading)
        let stderr = PipeReader(err.fileHandleForReading)
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }

        let ready = await eventually(timeout: .seconds(60)) { stdout.lines.contains { $0.hasPrefix("READY ") } || stdout.eof }
        guard ready, let readyLine = stdout.lines.first, readyLine.hasPrefix("READY "),
              let readyHead = LogPosition(readyLine.dropFirst(6)) else {
            throw TestFailure("\(label): no READY line; stdout: \(stdout.text.prefix(500)) stderr: \(stderr.text.prefix(2000))")
        }
        try await Task.sleep(nanoseconds: UInt64(delayMs) * 1_000_000)
        #expect(process.isRunning, "\(label): the writer stopped by itself; stderr: \(stderr.text.prefix(2000))")
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGKILL,
                "\(label): exit \(process.terminationReason.rawValue)/\(process.terminationStatus)")
        let closed = await eventually(timeout: .seconds(30)) { stdout.eof && stderr.eof }
        #expect(closed, "\(label): the writer's pipes did not close")
        withExtendedLifetime((out, err)) {}

        var acks: [Ack] = []
        for line in stdout.lines.dropFirst() {
            guard let ack = parseAck(line) else {
                Issue.record("\(label): unexpected line '\(line)'")
                continue
            }
            acks.append(ack)
        }
        return Round(readyHead: readyHead, acks: acks)
    }

    /// Reopens the log and checks every event and every acknowledgement; returns the head.
    static func checkLog(_ directory: String, acks: [Ack], label: String) async throws -> LogPosition {
        let log = try FileLog(directory: directory, options: .init(segmentSize: 64 << 10))
        #expect(log.recovery.repair == nil, "\(label): \(log.recovery)")
        let all = try await readAll(log)
        let head = log.currentHead().position
        #expect(all.map(\.position) == (0..<all.count).map { LogPosition($0 + 1) }, "\(label): positions")
        #expect(all.count == Int(head), "\(label)")
        // Every stored event is a well-formed probe; appends are all-or-nothing (4 events).
        for appender in 0..<8 {
            let stream = try await log.readStream("crash-\(appender)")
            #expect(stream.count % 4 == 0, "\(label): crash-\(appender) holds \(stream.count) events")
            for (version, e) in stream.enumerated() {
                guard e.streamVersion == UInt64(version), e.type == "CrashProbe", e.actor == "crash",
                      e.payload == CrashProbe.payload(appender: appender, version: version), e.idempotencyKey == nil else {
                    Issue.record("\(label): bad event at position \(e.position): \(e)")
                    break
                }
            }
        }
        #expect(Set(all.map(\.stream)).isSubset(of: Set((0..<8).map { "crash-\($0)" })), "\(label)")
        // Every acknowledged append is there, whole, where the writer was told it went.
        var missing = 0
        for ack in acks {
            guard ack.last == ack.first + 3, ack.last <= head, ack.last <= UInt64(all.count) else {
                missing += 1
                continue
            }
            for i in 0..<4 {
                let e = all[Int(ack.first - 1) + i]
                if e.stream != "crash-\(ack.appender)" || e.streamVersion != UInt64(ack.version + i)
                    || e.payload != CrashProbe.payload(appender: ack.appender, version: ack.version + i) {
                    missing += 1
                }
            }
        }
        #expect(missing == 0, "\(label): \(missing) acknowledged appends lost or wrong (head \(head))")
        try await log.close()
        return head
    }

    @Test func acknowledgedAppendsSurviveSIGKILL() async throws {
        let binary = try builtProduct("replay")
        let environment = ProcessInfo.processInfo.environment
        let rounds = environment["TALLY_CRASH_ROUNDS"].flatMap { Int($0) } ?? 20
        let seed = environment["TALLY_CRASH_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 1...UInt64(UInt32.max))
        var rng = SplitMix64(seed: seed)
        try await withTemporaryDirectory { dir in
            var acks: [Ack] = []
            var head: LogPosition = 0
            for round in 0..<rounds {
                let delay = Int.random(in: 20...300, using: &rng)
                let label = "round \(round) of \(rounds) (TALLY_CRASH_SEED=\(seed), kill \(delay) ms after READY)"
                let result = try await Self.crashRound(binary: binary, directory: dir.path, delayMs: delay, label: label)
                // The writer resumed exactly where the previous recovery left the log.
                #expect(result.readyHead == head, "\(label)")
                acks += result.acks
                head = try await Self.checkLog(dir.path, acks: acks, label: label)
                #expect(head >= (result.acks.map(\.last).max() ?? 0), "\(label)")
            }
            #expect(rounds == 0 || !acks.isEmpty, "no append was acknowledged in \(rounds) rounds")
            print("crash test: \(rounds) rounds, \(acks.count) acknowledged appends, head \(head), segments \(try segmentNames(dir.path).count)")
            #expect(Set(acks).count == acks.count, "an acknowledgement repeated: positions reused")

            let verify = try await runProcess(binary, ["verify", "--log", dir.path])
            #expect(verify.status == 0, "replay verify: \(verify.stdout) \(verify.stderr)")
            #expect(verify.stdout.contains("\"intact\":true"), "\(verify.stdout)")
            #expect(verify.stdout.contains("\"head_position\":\(head),"), "\(verify.stdout)")
        }
    }
}
