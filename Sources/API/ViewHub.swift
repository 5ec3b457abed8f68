public import EventLog
import Foundation
public import Projections
public import ServiceLifecycle

/// The views the API serves, each folded by its own runner, and their freshness against the
/// log's head. Reads never touch the store's write path: they answer from the last
/// published views, however the store is doing.
public final class ViewHub: Sendable {
    public let log: FileLog
    public let stats: ProjectionRunner<SystemStatsProjection, FileLog>
    public let unlocked: ProjectionRunner<UnlockedProfilesProjection, FileLog>
    public let metrics: ProjectionRunner<MetricsProjection, FileLog>
    /// How long a request with `Tally-After` waits for a view to reach that position.
    public let consistencyWait: Duration

    public init(log: FileLog, snapshots: SnapshotStore?, consistencyWait: Duration = .seconds(1),
                onEvent: (@Sendable (String, ProjectionRunnerEvent) -> Void)? = nil) {
        self.log = log
        self.consistencyWait = consistencyWait
        stats = ProjectionRunner(store: log, snapshots: snapshots) { onEvent?(SystemStatsProjection.name, $0) }
        unlocked = ProjectionRunner(store: log, snapshots: snapshots) { onEvent?(UnlockedProfilesProjection.name, $0) }
        metrics = ProjectionRunner(store: log, snapshots: snapshots) { onEvent?(MetricsProjection.name, $0) }
    }

    /// The runners as services: each folds until graceful shutdown, then writes its snapshot.
    public var services: [any Service] {
        [RunnerService(run: stats.run), RunnerService(run: unlocked.run), RunnerService(run: metrics.run)]
    }

    /// A view with its freshness, after waiting (bounded) for `after` when given.
    func read<P: Projection>(_ runner: ProjectionRunner<P, FileLog>, after: LogPosition?) async -> ViewRead<P.View> {
        var stale = false
        if let after, runner.current.position < after {
            stale = !(await runner.waitForPosition(after, timeout: consistencyWait))
        }
        let published = runner.current
        let head = log.currentHead().position
        var headRecordedAt = published.recordedAt
        if head > published.position {
            headRecordedAt = try? await log.read(from: head).first(where: { _ in true })?.recordedAt
        }
        let freshness = Freshness(position: published.position, positionRecordedAt: published.recordedAt, head: head,
                                  headRecordedAt: headRecordedAt, state: runner.state)
        return ViewRead(view: published.view, freshness: freshness, stale: stale)
    }
}

/// A view as one response shows it.
struct ViewRead<View: Sendable>: Sendable {
    var view: View
    var freshness: Freshness
    /// A `Tally-After` position was not reached within the consistency wait.
    var stale: Bool
}

/// A projection runner as a service of the server's group.
struct RunnerService: Service {
    let run: @Sendable () async throws -> Void

    func run() async throws {
        try await cancelWhenGracefulShutdown { try await run() }
    }
}
