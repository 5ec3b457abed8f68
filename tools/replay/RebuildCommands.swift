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
    /// The largest recorded-at folded, kept in the snapshots so a server continuing from
    /// them places its checkpoints by time too.
    private(set) var maxRecordedAt: Int64?
    private(set) var events = 0

    init(_ names: Set<ViewName>) {
        if names.contains(.systemStats) { stats = SystemStatsProjection() }
        if names.contains(.unlockedProfiles) { unlocked = UnlockedProfilesProjection() }
        if names.contains(.metrics) { metrics = MetricsProjection() }
    }

    /// Folds the whole log; `progress` hears the position after each batch. The views read
    /// each batch's payload bytes in place (no `DomainEvent` per event); the unlocked-profiles
    /// fold (the heaviest) runs on another core while this task folds the other two. With
    /// `checkpoints`, writes as-of checkpoints of the views as their schedules fall due (at
    /// batch ends) and at the head.
    mutating func fold(_ store: any EventStore, checkpoints: Checkpointing? = nil, progress: (LogPosition) -> Void) async throws {
        let other = unlocked.map(FoldBox.init)
        unlocked = nil
        var checkpoints = checkpoints
        var last: RecordedEvent?
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
            last = batch[batch.count - 1]
            for event in batch { maxRecordedAt = max(maxRecordedAt ?? event.recordedAt, event.recordedAt) }
            position = batch[batch.count - 1].position
            recordedAt = batch[batch.count - 1].recordedAt
            try checkpoints?.afterBatch(batch, stats: stats, metrics: metrics, unlocked: other?.value)
            progress(position)
        }
        if let last { try checkpoints?.atHead(last, stats: stats, metrics: metrics, unlocked: other?.value) }
        checkpointsWritten = checkpoints?.written ?? 0
        unlocked = other?.value
    }

    private(set) var checkpointsWritten = 0

    /// Checkpoints written during a rebuild: stats and metrics on one schedule, unlocked
    /// profiles (a far larger state) on its own, off unless asked for.
    struct Checkpointing {
        let store: CheckpointStore
        var views: CheckpointSchedule?
        var unlocked: CheckpointSchedule?
        private(set) var written = 0

        init(store: CheckpointStore, everyEvents: UInt64?, unlockedEveryEvents: UInt64?) {
            self.store = store
            views = everyEvents.map { CheckpointSchedule(everyEvents: $0) }
            unlocked = unlockedEveryEvents.map { CheckpointSchedule(everyEvents: $0) }
        }

        /// Writes the checkpoints that fall due with `batch`.
        mutating func afterBatch(_ batch: [RecordedEvent], stats: SystemStatsProjection?, metrics: MetricsProjection?,
                                 unlocked profiles: UnlockedProfilesProjection?) throws {
            let last = batch[batch.count - 1]
            if views?.folded(batch) == true { try writeViews(after: last, stats: stats, metrics: metrics) }
            if unlocked?.folded(batch) == true, let profiles { try writeUnlocked(after: last, profiles) }
        }

        /// At the head: a checkpoint of each view where none was written, so an answer at
        /// the head folds nothing.
        mutating func atHead(_ last: RecordedEvent, stats: SystemStatsProjection?, metrics: MetricsProjection?,
                             unlocked profiles: UnlockedProfilesProjection?) throws {
            if views != nil, viewsAt != last.position { try writeViews(after: last, stats: stats, metrics: metrics) }
            if unlocked != nil, unlockedAt != last.position, let profiles { try writeUnlocked(after: last, profiles) }
        }

        private mutating func writeViews(after last: RecordedEvent, stats: SystemStatsProjection?, metrics: MetricsProjection?) throws {
            guard var schedule = views else { return }
            let mark = schedule.mark(after: last)
            if let stats { try store.save(stats, at: mark); written += 1 }
            if let metrics { try store.save(metrics, at: mark); written += 1 }
            schedule.written(at: mark.position)
            views = schedule
            viewsAt = mark.position
        }

        private mutating func writeUnlocked(after last: RecordedEvent, _ profiles: UnlockedProfilesProjection) throws {
            guard var schedule = unlocked else { return }
            let mark = schedule.mark(after: last)
            try store.save(profiles, at: mark)
            written += 1
            schedule.written(at: mark.position)
            unlocked = schedule
            unlockedAt = mark.position
        }

        private var viewsAt: LogPosition = 0
        private var unlockedAt: LogPosition = 0
    }

    func save(to snapshots: SnapshotStore) throws -> [String] {
        var written: [String] = []
        if let stats {
            try snapshots.save(stats, position: position, recordedAt: recordedAt, maxRecordedAt: maxRecordedAt)
            written.append(snapshots.path(for: SystemStatsProjection.name))
        }
        if let unlocked {
            try snapshots.save(unlocked, position: position, recordedAt: recordedAt, maxRecordedAt: maxRecordedAt)
            written.append(snapshots.path(for: UnlockedProfilesProjection.name))
        }
        if let metrics {
            try snapshots.save(metrics, position: position, recordedAt: recordedAt, maxRecordedAt: maxRecordedAt)
            written.append(snapshots.path(for: MetricsProjection.name))
        }
        return written
    }
}

struct Rebuild: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fold views from the whole log and write their snapshots; reports events/s.",
        discussion: """
            A server started with the same snapshot directory starts from these snapshots and folds \
            only what came after. The as-of checkpoints (DIR/snapshots/checkpoints) let `replay \
            stats` and `replay unlocked` answer as of any point by folding only from the nearest one.
            """
    )

    @OptionGroup var target: LogOption
    @Option(help: "Only this view: system-stats, unlocked-profiles or metrics (default: all).") var projection: ViewName?
    @Option(help: "Where to write snapshots and checkpoints (default: DIR/snapshots next to the log).") var snapshots: String?
    @Option(help: "Write as-of checkpoints of system-stats and metrics every N events, and at the head (0: none).")
    var checkpointEvery: UInt64 = CheckpointSchedule.defaultEveryEvents
    @Option(help: "Write unlocked-profiles checkpoints every N events, and at the head (default 0: none; the state is large).")
    var unlockedCheckpointEvery: UInt64 = 0

    func run() async throws {
        let store = try target.open()
        var views = ViewSet(projection.map { [$0] } ?? Set(ViewName.allCases))
        let progress = Progress(label: "rebuild", total: try await store.head().position)
        let directory = snapshots ?? defaultSnapshotDirectory(target.log)
        let checkpointing = checkpointEvery == 0 && unlockedCheckpointEvery == 0 ? nil : ViewSet.Checkpointing(
            store: CheckpointStore(snapshotDirectory: directory), everyEvents: checkpointEvery == 0 ? nil : checkpointEvery,
            unlockedEveryEvents: unlockedCheckpointEvery == 0 ? nil : unlockedCheckpointEvery)
        let started = monotonicSeconds()
        do {
            try await views.fold(store, checkpoints: checkpointing) { progress.update($0) }
        } catch let error as ProjectionError {
            progress.finish()
            printError("cannot write checkpoints to \(directory): \(error)")
            throw ReplayExit.unreadable
        } catch {
            progress.finish()
            throw target.unreadable("cannot read the log at \(target.name)", error)
        }
        let seconds = monotonicSeconds() - started
        progress.finish()
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
        out.set("checkpoints", views.checkpointsWritten)
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
