/// One health sample of a component (stream `health-<component>`). Percentages are 0…100.
public struct HealthSampled: Sendable, Hashable {
    public var component: String
    public var status: HealthStatus
    public var memoryPct: Double
    public var cpuPct: Double
    public var diskPct: Double
    public var latencyMs: Double

    public init(component: String, status: HealthStatus, memoryPct: Double, cpuPct: Double, diskPct: Double, latencyMs: Double) {
        self.component = component
        self.status = status
        self.memoryPct = memoryPct
        self.cpuPct = cpuPct
        self.diskPct = diskPct
        self.latencyMs = latencyMs
    }

    func validated() throws -> Self {
        try FieldRules.identifier(component, field: "component", maxBytes: FieldRules.maxComponentBytes)
        try FieldRules.number(memoryPct, field: "memory_pct", in: 0...100)
        try FieldRules.number(cpuPct, field: "cpu_pct", in: 0...100)
        try FieldRules.number(diskPct, field: "disk_pct", in: 0...100)
        try FieldRules.number(latencyMs, field: "latency_ms", in: 0...Double(FieldRules.maxDurationMs))
        return self
    }
}

/// A circuit breaker in front of a component changed state.
public struct CircuitBreakerChanged: Sendable, Hashable {
    public var component: String
    public var state: BreakerState
    public var reason: String

    public init(component: String, state: BreakerState, reason: String) {
        self.component = component
        self.state = state
        self.reason = reason
    }

    func validated() throws -> Self {
        try FieldRules.identifier(component, field: "component", maxBytes: FieldRules.maxComponentBytes)
        try FieldRules.text(reason, field: "reason", maxBytes: FieldRules.maxTextBytes)
        return self
    }
}
