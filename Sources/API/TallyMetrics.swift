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
        if let log = hub.store as? FileLog { renderFileLog(log.statistics()) }
        if let log = hub.store as? PostgresLog { renderPostgresLog(log.statistics()) }
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

    /// The embedded log's writer figures.
    private func renderFileLog(_ statistics: FileLog.Statistics) {
        gauge("tally_log_batches").set(Double(statistics.batches))
        gauge("tally_log_events").set(Double(statistics.events))
        gauge("tally_log_fsyncs").set(Double(statistics.fsyncs))
        gauge("tally_log_bytes").set(Double(statistics.bytesOnDisk))
        quantiles("tally_log_fsync_seconds", nanoseconds: statistics.recentFsyncNanoseconds)
        if statistics.batches > 0 {
            gauge("tally_log_events_per_batch")
                .set(Double(statistics.events) / Double(statistics.batches))
        }
    }

    /// This process's PostgreSQL writer: group commits, their latency, failures, reconnects.
    private func renderPostgresLog(_ statistics: PostgresLog.Statistics) {
        gauge("tally_log_transactions").set(Double(statistics.transactions))
        gauge("tally_log_events").set(Double(statistics.events))
        gauge("tally_log_failed_transactions").set(Double(statistics.failedTransactions))
        gauge("tally_log_reconnects").set(Double(statistics.reconnects))
        quantiles("tally_log_commit_seconds", nanoseconds: statistics.recentCommitNanoseconds)
    }

    /// The median and p99 of recent durations, in seconds.
    private func quantiles(_ name: String, nanoseconds: [UInt64]) {
        let sorted = nanoseconds.sorted()
        guard !sorted.isEmpty else { return }
        for (quantile, label) in [(0.5, "0.5"), (0.99, "0.99")] {
            let value = sorted[min(sorted.count - 1, Int(Double(sorted.count) * quantile))]
            gauge(name, labels: [("quantile", label)]).set(Double(value) / 1e9)
        }
    }
}
