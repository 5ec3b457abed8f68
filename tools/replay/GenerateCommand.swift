import ArgumentParser
import EventLog
import Events

/// `replay generate`: writes a deterministic, realistic workload into a new log, for demos
/// and benchmarks. The same seed, count, batch, start and rate give the same log, byte for
/// byte: same events, positions and chain hash.
struct Generate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a deterministic, realistic workload (users, profiles, searches, unlocks, analyses, CDN jobs, health) into a new log.",
        discussion: """
            --log names a new log: a data directory (created if missing) or a database that holds \
            no events. Simulated time starts at --start and runs at --rate events per second, so 10,000,000 \
            events span about 30 days by default. Prints one JSON object (bytes_per_event counts \
            segment bytes, as bench append does). Exit 2 when the log cannot be opened or written, \
            or already holds events.
            """
    )

    @OptionGroup var target: LogOption
    @Option(help: "Events to write.") var events: Int
    @Option(help: "Workload seed.") var seed: UInt64 = 42
    @Option(help: "At most N events per append (one log batch each); a batch also ends at each hour of event time.") var batch = 20_000
    @Option(help: "Simulated start, ISO 8601 UTC (e.g. 2026-10-01T00:00:00Z).") var start = "2026-10-01T00:00:00Z"
    @Option(help: "Mean simulated events per second, all kinds.") var rate = DomainWorkload.Settings().eventsPerSecond
    @Option(help: "Credits one unlock costs.") var unlockCost: Int64 = 1

    func validate() throws {
        guard events > 0, events <= 1_000_000_000 else { throw ValidationError("--events must be 1...1,000,000,000") }
        guard batch > 0, batch <= 1_000_000 else { throw ValidationError("--batch must be 1...1,000,000") }
        guard EventTime.parse(start) != nil else { throw ValidationError("--start must be ISO 8601, e.g. 2026-10-01T00:00:00Z") }
        guard rate.isFinite, rate >= 0.001, rate <= 1_000_000 else { throw ValidationError("--rate must be 0.001...1,000,000 events per second") }
        guard unlockCost >= 0, unlockCost <= 1_000_000 else { throw ValidationError("--unlock-cost must be 0...1,000,000") }
    }

    func run() async throws {
        print(try await execute().rendered)
    }

    /// Does the work of `run` and returns the summary instead of printing it (tests call this).
    func execute() async throws -> JSONObject {
        let (store, head) = try await target.openAtHead(writable: true)
        guard head == 0 else {
            try? await store.close()
            printError("\(target.name) already holds a log (\(head) events); generate writes only into a new, empty log")
            throw ReplayExit.unreadable
        }
        var settings = DomainWorkload.Settings()
        settings.seed = seed
        settings.start = EventTime.parse(start)!
        settings.eventsPerSecond = rate
        settings.unlockCost = unlockCost
        var workload = DomainWorkload(settings)

        let progress = Progress(label: "generate")
        let started = monotonicSeconds()
        var first: Int64?
        var last: Int64 = settings.start
        var remaining = events
        // One append in flight while the next batch is generated: the writer compresses on
        // its own thread, and a single outstanding append keeps batch boundaries (and so the
        // chain hash) independent of timing.
        var inFlight: Task<AppendResult, any Error>?
        do {
            while remaining > 0 {
                let next = workload.nextBatch(min(batch, remaining))
                remaining -= next.count
                first = first ?? next.firstRecordedAt
                last = next.lastRecordedAt
                if let written = try await inFlight?.value { progress.update(written.positions.upperBound) }
                inFlight = Task { try await store.append(next.appends, idempotencyKey: nil) }
            }
            if let written = try await inFlight?.value { progress.update(written.positions.upperBound) }
        } catch {
            progress.finish()
            printError("cannot write to the log at \(target.name): \(error)")
            try? await store.close()
            throw ReplayExit.unreadable
        }
        let bytes = try await store.storedBytes()
        try await store.close()
        let seconds = monotonicSeconds() - started
        progress.finish()

        var out = JSONObject()
        out.set("command", "generate")
        out.set("events", events)
        out.set("seconds", seconds, decimals: 3)
        out.set("events_per_second", Double(events) / seconds, decimals: 0)
        out.set("first_recorded_at", EventTime.iso8601(micros: first ?? settings.start))
        out.set("last_recorded_at", EventTime.iso8601(micros: last))
        out.set("bytes_per_event", Double(bytes) / Double(events), decimals: 2)
        out.set("seed", seed)
        out.set("log", target.name)
        return out
    }
}
