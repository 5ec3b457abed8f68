import EventLog
import Events
import Foundation
import Hummingbird
import Projections

/// The seed backend's monitoring paths that belong to an analytics core, answered from the
/// views only (never the store) with the freshness every view read carries. Admin only, as
/// the neighbouring operation routes. Bodies: `MonitoringBodies.swift`.
extension TallyAPI {
    func addMonitoringRoutes(to v1: RouterGroup<TallyRequestContext>) {
        v1.get("system/health/comprehensive", use: comprehensiveHealth)
        v1.get("system/performance/report", use: performanceReport)
        v1.get("system/monitoring/status", use: monitoringStatus)
        v1.get("system/recovery/history", use: recoveryHistory)
        v1.get("cdn/health", use: cdnHealth)
        v1.get("cdn/statistics", use: cdnStatistics)
    }

    /// Two views read for one answer: each honours `Tally-After` and the never-built 503;
    /// the answer is as fresh as the older of the two, and stale when either is.
    func twoViews<A: Projection, B: Projection>(_ a: ProjectionRunner<A, Store>, _ b: ProjectionRunner<B, Store>,
                                                _ request: Request) async throws -> (A.View, B.View, ViewRead<Void>) {
        let first = try await view(a, request)
        let second = try await view(b, request)
        let older = first.freshness.position <= second.freshness.position ? first.freshness : second.freshness
        return (first.view, second.view, ViewRead(view: (), freshness: older, stale: first.stale || second.stale))
    }

    /// This server's own view of its store and views: the breaker and each projection's
    /// state. Degraded unless the breaker is closed and every view is live.
    func serverDegraded() -> Bool {
        breaker.current != .closed || [hub.stats.state, hub.unlocked.state, hub.metrics.state].contains { $0 != .live }
    }

    @Sendable func comprehensiveHealth(_ request: Request, context: TallyRequestContext) async throws -> Response {
        _ = try context.require(.admin)
        let (stats, metrics, read) = try await twoViews(hub.stats, hub.metrics, request)
        let components = componentHealth(stats.health.latest)
        var status = systemStatus(components)
        if serverDegraded(), status.status == "healthy" || status.status == "unknown" { status.status = "degraded" }
        let unlocked = await hub.read(hub.unlocked, after: nil)
        let body = ComprehensiveHealthBody(
            status: status.status, aiSystem: status.aiSystem, components: components, statusCounts: ComponentStatusCounts(components),
            server: ServerHealthBody(breaker: breaker.current, knownHead: hub.knownHead, storeKind: String(describing: Store.self)),
            projections: [
                ProjectionStateBody(name: SystemStatsProjection.name, state: hub.stats.state, position: hub.stats.current.position),
                ProjectionStateBody(name: UnlockedProfilesProjection.name, state: unlocked.freshness.state, position: unlocked.freshness.position),
                ProjectionStateBody(name: MetricsProjection.name, state: hub.metrics.state, position: hub.metrics.current.position),
            ],
            alerts: AlertCounts(alertsWithStaleness(metrics)), staleAfterSeconds: healthStaleAfter.microseconds / 1_000_000,
            checkedAt: EventTime.iso8601(micros: clock.microseconds()))
        return try JSONResponse.view(body, read)
    }

    @Sendable func performanceReport(_ request: Request, context: TallyRequestContext) async throws -> Response {
        _ = try context.require(.admin)
        let hours = try Self.intQuery(request, "hours", default: 24, in: 1...720)
        let read = try await view(hub.metrics, request)
        let m = read.view
        var latency: [String: LatencySummary] = [:]
        for kind in LatencyKind.allCases { latency["\(kind)"] = m.latency(kind, lastHours: hours) }
        let buckets = m.hourBuckets(last: hours)
        let from = buckets.first?.start
        let transitions = from.map { start in m.transitions.filter { $0.at >= start }.count } ?? 0
        let body = PerformanceReportBody(hours: hours, from: from.map { EventTime.iso8601(micros: $0) },
                                         to: m.newestEventTime.map { EventTime.iso8601(micros: $0) },
                                         summary: PerformanceSummary(m.totals(lastHours: hours)), latencyMs: latency, buckets: buckets,
                                         breakerTransitions: transitions)
        return try JSONResponse.view(body, read)
    }

