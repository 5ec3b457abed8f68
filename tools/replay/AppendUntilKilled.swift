import ArgumentParser
import EventLog
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// For the crash test: appends deterministic events until killed, printing a line per
/// acknowledged append. Whatever it printed must survive SIGKILL at any moment.
struct AppendUntilKilled: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "append-until-killed",
        abstract: "Testing aid: append deterministic events forever; print `ACK appender call first last` per acknowledged append.",
        shouldDisplay: false
    )

    @OptionGroup var target: LogOption
    @Option var appenders = 8
    @Option var batch = 4
    @Option var fsync = "always"
    @Option var segmentKib = 256

    func run() async throws {
        let store = try FileLog(
            directory: target.log,
            options: .init(fsync: FsyncPolicy(parsing: fsync) ?? .always, segmentSize: segmentKib << 10)
        )
        writeLine(1, "READY \(store.currentHead().position)")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for appender in 0..<appenders {
                group.addTask {
                    let stream = "crash-\(appender)"
                    var version = try await store.streamVersion(stream).map { Int($0) + 1 } ?? 0
                    while true {
                        let events = (0..<batch).map { i in
                            ProposedEvent(type: "CrashProbe", actor: "crash", payload: CrashProbe.payload(appender: appender, version: version + i))
                        }
                        let expected: ExpectedVersion = version == 0 ? .noStream : .exact(UInt64(version - 1))
                        let result = try await store.append(to: stream, expected: expected, events: events)
                        writeLine(1, "ACK \(appender) \(version) \(result.positions.lowerBound) \(result.positions.upperBound)")
                        version += batch
                    }
                }
            }
            try await group.waitForAll()
        }
    }
}

/// The payload of crash-probe event `version` of appender `appender`: checkable from the pair.
public enum CrashProbe {
    public static func payload(appender: Int, version: Int) -> [UInt8] {
        var bytes = Array("a\(appender)v\(version):".utf8)
        var x = UInt64(appender * 1_000_003 + version) &* 0x9E37_79B9_7F4A_7C15
        for _ in 0..<(16 + version % 48) {
            x ^= x >> 29
            x &*= 0xBF58_476D_1CE4_E5B9
            bytes.append(UInt8(truncatingIfNeeded: x))
        }
        return bytes
    }
}

/// For the multi-process ordering test: appends `events` events from `appenders` tasks to
/// streams `load-WRITER-A` with expected versions, then prints `DONE events`.
struct AppendLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "append-load",
        abstract: "Testing aid: append a fixed number of checkable events to this writer's streams, then print `DONE events`.",
        shouldDisplay: false
    )

    @OptionGroup var target: LogOption
    @Option var writer: Int
    @Option var events = 50_000
    @Option var appenders = 16
    @Option var batch = 50

    func run() async throws {
        let store = try target.open(writable: true, fsync: .always)
        let remaining = SharedCounter(events)
        let writer = writer
        let batch = batch
        let written = try await withThrowingTaskGroup(of: Int.self) { group in
            for appender in 0..<appenders {
                group.addTask {
                    let stream = "load-\(writer)-\(appender)"
                    var version = 0
                    while true {
                        let before = remaining.value.subtract(batch, ordering: .relaxed).oldValue
                        if before <= 0 { return version }
                        let count = min(batch, before)
                        let events = (0..<count).map { i in
                            ProposedEvent(type: "LoadProbe", actor: "w\(writer)", payload: CrashProbe.payload(appender: writer * 1_000 + appender, version: version + i))
                        }
                        let expected: ExpectedVersion = version == 0 ? .noStream : .exact(UInt64(version - 1))
                        _ = try await store.append(to: stream, expected: expected, events: events)
                        version += count
                    }
                }
            }
            return try await group.reduce(0, +)
        }
        try await store.close()
        writeLine(1, "DONE \(written)")
    }
}
