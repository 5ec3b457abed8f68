public import EventLog
import Foundation
import Synchronization
public import Projections
public import ServiceLifecycle

/// The views the API serves, each folded by its own runner, and their freshness against the
/// log's head. Reads never touch the store: they answer from the last published views and
/// the head the runners and commands last saw, however slow or down the store is.
public final class ViewHub<Store: EventStore>: Sendable {
    public let store: Store
    public let stats: ProjectionRunner<SystemStatsProjection, Store>
    public let unlocked: ProjectionRunner<UnlockedProfilesProjection, Store>
    public let metrics: ProjectionRunner<MetricsProjection, Store>
    /// How long a request with `Tally-After` waits for a view to reach that position.
    public let consistencyWait: Duration
    /// The as-of checkpoints of stats and metrics (nil without a snapshot directory): the
    /// stats series starts its fold from the nearest one.
    public let checkpoints: CheckpointStore?

    public init(store: Store, snapshots: SnapshotStore?, consistencyWait: Duration = .seconds(1),
                runnerOptions: ProjectionRunnerOptions = ProjectionRunnerOptions(),
                onEvent: (@Sendable (String, ProjectionRunnerEvent) -> Void)? = nil) {
        self.store = store
        self.consistencyWait = consistencyWait
        // As-of checkpoints of stats and metrics beside the snapshots, for `replay stats` as of
        // any point; not of unlocked profiles, whose state is far larger (docs/snapshot-format.md).
        let checkpoints = snapshots.map { CheckpointStore(snapshotDirectory: $0.directory) }
        self.checkpoints = checkpoints
        // Hourly rows for the stats series (`SystemStats.hourlyRows`), kept as the fold passes each hour.
        stats = ProjectionRunner(store: store, snapshots: snapshots, checkpoints: checkpoints, options: runnerOptions,
                                 intervalRows: SystemStats.hourlyRows) {
            onEvent?(SystemStatsProjection.name, $0)
        }
        unlocked = ProjectionRunner(store: store, snapshots: snapshots, options: runnerOptions) { onEvent?(UnlockedProfilesProjection.name, $0) }
        metrics = ProjectionRunner(store: store, snapshots: snapshots, checkpoints: checkpoints, options: runnerOptions) {
            onEvent?(MetricsProjection.name, $0)
        }
    }

    /// The runners as services: each folds until graceful shutdown, then writes its snapshot.
    public var services: [any Service] {
        [RunnerService(run: stats.run), RunnerService(run: unlocked.run), RunnerService(run: metrics.run)]
    }

    private let probedHead = Mutex<LogPosition>(0)

    /// The head as the runners last saw it (each asks the store when it may have caught up,
    /// and tails every commit); never asks the store itself.
    public var knownHead: LogPosition {
        max(stats.knownHead, unlocked.knownHead, metrics.knownHead, probedHead.withLock { $0 })
    }

    /// The head for a response: what is known, or — before any runner has seen the store,
    /// at a cold start — the store's answer within a short deadline.
    func head() async -> LogPosition {
        let known = knownHead
        guard known == 0, let probed = try? await withDeadline(.milliseconds(250), { try await self.store.head().position }) else { return known }
        probedHead.withLock { $0 = max($0, probed) }
        return probed
    }

    /// `published`'s freshness against `head`. When the view lags, the event time of the
    /// head comes from another view that has folded it.
    func freshness<View>(_ published: Published<View>, state: ProjectionState, head: LogPosition) -> Freshness {
        var headRecordedAt = published.recordedAt
        if head > published.position {
            let others: [(LogPosition, Int64?)] = [
                (stats.current.position, stats.current.recordedAt), (unlocked.current.position, unlocked.current.recordedAt),
                (metrics.current.position, metrics.current.recordedAt),
            ]
            headRecordedAt = others.first { $0.0 == head }?.1 ?? published.recordedAt
        }
        return Freshness(position: published.position, positionRecordedAt: published.recordedAt, head: head, headRecordedAt: headRecordedAt,
                         state: state)
    }

    /// A view with its freshness, after waiting (bounded) for `after` when given.
    @_specialize(where Store == FileLog, P == UnlockedProfilesProjection)
    @_specialize(where Store == FileLog, P == SystemStatsProjection)
    func read<P: Projection>(_ runner: ProjectionRunner<P, Store>, after: LogPosition?) async -> ViewRead<P.View> {
        var stale = false
        if let after, runner.current.position < after {
            stale = !(await runner.waitForPosition(after, timeout: consistencyWait))
        }
        let published = runner.current
        let head = max(await self.head(), published.position)
        let freshness = self.freshness(published, state: runner.state, head: head)
        // A view that cannot reach the store cannot tell how far behind it is: stale too
        // (DESIGN.md, "store down or slow").
        return ViewRead(view: published.view, freshness: freshness, stale: stale || freshness.state == .storeUnavailable)
    }
}

/// A view as one response shows it.
struct ViewRead<View: Sendable>: Sendable {
    var view: View
    var freshness: Freshness
    /// A `Tally-After` position was not reached within the consistency wait, or the view's
    /// runner cannot reach the store.
    var stale: Bool
}

/// A projection runner as a service of the server's group.
struct RunnerService: Service {
    let run: @Sendable () async throws -> Void

    func run() async throws {
        try await cancelWhenGracefulShutdown { try await run() }
    }
}
