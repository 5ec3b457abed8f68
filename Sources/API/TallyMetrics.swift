import EventLog
import Events
import Hummingbird
public import Prometheus
import Projections
import Synchronization

/// `/metrics` in the Prometheus text format, following its conventions: a `# HELP` and
/// `# TYPE` line for every family, running totals as `_total` counters, durations as
/// `_seconds` histograms, sizes in `_bytes`, `_info` gauges at 1 for facts.
///
/// Two kinds of figure, both in one `PrometheusCollectorRegistry` (swift-prometheus does
/// the formatting): request figures recorded as requests finish (`RequestMetricsMiddleware`,
/// `ProblemMiddleware`), and figures read at scrape time from the store, the views, the
/// breaker and `/proc`. swift-prometheus has no collectors, so a total read at scrape time
/// is added to its counter as the increase since the last scrape. Every family is listed in
/// docs/metrics.md (a test checks both ways).
public final class TallyMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    /// When set, `/metrics` requires `Authorization: Bearer <token>` (env TALLY_METRICS_TOKEN).
    public let token: String?
    /// `tally_build_info{version=…}`.
    public static let version = "0.1.0"

    let requestsInFlight: Gauge
    private let requestSeries = Mutex<[RequestSeries.Key: RequestSeries]>([:])
    /// What each scrape-time counter was last raised to, and the syncs already observed.
    private let scrapeState = Mutex(ScrapeState())

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(), token: String? = nil) {
        self.registry = registry
        self.token = token
        requestsInFlight = registry.makeGauge(descriptor: Self.family("tally_http_requests_in_flight", "HTTP requests being answered now."))
    }

    // MARK: - Recorded as requests finish

    /// The counter and duration histogram of one route, method and final status.
    final class RequestSeries: Sendable {
        struct Key: Hashable, Sendable {
            var route: String
            var method: HTTPRequest.Method
            var status: Int
        }
        let requests: Counter
        let duration: DurationHistogram

        init(_ key: Key, registry: PrometheusCollectorRegistry) {
            let labels = [("method", key.method.rawValue), ("route", key.route), ("status", String(key.status))]
            requests = registry.makeCounter(
                descriptor: TallyMetrics.family("tally_http_requests_total", "HTTP requests answered, by method, route template and final status."),
                labels: labels)
            duration = registry.makeDurationHistogram(
                descriptor: TallyMetrics.family("tally_http_request_duration_seconds", "Time from receiving an HTTP request to having its response."),
                labels: labels, buckets: TallyMetrics.requestBuckets)
        }
    }

    static let requestBuckets: [Duration] = [
        .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2_500), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
        .microseconds(2_500_000), .seconds(5), .seconds(10),
    ]

    static let syncBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2_500), .milliseconds(5),
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .microseconds(2_500_000),
    ]

    func series(route: String, method: HTTPRequest.Method, status: Int) -> RequestSeries {
        let key = RequestSeries.Key(route: route, method: method, status: status)
        return requestSeries.withLock { cache in
            if let series = cache[key] { return series }
            let series = RequestSeries(key, registry: registry)
            cache[key] = series
            return series
        }
    }

    /// One command's outcome: `ok`, or the problem code it was refused with.
    func recordCommand(route: String, outcome: String) {
        registry.makeCounter(
            descriptor: Self.family("tally_command_outcomes_total", "Commands (POST routes) by route and outcome: ok, or the problem code of the refusal."),
            labels: [("route", route), ("outcome", outcome)]).increment()
    }

    // MARK: - Read at scrape time

    struct ScrapeState: Sendable {
        var totals: [String: Int] = [:]
        var cpuSeconds = 0.0
        var observedSyncs = 0
        var unobservedSyncs = 0
    }

    struct ProjectionFigures {
        var name: String
        var freshness: Freshness
    }

    /// `droppedTransitions` and `pendingTransitions`: the breaker's queue of transitions not
    /// yet written (`StoreBreaker`).
    func render<Store: EventStore>(_ hub: ViewHub<Store>, breaker: BreakerState, droppedTransitions: Int = 0, pendingTransitions: Int = 0) async -> String {
        let projections = [
            ProjectionFigures(name: SystemStatsProjection.name, freshness: await hub.read(hub.stats, after: nil).freshness),
            ProjectionFigures(name: UnlockedProfilesProjection.name, freshness: await hub.read(hub.unlocked, after: nil).freshness),
            ProjectionFigures(name: MetricsProjection.name, freshness: await hub.read(hub.metrics, after: nil).freshness),
        ]
        let head = max(hub.knownHead, projections.map(\.freshness.head).max() ?? 0)
        let statistics = hub.store.statistics()
        let process = ProcessFigures.current()
        return scrapeState.withLock { state in
            gauge("tally_build_info", "The version of tally-server: always 1.", labels: [("version", Self.version)]).set(to: 1.0)
            gauge("tally_log_head_position", "The last position of the event log this server knows.").set(to: Double(head))
            renderStore(statistics, &state)
            renderProjections(projections)
            for candidate in BreakerState.allCases {
                gauge("tally_breaker_state", "The store's circuit breaker for commands: 1 for its current state, 0 for the others.",
                      labels: [("state", candidate.rawValue)]).set(to: candidate == breaker ? 1 : 0)
            }
            gauge("tally_breaker_transitions_pending", "Breaker transitions waiting to be written to the log (kept until an append of them succeeds).")
                .set(to: Double(pendingTransitions))
            total("tally_breaker_transitions_dropped_total", "Breaker transitions dropped unwritten because the queue of pending ones was full.",
                  droppedTransitions, &state)
            if let process { renderProcess(process, &state) }
            return registry.emitToString()
        }
    }

    /// A family's name and help, as swift-prometheus takes them.
    static func family(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    private func gauge(_ name: String, _ help: String, labels: [(String, String)] = []) -> Gauge {
        labels.isEmpty ? registry.makeGauge(descriptor: Self.family(name, help))
            : registry.makeGauge(descriptor: Self.family(name, help), labels: labels)
    }

    /// Raises the counter `name` to `value`, a total the process has counted since it
    /// started (a smaller value than last time means a new count: the counter restarts).
    private func total(_ name: String, _ help: String, _ value: Int, _ state: inout ScrapeState) {
        let counter = registry.makeCounter(descriptor: Self.family(name, help))
        let last = state.totals[name] ?? 0
        if value >= last {
            counter.increment(by: Int64(value - last))
        } else {
            counter.reset()
            counter.increment(by: Int64(max(0, value)))
        }
        state.totals[name] = value
    }

    /// The store's writer figures, named with the backend's words (`batches` and `fsync`
    /// for the embedded log, `transactions` and `commit` for PostgreSQL).
    private func renderStore(_ statistics: StoreStatistics, _ state: inout ScrapeState) {
        let names = statistics.names
        gauge("tally_log_backend_info", "The event log's backend (file or postgres): always 1.", labels: [("backend", names.backend)]).set(to: 1.0)
        total("tally_log_\(names.commits)_total", "Group commits (\(names.commits)) the log's writer wrote in this process.", statistics.commits, &state)
        total("tally_log_failed_\(names.commits)_total", "Group commits (\(names.commits)) that failed; nothing in them was acknowledged.",
              statistics.failedCommits, &state)
        total("tally_log_events_total", "Events the log's writer wrote in this process (idempotent repeats not counted).", statistics.events, &state)
        total("tally_log_\(names.sync)s_total", "Durable syncs (\(names.sync)) the log's writer made in this process.", statistics.syncs, &state)
        total("tally_log_reconnects_total", "Connections to the store made after the first.", statistics.reconnects, &state)
        total("tally_log_seal_failures_total", "Full segments the writer could not seal (it keeps appending to the active one).",
              statistics.sealFailures, &state)
        if let bytes = statistics.bytesStored {
            gauge("tally_log_size_bytes", "Bytes the event log occupies.").set(to: Double(bytes))
        }
        observeSyncs(statistics, &state)
    }

    /// Feeds the sync histogram with the syncs made since the last scrape. The writer keeps
    /// only its most recent sync durations (65,536 for the file log, 4,096 for PostgreSQL):
    /// syncs that left that window between two scrapes are counted in
    /// `..._unobserved_total` instead of the histogram.
    private func observeSyncs(_ statistics: StoreStatistics, _ state: inout ScrapeState) {
        let sync = statistics.names.sync
        let histogram = registry.makeDurationHistogram(
            descriptor: Self.family("tally_log_\(sync)_duration_seconds", "Duration of each durable sync (\(sync)) of the log's writer."),
            buckets: Self.syncBuckets)
        let recent = statistics.recentSyncNanoseconds
        let new = max(0, statistics.syncs - state.observedSyncs)
        let observable = min(new, recent.count)
        for nanoseconds in recent.suffix(observable) {
            histogram.record(.nanoseconds(Int64(clamping: nanoseconds)))
        }
        state.observedSyncs = max(state.observedSyncs, statistics.syncs)
        state.unobservedSyncs += new - observable
        total("tally_log_\(sync)_unobserved_total",
              "Durable syncs (\(sync)) that left the writer's window of recent durations before a scrape saw them; not in the histogram.",
              state.unobservedSyncs, &state)
    }

    private func renderProjections(_ projections: [ProjectionFigures]) {
        for projection in projections {
            let labels = [("projection", projection.name)]
            let freshness = projection.freshness
            gauge("tally_projection_position", "The last log position the view has folded.", labels: labels).set(to: Double(freshness.position))
            gauge("tally_projection_lag_events", "Events between the view's position and the log's head.", labels: labels)
                .set(to: Double(freshness.lagEvents))
            gauge("tally_projection_lag_seconds",
                  "Event time between the view's last event and the head's (+Inf: the view has folded nothing yet).", labels: labels)
                .set(to: freshness.lagSeconds)
            for candidate in [ProjectionState.live, .catchingUp, .rebuilding, .storeUnavailable] {
                gauge("tally_projection_state", "The view's state: 1 for its current one, 0 for the others.",
                      labels: [("projection", projection.name), ("state", candidate.rawValue)]).set(to: candidate == freshness.state ? 1 : 0)
            }
        }
    }

    private func renderProcess(_ process: ProcessFigures, _ state: inout ScrapeState) {
        gauge("process_resident_memory_bytes", "Resident memory size in bytes.").set(to: process.residentBytes)
        gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.").set(to: process.virtualBytes)
        gauge("process_start_time_seconds", "Start time of the process since the Unix epoch, in seconds.").set(to: process.startTimeSeconds)
        if let open = process.openFileDescriptors { gauge("process_open_fds", "Open file descriptors.").set(to: open) }
        if let max = process.maxFileDescriptors { gauge("process_max_fds", "The limit of open file descriptors.").set(to: max) }
        let cpu = registry.makeCounter(descriptor: Self.family("process_cpu_seconds_total", "User and system CPU time the process has spent, in seconds."))
        if process.cpuSeconds > state.cpuSeconds {
            cpu.increment(by: process.cpuSeconds - state.cpuSeconds)
            state.cpuSeconds = process.cpuSeconds
        }
    }
}

/// Counts and times every request by its final status: it wraps the CORS and problem
/// middlewares, so it sees the response a client gets (a 402 is `status="402"`).
struct RequestMetricsMiddleware: RouterMiddleware {
    typealias Context = TallyRequestContext
    let metrics: TallyMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let inFlight = metrics.requestsInFlight
        inFlight.increment()
        let response: Response
        do {
            response = try await next(request, context)
        } catch {
            // Only reached if a middleware outside the problem mapping throws.
            metrics.series(route: Self.route(context), method: request.method, status: 500).requests.increment()
            inFlight.decrement()
            throw error
        }
        // Bodies are buffered, so the response is complete here; writing it is not timed.
        let series = metrics.series(route: Self.route(context), method: request.method, status: Int(response.status.code))
        series.requests.increment()
        series.duration.record(start.duration(to: .now))
        inFlight.decrement()
        return response
    }

    /// The route template; the router names requests no route took `NotFound`, and only
    /// preflights (answered by the CORS layer before routing) have none.
    static func route(_ context: Context) -> String {
        context.endpointPath ?? "CORSPreflight"
    }
}
