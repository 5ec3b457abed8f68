import EventLog
import Hummingbird
public import Prometheus
import Projections

/// `/metrics` in the Prometheus text format: the request metrics Hummingbird's
/// `MetricsMiddleware` records through swift-metrics (when the server bootstraps it with
/// this registry), plus the log's and the projections' figures read at scrape time.
public final class TallyMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    /// When set, `/metrics` requires `Authorization: Bearer <token>` (env TALLY_METRICS_TOKEN).
    public let token: String?

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(), token: String? = nil) {
        self.registry = registry
        self.token = token
    }

    func render<Store: EventStore>(_ hub: ViewHub<Store>) -> String {
        let head = hub.knownHead
        gauge("tally_log_head_position").set(Double(head))
        renderStore(hub.store.statistics())
        for (name, position, state) in [
            (SystemStatsProjection.name, hub.stats.current.position, hub.stats.state),
            (UnlockedProfilesProjection.name, hub.unlocked.current.position, hub.unlocked.state),
            (MetricsProjection.name, hub.metrics.current.position, hub.metrics.state),
        ] {
            gauge("tally_projection_position", labels: [("projection", name)]).set(Double(position))
            gauge("tally_projection_lag_events", labels: [("projection", name)])
                .set(Double(head > position ? head - position : 0))
            for candidate in [ProjectionState.live, .catchingUp, .rebuilding, .storeUnavailable] {
                gauge("tally_projection_state", labels: [("projection", name), ("state", candidate.rawValue)]).set(candidate == state ? 1.0 : 0.0)
            }
        }
        return registry.emitToString()
    }

    private func gauge(_ name: String, labels: [(String, String)] = []) -> Gauge {
        registry.makeGauge(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: ""), labels: labels)
    }

    /// The store's writer figures, named with the backend's words (`tally_log_batches` and
    /// `tally_log_fsync_seconds` for the embedded log, `tally_log_transactions` and
    /// `tally_log_commit_seconds` for PostgreSQL), so the names operators know stay.
    private func renderStore(_ statistics: StoreStatistics) {
        let names = statistics.names
        gauge("tally_log_backend", labels: [("backend", names.backend)]).set(1.0)
        gauge("tally_log_\(names.commits)").set(Double(statistics.commits))
        gauge("tally_log_failed_\(names.commits)").set(Double(statistics.failedCommits))
        gauge("tally_log_events").set(Double(statistics.events))
        gauge("tally_log_\(names.sync)s").set(Double(statistics.syncs))
        gauge("tally_log_reconnects").set(Double(statistics.reconnects))
        gauge("tally_log_seal_failures").set(Double(statistics.sealFailures))
        if let bytes = statistics.bytesStored { gauge("tally_log_bytes").set(Double(bytes)) }
        if let perCommit = statistics.eventsPerCommit { gauge("tally_log_events_per_\(names.commit)").set(perCommit) }
        if let (median, p99) = statistics.syncMedianAndP99 {
            gauge("tally_log_\(names.sync)_seconds", labels: [("quantile", "0.5")]).set(Double(median) / 1e9)
            gauge("tally_log_\(names.sync)_seconds", labels: [("quantile", "0.99")]).set(Double(p99) / 1e9)
        }
    }
}
