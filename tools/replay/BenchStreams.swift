import ArgumentParser
import EventLog

/// `readStream` latency on an existing log, for the scale table: how long one stream's read
/// takes when the stream is picked at random from the whole history, not from a warm tail.
struct BenchStreams: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "streams",
        abstract: "Time readStream for streams of random events of an existing log; reports p50, p99 and max.",
        discussion: """
            Picks events at uniformly random positions (so a stream is picked in proportion to \
            its events, as requests for it would be), reads each one's stream name, then times \
            readStream(name, fromVersion: 0, limit: --limit) for each. The picking is not timed.
            """
    )

    @OptionGroup var target: LogOption
    @Option(help: "Streams to read (1...1,000,000).") var reads = 2_000
    @Option(help: "Events per readStream call, at most (1...100,000).") var limit = 100
    @Option(help: "Seed of the random positions.") var seed: UInt64 = 1

    func validate() throws {
        guard (1...1_000_000).contains(reads) else { throw ValidationError("--reads must be 1...1,000,000") }
        guard (1...100_000).contains(limit) else { throw ValidationError("--limit must be 1...100,000") }
    }

    func run() async throws {
        let opened = monotonicNanos()
        let (store, head) = try await target.openAtHead()
        let openNanos = monotonicNanos() - opened
        guard head > 0 else {
            try? await store.close()
            printError("\(target.name) holds no events; bench streams needs a log with events")
            throw ReplayExit.unreadable
        }
        var random = SplitMix64(seed: seed)
        var names: [String] = []
        names.reserveCapacity(reads)
        while names.count < reads {
            let position = 1 + random.next() % head
            for try await event in store.read(from: position) {
                names.append(event.stream)
                break
            }
        }
        var latencies: [UInt64] = []
        latencies.reserveCapacity(reads)
        var eventsRead = 0
        let started = monotonicNanos()
        for name in names {
            let t0 = monotonicNanos()
            let events = try await store.readStream(name, fromVersion: 0, limit: limit)
            latencies.append(monotonicNanos() - t0)
            guard !events.isEmpty else {
                printError("readStream(\(name)) returned no events, but the log holds events of it: the stream lookup is wrong")
                throw ReplayExit.damaged
            }
            eventsRead += events.count
        }
        let seconds = Double(monotonicNanos() - started) / 1e9
        try await store.close()
        let q = quantiles([0.5, 0.99, 1.0], of: latencies)

        var out = JSONObject()
        out.set("command", "streams")
        out.set("log_events", head)
        out.set("open_ms", Double(openNanos) / 1e6)
        out.set("reads", reads)
        out.set("events_read", eventsRead)
        out.set("reads_per_second", Double(reads) / seconds, decimals: 0)
        out.set("read_p50_ms", Double(q[0]) / 1e6)
        out.set("read_p99_ms", Double(q[1]) / 1e6)
        out.set("read_max_ms", Double(q[2]) / 1e6)
        out.set("limit", limit)
        print(out.rendered)
    }
}
