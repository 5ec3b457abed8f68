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

    func render(_ hub: ViewHub) -> String {
        let statistics = hub.log.statistics()
        let head = hub.log.currentHead().position
        registry.makeGauge(name: "tally_log_head_position", help: "Last committed log position").set(Double(head))
        registry.makeGauge(name: "tally_log_batches", help: "Batches written since start").set(Double(statistics.batches))
        registry.makeGauge(name: "tally_log_events", help: "Events written since start").set(Double(statistics.events))
        registry.makeGauge(name: "tally_log_fsyncs", help: "fdatasync calls since start").set(Double(statistics.fsyncs))
        registry.makeGauge(name: "tally_log_bytes", help: "Bytes of segments on disk").set(Double(statistics.bytesOnDisk))
        let fsyncs = statistics.recentFsyncNanoseconds.sorted()
        if !fsyncs.isEmpty {
            for (quantile, label) in [(0.5, "0.5"), (0.99, "0.99")] {
                let value = fsyncs[min(fsyncs.count - 1, Int(Double(fsyncs.count) * quantile))]
                registry.makeGauge(name: "tally_log_fsync_seconds", labels: [("quantile", label)], help: "Recent fdatasync durations")
                    .set(Double(value) / 1e9)
            }
        }
        if statistics.batches > 0 {
            registry.makeGauge(name: "tally_log_events_per_batch", help: "Mean events per batch since start")
                .set(Double(statistics.events) / Double(statistics.batches))
        }
        for (name, position, state) in [
            (SystemStatsProjection.name, hub.stats.current.position, hub.stats.state),
            (UnlockedProfilesProjection.name, hub.unlocked.current.position, hub.unlocked.state),
            (MetricsProjection.name, hub.metrics.current.position, hub.metrics.state),
        ] {
            registry.makeGauge(name: "tally_projection_position", labels: [("projection", name)], help: "Position of the published view").set(Double(position))
            registry.makeGauge(name: "tally_projection_lag_events", labels: [("projection", name)], help: "Events behind the log head")
                .set(Double(head > position ? head - position : 0))
            for candidate in [ProjectionState.live, .catchingUp, .rebuilding, .storeUnavailable] {
                registry.makeGauge(name: "tally_projection_state", labels: [("projection", name), ("state", candidate.rawValue)],
                                   help: "1 for the projection's current state").set(candidate == state ? 1.0 : 0.0)
            }
        }
        return registry.emitToString()
    }
}
