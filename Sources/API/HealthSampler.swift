import Commands
public import EventLog
public import Events
import Foundation
import Projections
public import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// Samples the server's own health every `interval` — memory, CPU, disk of the data
/// directory, append latency — and appends `HealthSampled` events (component
/// `tally-server`), so the log holds its own health history. A sample the store refuses is
/// skipped; the next one tries again.
public struct HealthSampler<Store: EventStore>: Service {
    let api: TallyAPI<Store>
    let dataDirectory: String
    let interval: Duration
    public static var component: String { "tally-server" }

    public init(api: TallyAPI<Store>, dataDirectory: String, interval: Duration) {
        self.api = api
        self.dataDirectory = dataDirectory
        self.interval = interval
    }

    public func run() async throws {
        var cpu = CPUTimes.read()
        while true {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                return
            }
            let now = CPUTimes.read()
            let sample = measure(cpuPercent: CPUTimes.busyPercent(from: cpu, to: now))
            cpu = now
            _ = try? await api.command {
                try await api.commands.recordHealth([.sample(sample)], context: CommandContext(actor: "service:" + Self.component))
            }
        }
    }

    func measure(cpuPercent: Double) -> HealthSampled {
        let memory = Self.memoryPercent()
        let disk = Self.diskPercent(dataDirectory)
        // The store's durable-sync median (fdatasync, or COMMIT on PostgreSQL).
        let latency = (api.hub.store.statistics().syncMedianAndP99?.median).map { Double($0) / 1e6 } ?? 0
        let worst = max(memory, cpuPercent, disk)
        let status: HealthStatus = api.breaker.current != .closed ? .down : worst >= api.alertThresholds.critical ? .degraded : .ok
        return HealthSampled(component: Self.component, status: status, memoryPct: Self.clamp(memory), cpuPct: Self.clamp(cpuPercent),
                             diskPct: Self.clamp(disk), latencyMs: min(latency, Double(FieldRules.maxDurationMs)))
    }

    static func clamp(_ percent: Double) -> Double { percent.isFinite ? min(100, max(0, percent)) : 0 }

    /// Used memory: 1 − MemAvailable / MemTotal.
    static func memoryPercent() -> Double {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return 0 }
        var total = 0.0
        var available = 0.0
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count >= 2, let value = Double(parts[1]) else { continue }
            if parts[0] == "MemTotal:" { total = value }
            if parts[0] == "MemAvailable:" { available = value }
        }
        return total > 0 ? (1 - available / total) * 100 : 0
    }

    /// Used space of the file system holding `path`.
    static func diskPercent(_ path: String) -> Double {
        var stats = statvfs()
        guard statvfs(path, &stats) == 0, stats.f_blocks > 0 else { return 0 }
        return (1 - Double(stats.f_bavail) / Double(stats.f_blocks)) * 100
    }
}

/// Whole-machine CPU times from /proc/stat.
struct CPUTimes {
    var busy: Double
    var total: Double

    static func read() -> CPUTimes {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
              let line = text.split(separator: "\n").first else { return CPUTimes(busy: 0, total: 0) }
        let values = line.split(separator: " ").dropFirst().compactMap { Double($0) }
        guard values.count >= 4 else { return CPUTimes(busy: 0, total: 0) }
        let idle = values[3] + (values.count > 4 ? values[4] : 0)
        let total = values.reduce(0, +)
        return CPUTimes(busy: total - idle, total: total)
    }

    static func busyPercent(from a: CPUTimes, to b: CPUTimes) -> Double {
        let total = b.total - a.total
        return total > 0 ? (b.busy - a.busy) / total * 100 : 0
    }
}
