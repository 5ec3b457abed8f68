import Events
import Foundation
import Projections

/// The request's clock, µs since 1970 UTC. Only the API edge reads it, to age health
/// samples; projections never do. Tests inject a clock they move by hand.
public struct WallClock: Sendable {
    public let microseconds: @Sendable () -> Int64

    public init(microseconds: @escaping @Sendable () -> Int64) {
        self.microseconds = microseconds
    }

    public static let system = WallClock { Int64((Date().timeIntervalSince1970 * 1_000_000).rounded()) }
}

/// A component's status as the API reports it: the status its last sample reported, or
/// `stale` when that sample is older than the staleness bound at the request's time.
enum ComponentStatus: String, Sendable, Hashable, CaseIterable, Encodable {
    case ok, degraded, down, stale

    /// Strictly older than `staleAfter` is stale; a sample exactly at the bound, or dated
    /// after `now` (another machine's clock ahead of ours), is not.
    static func of(_ reported: HealthStatus, sampledAt: Int64, now: Int64, staleAfter: Duration) -> ComponentStatus {
        if ageMicros(sampledAt: sampledAt, now: now) > staleAfter.microseconds { return .stale }
        switch reported {
        case .ok: return .ok
        case .degraded: return .degraded
        case .down: return .down
        }
    }

    /// Age of a sample in µs, 0 when it is dated in the future; never overflows.
    static func ageMicros(sampledAt: Int64, now: Int64) -> Int64 {
        let (age, overflow) = now.subtractingReportingOverflow(sampledAt)
        return overflow ? (now > sampledAt ? .max : 0) : max(0, age)
    }

    /// The system's status over its components: `unknown` without any, `down` when one is
    /// down, `degraded` when one is degraded, stale or behind an open or half-open breaker,
    /// else `healthy` (the words the system-stats view uses).
    static func system(_ statuses: [ComponentStatus], breakerOpen: Bool) -> String {
        if statuses.isEmpty { return "unknown" }
        if statuses.contains(.down) { return "down" }
        if breakerOpen || statuses.contains(where: { $0 == .degraded || $0 == .stale }) { return "degraded" }
        return "healthy"
    }
}

extension Duration {
    /// Whole microseconds, saturating.
    var microseconds: Int64 {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000)
        if overflow { return seconds > 0 ? .max : .min }
        return scaled.addingReportingOverflow(attoseconds / 1_000_000_000_000).partialValue
    }
}

/// One component's latest health as the API reports it: the sample, its own status, the
/// status at the request's time and the sample's age.
struct ComponentHealthBody: Encodable {
    var status: ComponentStatus
    var reportedStatus: HealthStatus
    var sampleAgeSeconds: Double
    var sampledAt: String
    var sampledAtUs: Int64
    var memoryPct: Double
    var cpuPct: Double
    var diskPct: Double
    var latencyMs: Double
    var breaker: BreakerState?

    init(_ health: SystemStats.ComponentHealth, now: Int64, staleAfter: Duration) {
        status = ComponentStatus.of(health.status, sampledAt: health.sampledAt, now: now, staleAfter: staleAfter)
        reportedStatus = health.status
        sampleAgeSeconds = Double(ComponentStatus.ageMicros(sampledAt: health.sampledAt, now: now)) / 1_000_000
        sampledAt = EventTime.iso8601(micros: health.sampledAt)
        sampledAtUs = health.sampledAt
        memoryPct = health.memoryPct
        cpuPct = health.cpuPct
        diskPct = health.diskPct
        latencyMs = health.latencyMs
        breaker = health.breaker
    }

    enum CodingKeys: String, CodingKey {
        case status, reportedStatus = "reported_status", sampleAgeSeconds = "sample_age_seconds", sampledAt = "sampled_at",
             sampledAtUs = "sampled_at_us", memoryPct = "memory_pct", cpuPct = "cpu_pct", diskPct = "disk_pct", latencyMs = "latency_ms", breaker
    }
}

/// `{status, ai_system}` as the system-stats view words them.
struct SystemStatusBody: Encodable {
    var status = "unknown"
    var aiSystem = "unknown"
    enum CodingKeys: String, CodingKey { case status, aiSystem = "ai_system" }
}

extension TallyAPI {
    /// Every component's latest health at the request's time.
    func componentHealth(_ latest: [String: SystemStats.ComponentHealth]) -> [String: ComponentHealthBody] {
        let now = clock.microseconds()
        return latest.mapValues { ComponentHealthBody($0, now: now, staleAfter: healthStaleAfter) }
    }

    /// `system.status` and `system.ai_system` with stale components counted: the view's
    /// words, recomputed at the request's time.
    func systemStatus(_ components: [String: ComponentHealthBody]) -> SystemStatusBody {
        var system = SystemStatusBody()
        let breakerOpen = components.values.contains { $0.breaker == .open || $0.breaker == .halfOpen }
        system.status = ComponentStatus.system(Array(components.values.map(\.status)), breakerOpen: breakerOpen)
        if let ai = components[SystemStats.aiComponent] {
            system.aiSystem = switch ai.status {
            case .ok: ai.breaker == .open ? "degraded" : "operational"
            case .degraded: "degraded"
            case .down: "down"
            case .stale: "stale"
            }
        }
        return system
    }

    /// Alerts from the latest samples, plus one warning per component whose sample is stale
    /// (resource `sample_age`, value the age in seconds): a silent component is news.
    func alertsWithStaleness(_ metrics: MetricsProjection) -> [Alert] {
        let now = clock.microseconds()
        var alerts: [Alert] = []
        for gauge in metrics.gauges.values.sorted(by: { $0.component < $1.component }) {
            alerts += alertThresholds.alerts(for: gauge)
            if ComponentStatus.of(gauge.status, sampledAt: gauge.sampledAt, now: now, staleAfter: healthStaleAfter) == .stale {
                let age = Double(ComponentStatus.ageMicros(sampledAt: gauge.sampledAt, now: now)) / 1_000_000
                alerts.append(Alert(component: gauge.component, resource: "sample_age", level: .warning, value: age, since: gauge.sampledAt))
            }
        }
        return alerts
    }
}
