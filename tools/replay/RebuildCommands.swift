import ArgumentParser
import EventLog
import Events
import Projections

#if canImport(Glibc)
import Glibc
#endif

/// Which views a rebuild folds.
enum ViewName: String, ExpressibleByArgument, CaseIterable {
    case systemStats = "system-stats"
    case unlockedProfiles = "unlocked-profiles"
    case metrics
}

/// A fold handed to another task: the box is the only holder of the value, so the task
/// mutates it in place; the caller touches it again only after awaiting that task.
private final class FoldBox<Value>: @unchecked Sendable {
    var value: Value
    init(_ value: Value) { self.value = value }
}

/// The three views folded in one pass over the log.
struct ViewSet {
    var stats: SystemStatsProjection?
    var unlocked: UnlockedProfilesProjection?
    var metrics: MetricsProjection?
    private(set) var position: LogPosition = 0
    private(set) var recordedAt: Int64?
    private(set) var events = 0

    init(_ names: Set<ViewName>) {
        if names.contains(.systemStats) { stats = SystemStatsProjection() }
        if names.contains(.unlockedProfiles) { unlocked = UnlockedProfilesProjection() }
        if names.contains(.metrics) { metrics = MetricsProjection() }
    }

    /// Folds the whole log; `progress` hears the position after each batch. The views read
    /// each batch's payload bytes in place (no `DomainEvent` per event); the unlocked-profiles
    /// fold (the heaviest) runs on another core while this task folds the other two.
    mutating func fold(_ store: any EventStore, progress: (LogPosition) -> Void) async throws {
        let other = unlocked.map(FoldBox.init)
        unlocked = nil
        for try await batch in store.read(from: 1).batches {
            let pending = other.map { box in Task { box.value.apply(batch: batch) } }
            if stats != nil, metrics != nil {
                // Each event's fields read once for both folds on this core.
                for event in batch {
                    event.withFields { fields in
                        guard let fields else { return }
                        stats!.fold(fields, of: event)
                        metrics!.fold(fields, of: event)
                    }
                }
            } else {
                stats?.apply(batch: batch)
                metrics?.apply(batch: batch)
            }
            await pending?.value
            events += batch.count
            position = batch[batch.count - 1].position
            recordedAt = batch[batch.count - 1].recordedAt
            progress(position)
        }
        unlocked = other?.value
    }

    func save(to snapshots: SnapshotStore) throws -> [String] {
        var written: [String] = []
        if let stats {
            try snapshots.save(stats, position: position, recordedAt: recordedAt)
            written.append(snapshots.path(for: SystemStatsProjection.name))
        }
        if let unlocked {
            try snapshots.save(unlocked, position: position, recordedAt: recordedAt)
            written.append(snapshots.path(for: UnlockedProfilesProjection.name))
        }
        if let metrics {
            try snapshots.save(metrics, position: position, recordedAt: recordedAt)
            written.append(snapshots.path(for: MetricsProjection.name))
        }
        return written
    }
}

struct Rebuild: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fold views from the whole log and write their snapshots; reports events/s.",
        discussion: "A server started with the same snapshot directory starts from these snapshots and folds only what came after."
    )

    @OptionGroup var target: LogOption
    @Option(help: "Only this view: system-stats, unlocked-profiles or metrics (default: all).") var projection: ViewName?
    @Option(help: "Where to write snapshots (default: DIR/snapshots next to the log).") var snapshots: String?

    func run() async throws {
        let store = try target.open()
        var views = ViewSet(projection.map { [$0] } ?? Set(ViewName.allCases))
        let progress = Progress(label: "rebuild", total: try await store.head().position)
        let started = monotonicSeconds()
        do {
            try await views.fold(store) { progress.update($0) }
        } catch {
            progress.finish()
            throw target.unreadable("cannot read the log at \(target.name)", error)
        }
        let seconds = monotonicSeconds() - started
        progress.finish()
        let directory = snapshots ?? (target.log.hasSuffix("/") ? target.log : target.log + "/") + "snapshots"
        let written: [String]
        do {
            written = try views.save(to: SnapshotStore(directory: directory))
        } catch {
            printError("cannot write snapshots to \(directory): \(error)")
            throw ReplayExit.unreadable
        }
        var out = JSONObject()
        out.set("command", "rebuild")
        out.set("events", views.events)
        out.set("position", views.position)
        out.set("seconds", seconds)
        out.set("events_per_second", seconds > 0 ? Int(Double(views.events) / seconds) : 0)
        out.set("snapshots", written.joined(separator: ","))
        writeLine(1, out.rendered)
        try await store.close()
    }
}

struct BenchReplay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Rebuild every view from an existing log (decode + fold); one JSON object."
    )

    @OptionGroup var target: LogOption

    func run() async throws {
        let store = try target.open()
        var views = ViewSet(Set(ViewName.allCases))
        let started = monotonicSeconds()
        do {
            try await views.fold(store) { _ in }
        } catch {
            throw target.unreadable("cannot read the log at \(target.name)", error)
        }
        let seconds = monotonicSeconds() - started
        let head = try await store.head().position
        guard views.position == head else {
            printError("folded up to \(views.position), but the head is \(head)")
            throw ReplayExit.damaged
        }
        var out = JSONObject()
        out.set("command", "replay")
        out.set("events", views.events)
        out.set("seconds", seconds)
        out.set("events_per_second", seconds > 0 ? Int(Double(views.events) / seconds) : 0)
        out.set("peak_rss_mib", Double(peakResidentKiB()) / 1024, decimals: 1)
        out.set("log", target.name)
        writeLine(1, out.rendered)
        try await store.close()
    }
}

/// The process's peak resident set, KiB (Linux reports ru_maxrss in KiB).
func peakResidentKiB() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Int(usage.ru_maxrss)
}
