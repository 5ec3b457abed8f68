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

/// The three views folded in one pass over the log, on both cores (`FoldPipeline`): this
/// task reads and decodes; one lane thread folds unlocked profiles (the heaviest view), the
/// other folds system stats and metrics, reading each event's fields once for both. Each
/// lane folds every batch in log order, so the views equal a sequential fold.
struct ViewSet {
    var stats: SystemStatsProjection?
    /// The stats view as of each hour the fold passes, written beside its snapshot so a
    /// server started from it answers hourly series without folding (`IntervalRows`).
    var statsRows: IntervalRows<SystemStats>?
    var unlocked: UnlockedProfilesProjection?
    var metrics: MetricsProjection?
    private(set) var position: LogPosition = 0
    private(set) var recordedAt: Int64?
    /// The largest recorded-at folded, kept in the snapshots so a server continuing from
    /// them places its checkpoints by time too.
    private(set) var maxRecordedAt: Int64?
    private(set) var events = 0
    private(set) var checkpointsWritten = 0

    init(_ names: Set<ViewName>) {
        if names.contains(.systemStats) {
            stats = SystemStatsProjection()
            statsRows = IntervalRows(SystemStats.hourlyRows, position: 0, maxRecordedAt: nil, emptyView: SystemStatsProjection().makeView())
        }
        if names.contains(.unlockedProfiles) { unlocked = UnlockedProfilesProjection() }
        if names.contains(.metrics) { metrics = MetricsProjection() }
    }

    /// Folds the whole log; `progress` hears the position read after each batch. With
    /// `checkpoints`, each lane writes its views' as-of checkpoints as their schedules fall
    /// due (at batch ends), and at the head. On an error or a cancellation the views are
    /// left as they were (nothing partial is kept).
    mutating func fold(_ store: any EventStore, checkpoints: Checkpointing? = nil, pipeline: FoldPipeline? = nil,
                       progress: (LogPosition) -> Void) async throws {
        let views = stats != nil || metrics != nil
            ? LaneState(ViewsLane(stats: stats, statsRows: statsRows, metrics: metrics, checkpoints: checkpoints?.views)) : nil
        let profiles = unlocked.map { LaneState(UnlockedLane(projection: $0, checkpoints: checkpoints?.unlocked)) }
        var lanes: [FoldPipeline.Lane] = []
        if let views { lanes.append { batch in try views.value.fold(batch) } }
        if let profiles { lanes.append { batch in try profiles.value.fold(batch) } }
        guard !lanes.isEmpty else { return }
        var read = (events: 0, position: LogPosition(0), recordedAt: Int64?.none, maxRecordedAt: Int64?.none, last: RecordedEvent?.none)
        let pipeline = pipeline ?? FoldPipeline(lanes: lanes.count)
        try await pipeline.run(lanes: lanes) { feed in
            for try await batch in store.read(from: 1).batches {
                guard let last = batch.last else { continue }
                try await feed.offer(batch)
                read.events += batch.count
                read.position = last.position
                read.recordedAt = last.recordedAt
                read.last = last
                read.maxRecordedAt = batch.withUnsafeBufferPointer { events in
                    var newest = read.maxRecordedAt ?? events[0].recordedAt
                    for index in events.indices { newest = max(newest, events[index].recordedAt) }
                    return newest
                }
                progress(read.position)
            }
        }
        if let last = read.last {
            try views?.value.atHead(last)
            try profiles?.value.atHead(last)
        }
        (events, position, recordedAt, maxRecordedAt) = (read.events, read.position, read.recordedAt, read.maxRecordedAt)
        stats = views?.value.stats
        statsRows = views?.value.statsRows
        metrics = views?.value.metrics
        unlocked = profiles?.value.projection
        checkpointsWritten = (views?.value.checkpoints?.written ?? 0) + (profiles?.value.checkpoints?.written ?? 0)
    }

    /// System stats and metrics, folded on one lane thread from one read of each event's fields.
    struct ViewsLane {
        var stats: SystemStatsProjection?
        var statsRows: IntervalRows<SystemStats>?
        var metrics: MetricsProjection?
        var checkpoints: CheckpointLane?

        mutating func fold(_ batch: [RecordedEvent]) throws {
            if var rows = statsRows, stats != nil {
                // Out of the lane while they change, so neither is copied.
                var folded = stats
                (statsRows, stats) = (nil, nil)
                rows.fold(batch, apply: { run in fold(run, stats: &folded) }, view: { folded!.makeView() }, viewWithLate: { folded!.view(alsoFolding: $0) })
                (statsRows, stats) = (rows, folded)
            } else {
                var folded = stats
                stats = nil
                fold(batch, stats: &folded)
                stats = folded
            }
            guard var schedule = checkpoints else { return }
            try schedule.afterBatch(batch, save: save)
            checkpoints = schedule
        }

