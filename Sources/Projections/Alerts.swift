public import Events

/// Levels at which a resource gauge raises an alert, in percent (configurable by the server).
public struct AlertThresholds: Sendable, Hashable, Codable {
    public var warning: Double
    public var critical: Double
    public var emergency: Double

    public init(warning: Double = 65, critical: Double = 75, emergency: Double = 85) {
        self.warning = warning
        self.critical = critical
        self.emergency = emergency
    }

    public func level(_ percent: Double) -> Alert.Level? {
        if percent >= emergency { return .emergency }
        if percent >= critical { return .critical }
        if percent >= warning { return .warning }
        return nil
    }

    /// The alerts a component's latest sample raises: one per resource over a threshold,
    /// and one when the component reports itself degraded or down.
    public func alerts(for gauge: HealthGauge) -> [Alert] {
        var alerts: [Alert] = []
        for (resource, value) in [("memory", gauge.memoryPct), ("cpu", gauge.cpuPct), ("disk", gauge.diskPct)] {
            if let level = level(value) {
                alerts.append(Alert(component: gauge.component, resource: resource, level: level, value: value, since: gauge.sampledAt))
            }
        }
        switch gauge.status {
        case .ok: break
        case .degraded: alerts.append(Alert(component: gauge.component, resource: "status", level: .warning, value: nil, since: gauge.sampledAt))
        case .down: alerts.append(Alert(component: gauge.component, resource: "status", level: .critical, value: nil, since: gauge.sampledAt))
        }
        return alerts
    }
}

public struct Alert: Sendable, Hashable, Codable {
    public enum Level: String, Sendable, Hashable, Codable, Comparable {
        case warning, critical, emergency
        private var rank: Int { self == .warning ? 0 : self == .critical ? 1 : 2 }
        public static func < (a: Level, b: Level) -> Bool { a.rank < b.rank }
    }

    public var component: String
    /// memory, cpu, disk, or status.
    public var resource: String
    public var level: Level
    public var value: Double?
    /// Event time of the sample that raised it, µs.
    public var since: Int64

    public init(component: String, resource: String, level: Level, value: Double?, since: Int64) {
        self.component = component
        self.resource = resource
        self.level = level
        self.value = value
        self.since = since
    }
}