    @Sendable func monitoringStatus(_ request: Request, context: TallyRequestContext) async throws -> Response {
        _ = try context.require(.admin)
        let (stats, metrics, read) = try await twoViews(hub.stats, hub.metrics, request)
        let components = componentHealth(stats.health.latest)
        var status = systemStatus(components).status
        if serverDegraded(), status == "healthy" || status == "unknown" { status = "degraded" }
        let newest = stats.health.latest.values.map(\.sampledAt).max()
        let body = MonitoringStatusBody(
            status: status,
            healthSampling: HealthSamplingBody(components: components.count, statusCounts: ComponentStatusCounts(components),
                                               newestSampleAt: newest.map { EventTime.iso8601(micros: $0) },
                                               staleAfterSeconds: healthStaleAfter.microseconds / 1_000_000),
            alerts: AlertCounts(alertsWithStaleness(metrics)), breaker: breaker.current,
            breakerTransitions: metrics.transitionCount,
            projections: [
                ProjectionStateBody(name: SystemStatsProjection.name, state: hub.stats.state, position: hub.stats.current.position),
                ProjectionStateBody(name: UnlockedProfilesProjection.name, state: hub.unlocked.state, position: hub.unlocked.current.position),
                ProjectionStateBody(name: MetricsProjection.name, state: hub.metrics.state, position: hub.metrics.current.position),
            ])
        return try JSONResponse.view(body, read)
    }

    /// Breaker transitions as the log holds them (`CircuitBreakerChanged`, folded by the
    /// metrics view, which keeps the newest `recentTransitionsKept`), newest first.
    @Sendable func recoveryHistory(_ request: Request, context: TallyRequestContext) async throws -> Response {
        _ = try context.require(.admin)
        let limit = try Self.intQuery(request, "limit", default: MetricsProjection.recentTransitionsKept, in: 1...MetricsProjection.recentTransitionsKept)
        let read = try await view(hub.metrics, request)
        let m = read.view
        var current: [String: BreakerState] = [:]
        for t in m.transitions { current[t.component] = t.state }
        let body = RecoveryHistoryBody(transitions: m.transitions.reversed().prefix(limit).map(TransitionBody.init), total: m.transitionCount,
                                       kept: MetricsProjection.recentTransitionsKept, current: current)
        return try JSONResponse.view(body, read)
    }

    @Sendable func cdnHealth(_ request: Request, context: TallyRequestContext) async throws -> Response {
        _ = try context.require(.admin)
        let (stats, metrics, read) = try await twoViews(hub.stats, hub.metrics, request)
        let lastHour = CdnWindow(Self.lastHour(metrics.minuteBuckets))
        let worker = stats.health.latest[CdnHealthBody.workerComponent].map {
            ComponentHealthBody($0, now: clock.microseconds(), staleAfter: healthStaleAfter)
        }
        let body = CdnHealthBody(status: CdnHealthBody.status(lastHour, worker: worker?.status), lastHour: lastHour,
                                 pending: CdnHealthBody.pending(stats.cdn), latencyMs: metrics.latency(.cdn, lastHours: 1), worker: worker)
        return try JSONResponse.view(body, read)
    }

    @Sendable func cdnStatistics(_ request: Request, context: TallyRequestContext) async throws -> Response {
        _ = try context.require(.admin)
        let (stats, metrics, read) = try await twoViews(hub.stats, hub.metrics, request)
        let body = CdnStatisticsBody(allTime: stats.cdn, pending: CdnHealthBody.pending(stats.cdn),
                                     last24h: CdnWindow(metrics.totals(lastHours: 24)), latencyMs: metrics.latency(.cdn))
        return try JSONResponse.view(body, read)
    }

    /// The minute buckets of the newest 60 minutes of event time, summed.
    static func lastHour(_ minutes: [MetricsBucket]) -> MetricsBucket {
        guard let newest = minutes.last?.start else { return MetricsBucket(start: 0) }
        let from = newest - 59 * 60_000_000
        return CdnWindow.sum(minutes.filter { $0.start >= from }, start: from)
    }
}