        /// Stats (when given) and metrics, from one read of each event's fields when both are folded.
        private mutating func fold(_ batch: [RecordedEvent], stats: inout SystemStatsProjection?) {
            if stats != nil, metrics != nil {
                batch.forEachFields { fields, stamp in
                    stats!.fold(fields, at: stamp)
                    metrics!.fold(fields, at: stamp)
                }
            } else {
                stats?.apply(batch: batch)
                metrics?.apply(batch: batch)
            }
        }

        mutating func atHead(_ last: RecordedEvent) throws {
            guard var schedule = checkpoints else { return }
            try schedule.atHead(last, save: save)
            checkpoints = schedule
        }

        private func save(_ store: CheckpointStore, _ mark: CheckpointMark) throws -> Int {
            if let stats { _ = try store.save(stats, at: mark) }
            if let metrics { _ = try store.save(metrics, at: mark) }
            return (stats == nil ? 0 : 1) + (metrics == nil ? 0 : 1)
        }
    }

    struct UnlockedLane {
        var projection: UnlockedProfilesProjection
        var checkpoints: CheckpointLane?

        mutating func fold(_ batch: [RecordedEvent]) throws {
            projection.apply(batch: batch)
            guard var schedule = checkpoints else { return }
            try schedule.afterBatch(batch, save: save)
            checkpoints = schedule
        }

        mutating func atHead(_ last: RecordedEvent) throws {
            guard var schedule = checkpoints else { return }
            try schedule.atHead(last, save: save)
            checkpoints = schedule
        }

        private func save(_ store: CheckpointStore, _ mark: CheckpointMark) throws -> Int {
            _ = try store.save(projection, at: mark)
            return 1
        }
    }

    /// Checkpoints written during a rebuild: stats and metrics on one schedule, unlocked
    /// profiles (a far larger state) on its own, off unless asked for.
    struct Checkpointing {
        var views: CheckpointLane?
        var unlocked: CheckpointLane?

        init(store: CheckpointStore, everyEvents: UInt64?, unlockedEveryEvents: UInt64?) {
            views = everyEvents.map { CheckpointLane(store: store, schedule: CheckpointSchedule(everyEvents: $0)) }
            unlocked = unlockedEveryEvents.map { CheckpointLane(store: store, schedule: CheckpointSchedule(everyEvents: $0)) }
        }
    }

    /// One lane's checkpoint schedule: writes when it falls due after a batch, and at the
    /// head where none was written.
    struct CheckpointLane {
        let store: CheckpointStore
        var schedule: CheckpointSchedule
        private(set) var writtenAt: LogPosition = 0
        private(set) var written = 0

        init(store: CheckpointStore, schedule: CheckpointSchedule) {
            self.store = store
            self.schedule = schedule
        }

        mutating func afterBatch(_ batch: [RecordedEvent], save: (CheckpointStore, CheckpointMark) throws -> Int) throws {
            guard schedule.folded(batch), let last = batch.last else { return }
            try write(after: last, save)
        }

        mutating func atHead(_ last: RecordedEvent, save: (CheckpointStore, CheckpointMark) throws -> Int) throws {
            guard writtenAt != last.position else { return }
            try write(after: last, save)
        }

        private mutating func write(after last: RecordedEvent, _ save: (CheckpointStore, CheckpointMark) throws -> Int) throws {
            let mark = schedule.mark(after: last)
            written += try save(store, mark)
            schedule.written(at: mark.position)
            writtenAt = mark.position
        }
    }

    func save(to snapshots: SnapshotStore) throws -> [String] {
        var written: [String] = []
        if let stats {
            try snapshots.save(stats, position: position, recordedAt: recordedAt, maxRecordedAt: maxRecordedAt)
            written.append(snapshots.path(for: SystemStatsProjection.name))
            if let statsRows {
                try snapshots.saveRows(statsRows, of: SystemStatsProjection.self, recordedAt: recordedAt, options: SystemStats.hourlyRows)
                written.append(snapshots.rowsPath(for: SystemStatsProjection.name))
            }
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
            stats` and `replay unlocked` answer as of any point by folding only from the nearest one. \
            The system stats as of every hour the fold passed (DIR/snapshots/system-stats.rows) let \
            the server answer hourly stats series without folding.
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
