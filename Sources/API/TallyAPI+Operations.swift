import Commands
import EventLog
import Events
import Foundation
import Hummingbird
import Projections

/// Operators' and auditors' routes: health, metrics reports, CDN figures, alerts, history.
extension TallyAPI {
    func addOperationRoutes(to v1: RouterGroup<TallyRequestContext>) {
        v1.get("system/health", use: systemHealth)
        v1.get("system/monitoring/performance", use: performance)
        v1.get("cdn/metrics", use: cdnMetrics)
        v1.get("cdn/queue/status", use: cdnQueue)
        v1.get("system/alerts", use: alerts)
        v1.get("audit/events", use: auditEvents)
        v1.get("audit/streams/{stream}", use: auditStream)
        v1.get("audit/digest", use: auditDigest)
        addProofRoutes(to: v1)
    }

    // MARK: - Admin

    struct ProjectionHealth: Encodable {
        var name: String
        var freshness: FreshnessBody
    }

    struct DigestBody: Encodable {
        var position: LogPosition
        var chainHash: String
        var treeSize: UInt64
        var rootHash: String
        enum CodingKeys: String, CodingKey { case position, chainHash = "chain_hash", treeSize = "tree_size", rootHash = "root_hash" }
    }

    struct StoreHealth: Encodable {
        var kind: String
        var reachable: Bool
        var breaker: String
        var headPosition: LogPosition
        var chainHash: String?
        enum CodingKeys: String, CodingKey { case kind, reachable, breaker, headPosition = "head_position", chainHash = "chain_hash" }
    }

    struct SystemHealthBody: Encodable {
        var store: StoreHealth
        var projections: [ProjectionHealth]
        var components: [String: ComponentHealthBody]
        var system: SystemStatusBody
    }

    @Sendable func systemHealth(_ request: Request, context: TallyRequestContext) async throws -> Response {
        _ = try context.require(.admin)
        let stats = await hub.read(hub.stats, after: nil)
        let unlocked = await hub.read(hub.unlocked, after: nil)
        let metrics = await hub.read(hub.metrics, after: nil)
        // The store is asked with a deadline: a slow or failing store is reported, not waited on.
        let head = try? await withDeadline(.seconds(1)) { try await hub.store.head() }
        let components = componentHealth(stats.view.health.latest)
        let body = SystemHealthBody(
            store: StoreHealth(kind: String(describing: Store.self), reachable: head != nil, breaker: breaker.current.rawValue,
                               headPosition: head?.position ?? hub.knownHead, chainHash: head?.chainHashHex),
            projections: [
                ProjectionHealth(name: SystemStatsProjection.name, freshness: FreshnessBody(stats.freshness)),
                ProjectionHealth(name: UnlockedProfilesProjection.name, freshness: FreshnessBody(unlocked.freshness)),
                ProjectionHealth(name: MetricsProjection.name, freshness: FreshnessBody(metrics.freshness)),
            ],
            components: components,
            system: systemStatus(components)
        )
        return try JSONResponse.make(body)
    }

    struct PerformanceBody: Encodable {
        var hours: Int
        var totals: MetricsBucket
        var buckets: [MetricsBucket]
        var latencyMs: [String: LatencySummary]
        var gauges: [String: HealthGauge]
        var breakerTransitions: [BreakerTransition]
        enum CodingKeys: String, CodingKey {
            case hours, totals, buckets, latencyMs = "latency_ms", gauges, breakerTransitions = "breaker_transitions"
        }
    }

    @Sendable func performance(_ request: Request, context: TallyRequestContext) async throws -> Response {
        _ = try context.require(.admin)
        let hours = try Self.intQuery(request, "hours", default: 24, in: 1...720)
        let read = try await view(hub.metrics, request)
        let m = read.view
        var latency: [String: LatencySummary] = [:]
        for kind in LatencyKind.allCases { latency["\(kind)"] = m.latency(kind, lastHours: hours) }
        let body = PerformanceBody(hours: hours, totals: m.totals(lastHours: hours), buckets: m.hourBuckets(last: hours), latencyMs: latency,
                                   gauges: m.gauges, breakerTransitions: m.transitions)
        return try JSONResponse.view(body, read)
    }

    @Sendable func cdnMetrics(_ request: Request, context: TallyRequestContext) async throws -> Response {
        _ = try context.require(.admin)
        let read = try await view(hub.stats, request)
        return try JSONResponse.view(read.view.cdn, read)
    }

    struct QueueBody: Encodable {
        struct Priority: Encodable {
            var queued: Int64
            var finished: Int64
            var pending: Int64
        }
        var byPriority: [String: Priority]
        var pending: Int64
        enum CodingKeys: String, CodingKey { case byPriority = "by_priority", pending }
    }

