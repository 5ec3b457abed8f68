import ArgumentParser
import EventLog
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure the log: append throughput and latency, read throughput. One JSON object on stdout.",
        subcommands: [BenchAppend.self, BenchRead.self, BenchStreams.self, BenchReplay.self, BenchProve.self]
    )
}

struct BenchAppend: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "append",
        abstract: "Concurrent appenders write a realistic event mix; reports throughput, ack latency, fsyncs, bytes/event."
    )

    @Option(help: "Data directory or postgres:// URL (a fresh temporary directory when omitted; it must not hold a log).") var log: String?
    @Option(help: "Events to write in all.") var events = 1_000_000
    @Option(help: "Concurrent appending tasks.") var appenders = 256
    @Option(help: "Events per append call.") var batch = 64
    @Option(help: "always | interval | interval:MS | never") var fsync = "always"
    @Option(help: "Segment size in MiB.") var segmentMib = 128
    @Option(help: "Workload seed.") var seed: UInt64 = 42
    @Flag(help: "Append after what the log already holds (to measure appends to a large log); without it the log must be empty.")
    var ontoExisting = false

    func validate() throws {
        guard events > 0, events <= 1_000_000_000 else { throw ValidationError("--events must be 1...1,000,000,000") }
        guard appenders > 0, appenders <= 100_000 else { throw ValidationError("--appenders must be 1...100,000") }
        guard batch > 0, batch <= 100_000 else { throw ValidationError("--batch must be 1...100,000") }
        guard FsyncPolicy(parsing: fsync) != nil else { throw ValidationError("--fsync must be always, interval, interval:MS or never") }
    }

    func run() async throws {
        let policy = FsyncPolicy(parsing: fsync)!
        let directory = log ?? makeTemporaryDirectory()
        let store = try openLog(directory, writable: true, fsync: policy, segmentSize: segmentMib << 20)
        let startHead = try await store.head().position
        guard startHead == 0 || ontoExisting else {
            printError("\(logName(directory)) already holds a log; bench append needs an empty directory or database, or --onto-existing")
            throw ReplayExit.unreadable
        }
        // Pre-generate the appends so the generator is not measured; the pool is larger than
        // any group commit, so no batch compresses a repeat of itself.
        let poolEvents = max(262_144, batch * 4)
        var generator = WorkloadGenerator(seed: seed)
        let pool = (0..<max(1, poolEvents / batch)).map { _ in generator.nextAppend(events: batch) }

        let bytesBefore = startHead == 0 ? 0 : try await store.storedBytes()
        let remaining = SharedCounter(events)
        let started = monotonicSeconds()
        let latencies = try await withThrowingTaskGroup(of: [UInt64].self) { group in
            for appender in 0..<appenders {
                group.addTask {
                    var local: [UInt64] = []
                    var call = appender
                    while true {
                        let before = remaining.value.subtract(batch, ordering: .relaxed).oldValue
                        if before <= 0 { break }
                        var append = pool[call % pool.count]
                        call += appenders
                        if before < batch { append.events.removeLast(batch - before) }
                        let t0 = monotonicNanos()
                        _ = try await store.append([append], idempotencyKey: nil)
                        local.append(monotonicNanos() - t0)
                    }
                    return local
                }
            }
            var all: [UInt64] = []
            for try await part in group { all.append(contentsOf: part) }
            return all
        }
        let seconds = monotonicSeconds() - started
        // Bytes/event of this run's events only, so a run onto an existing log reports the same figure.
        let storedBytes = try await store.storedBytes() - bytesBefore
        var writer = JSONObject()
        writerFigures(store.statistics(), into: &writer)
        try await store.close()
        let ack = quantiles([0.5, 0.99], of: latencies)

        var out = JSONObject()
        out.set("command", "append")
        out.set("events", events)
        out.set("seconds", seconds, decimals: 3)
        out.set("events_per_second", Double(events) / seconds, decimals: 0)
        out.set("ack_p50_ms", Double(ack.first ?? 0) / 1e6)
        out.set("ack_p99_ms", Double(ack.last ?? 0) / 1e6)
        out.set("bytes_per_event", Double(storedBytes) / Double(events), decimals: 2)
        out.merge(writer)
        out.set("appenders", appenders)
        out.set("batch", batch)
        out.set("fsync", policy.description)
        out.set("log", logName(directory))
        if startHead > 0 { out.set("log_events_before", startHead) }
        print(out.rendered)
    }
}

struct BenchRead: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "read",
        abstract: "Read and decode every event of an existing log, in order."
    )

    @OptionGroup var target: LogOption

    func run() async throws {
        let store = try target.open()
        let started = monotonicSeconds()
        var events = 0
        var payloadBytes = 0
        var lastPosition: UInt64 = 0
        // Touch every event: its position (checked to be consecutive) and payload length.
        for try await batch in store.read(from: 1).batches {
            events += batch.count
            for event in batch {
                guard event.position == lastPosition + 1 else {
                    printError("position \(event.position) follows \(lastPosition): the read skipped or repeated events")
                    throw ReplayExit.damaged
                }
                lastPosition = event.position
                payloadBytes &+= event.payloadCount
            }
        }
        let seconds = monotonicSeconds() - started
        let head = try await store.head().position
        guard lastPosition == head, events == Int(lastPosition) else {
            printError("read \(events) events ending at \(lastPosition), but the head is \(head)")
            throw ReplayExit.damaged
        }
        var out = JSONObject()
        out.set("command", "read")
        out.set("events", events)
        out.set("seconds", seconds, decimals: 3)
        out.set("events_per_second", Double(events) / seconds, decimals: 0)
        out.set("payload_bytes", payloadBytes)
        out.set("bytes_per_event", Double(try await store.storedBytes()) / Double(max(1, events)), decimals: 2)
        try await store.close()
        print(out.rendered)
    }
}

func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

func monotonicSeconds() -> Double { Double(monotonicNanos()) / 1e9 }

func makeTemporaryDirectory() -> String {
    var template = Array("/tmp/tally-bench-XXXXXX".utf8CString)
    guard let result = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
        return "/tmp/tally-bench-\(getpid())"
    }
    return String(cString: result)
}

/// An atomic counter shared by the appending tasks.
final class SharedCounter: Sendable {
    let value: Atomic<Int>
    init(_ initial: Int) { value = Atomic(initial) }
}