    /// Jobs queued and not yet finished (succeeded, or failed without retry counting as
    /// finished), by priority, from the event counts.
    @Sendable func cdnQueue(_ request: Request, context: TallyRequestContext) async throws -> Response {
        _ = try context.require(.admin)
        let read = try await view(hub.stats, request)
        var byPriority: [String: QueueBody.Priority] = [:]
        var pending: Int64 = 0
        for (name, counts) in read.view.cdn.byPriority {
            let finished = counts.succeeded + counts.failed
            let open = max(0, counts.queued - finished)
            byPriority[name] = QueueBody.Priority(queued: counts.queued, finished: finished, pending: open)
            pending += open
        }
        let body = QueueBody(byPriority: byPriority, pending: pending)
        return try JSONResponse.view(body, read)
    }

    @Sendable func alerts(_ request: Request, context: TallyRequestContext) async throws -> Response {
        _ = try context.require(.admin)
        let read = try await view(hub.metrics, request)
        let body = ["alerts": alertsWithStaleness(read.view)]
        return try JSONResponse.view(body, read)
    }

    // MARK: - Audit

    /// History as `replay inspect` shows it, a page at a time: `next_from_position` continues;
    /// with `stream=`, the stream's history by version, `next_from_version` continues.
    @Sendable func auditEvents(_ request: Request, context: TallyRequestContext) async throws -> Response {
        _ = try context.require(.auditor)
        let query = request.uri.queryParameters
        let limit = try Self.intQuery(request, "limit", default: 100, in: 1...1_000)
        let from = LogPosition(try Self.intQuery(request, "from_position", default: 1, in: 1...Int.max))
        let since = try query.get("since").map { try EventTime.parseISO8601($0, field: "since") }
        let until = try query.get("until").map { try EventTime.parseISO8601($0, field: "until") }
        let types = try query.get("type").map { type in
            // A filter by a type no event can have would answer "none" for a typo.
            guard EventType(rawValue: type) != nil else {
                throw APIError.invalid("type", "must be an event type: \(EventType.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return Set([type])
        }
        let fromVersion = try query.get("from_version").map { _ in UInt64(try Self.intQuery(request, "from_version", default: 0, in: 0...Int.max)) }
        if let stream = query.get("stream") {
            // Paged by stream version: the filters apply within each page of `limit` events
            // of the stream, so a page may keep fewer (even none) while `next_from_version`
            // still moves on; null only once the stream is read to its end.
            return try await streamPage(stream, fromVersion: fromVersion ?? 0, limit: limit, keep: { event in
                event.position >= from && since.map { event.recordedAt >= $0 } ?? true && until.map { event.recordedAt < $0 } ?? true
                    && types.map { $0.contains(event.type) } ?? true
            })
        }
        if fromVersion != nil {
            throw APIError.invalid("from_version", "pages a stream: send it with stream=, or page the whole log with from_position")
        }
        var lines: [String] = []
        var next: LogPosition?
        for try await event in hub.store.read(from: from, filter: EventFilter(types: types, since: since, until: until)) {
            if lines.count == limit {
                next = event.position
                break
            }
            lines.append(Self.auditLine(event))
        }
        return Self.eventsResponse(lines, next: next)
    }

    @Sendable func auditStream(_ request: Request, context: TallyRequestContext) async throws -> Response {
        _ = try context.require(.auditor)
        let stream = try context.parameters.require("stream")
        let limit = try Self.intQuery(request, "limit", default: 100, in: 1...1_000)
        let fromVersion = try Self.intQuery(request, "from_version", default: 0, in: 0...Int.max)
        return try await streamPage(stream, fromVersion: UInt64(fromVersion), limit: limit, keep: { _ in true })
    }

    @Sendable func auditDigest(_ request: Request, context: TallyRequestContext) async throws -> Response {
        _ = try context.require(.auditor)
        let head = try await hub.store.head()
        let tree = try await treeHead(size: head.position)
        return try JSONResponse.make(DigestBody(position: head.position, chainHash: head.chainHashHex, treeSize: tree.size, rootHash: tree.root.hex))
    }

    private func streamPage(_ stream: String, fromVersion: UInt64, limit: Int, keep: (RecordedEvent) -> Bool) async throws -> Response {
        let events = try await hub.store.readStream(stream, fromVersion: fromVersion, limit: limit + 1)
        let kept = events.prefix(limit).filter(keep)
        let next = events.count > limit ? events[limit].streamVersion : nil
        return Self.eventsResponse(kept.map(Self.auditLine), next: next, nextKey: "next_from_version")
    }

    /// `{"events": [...], "<nextKey>": n | null}` from lines `EventLine` rendered.
    static func eventsResponse(_ lines: [String], next: UInt64?, nextKey: String = "next_from_position") -> Response {
        let text = "{\"events\":[" + lines.joined(separator: ",") + "],\"" + nextKey + "\":" + (next.map(String.init) ?? "null") + "}"
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
