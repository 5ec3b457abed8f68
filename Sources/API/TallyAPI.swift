public import Commands
public import EventLog
import Events
import Foundation
public import Hummingbird
import Logging
public import Projections

/// The HTTP API: commands go to the log through `CommandService`; reads answer from the
/// projected views with their freshness, never from the store's write path.
public struct TallyAPI<Store: EventStore>: Sendable {
    public let hub: ViewHub<Store>
    public let commands: CommandService<Store>
    public let authority: TokenAuthority
    /// Levels at which health gauges raise alerts.
    public let alertThresholds: AlertThresholds
    /// Origins allowed by CORS; empty: no CORS headers.
    public let corsOrigins: [String]
    public let metrics: TallyMetrics
    public let breaker: StoreBreaker
    /// A component whose last health sample is older than this is `stale`, not `ok`.
    public let healthStaleAfter: Duration
    /// The request's clock, to age health samples at the edge.
    public let clock: WallClock
    let statsCache = EncodedViewCache()
    /// The Merkle tree index the audit proof routes answer from.
    let tree = AuditTree()
    /// Stats series being folded (`TallyAPI+Series.swift`).
    let seriesFolds = InFlightCounter(maximum: SeriesQuery.maximumConcurrentStatsFolds)
    /// Hourly latency summaries of the metrics series, reused while their histograms stay the same.
    let latencySummaries = LatencySummaryCache()
    /// Stats series rows, kept until an event recorded before their end is appended.
    let statsSeriesRows = StatsSeriesCache()
    /// The live stream's subscribers (`/api/v1/live`); `LivePublisher` feeds them.
    public let live: LiveFeed

    public init(hub: ViewHub<Store>, commands: CommandService<Store>, authority: TokenAuthority,
                alertThresholds: AlertThresholds = AlertThresholds(), corsOrigins: [String] = [], metrics: TallyMetrics = TallyMetrics(),
                breaker: StoreBreaker = StoreBreaker(), healthStaleAfter: Duration = .seconds(90), clock: WallClock = .system,
                live: LiveFeed = LiveFeed()) {
        self.live = live
        self.breaker = breaker
        self.healthStaleAfter = healthStaleAfter
        self.clock = clock
        self.hub = hub
        self.commands = commands
        self.authority = authority
        self.alertThresholds = alertThresholds
        self.corsOrigins = corsOrigins
        self.metrics = metrics
    }

    public func makeRouter() -> Router<TallyRequestContext> {
        let router = Router(context: TallyRequestContext.self)
        addMiddleware(to: router)
        router.get("/api/health") { _, _ in try JSONResponse.make(["status": "ok"]) }
        router.get("/openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.json())))
        }
        router.get("/metrics") { request, _ in
            if let token = metrics.token, request.headers[.authorization] != "Bearer " + token {
                throw AuthError(.unauthenticated, "/metrics needs Authorization: Bearer <TALLY_METRICS_TOKEN>")
            }
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(string: await metrics.render(hub, breaker: breaker.current, droppedTransitions: breaker.droppedTransitions,
                                                                                                 pendingTransitions: breaker.pendingTransitions))))
        }
        let v1 = router.group("/api/v1")
        v1.post("creator/search/{username}", use: search)
        v1.post("creator/unlock/{username}", use: unlock)
        v1.get("creator/unlocked", use: unlocked)
        v1.get("simple/creator/unlocked", use: seedUnlocked)
        v1.get("credits/balance", use: balance)
        v1.post("credits/grant", use: grant)
        v1.get("system/stats", use: stats)
        v1.get("simple/creator/system/stats", use: seedStats)
        v1.post("events/profiles") { request, context in try await report(request, context, accepting: [.profileRefreshed]) }
        v1.post("events/analysis") { request, context in
            try await report(request, context, accepting: [.postAnalysisCompleted, .postAnalysisFailed])
        }
        v1.post("events/cdn") { request, context in
            try await report(request, context, accepting: [.cdnJobQueued, .cdnJobSucceeded, .cdnJobFailed])
        }
        v1.post("events/health") { request, context in
            try await report(request, context, accepting: [.healthSampled, .circuitBreakerChanged])
        }
        v1.post("system/recovery/database", use: recoverStore)
        addOperationRoutes(to: v1)
        addMonitoringRoutes(to: v1)
        addSeriesRoutes(to: v1)
        addLiveRoutes(to: v1)
        addDashboardRoutes(to: router)
        return router
    }

    // MARK: - Creator

    struct SearchRequest: Decodable {
        var servedFrom: ServedFrom?
        var durationMs: Int?
        var found: Bool?
        enum CodingKeys: String, CodingKey { case servedFrom = "served_from", durationMs = "duration_ms", found }
    }

    @Sendable func search(_ request: Request, context: TallyRequestContext) async throws -> Response {
        let identity = try context.require(.user)
        let username = try FieldRules.username(try context.parameters.require("username"))
        let body = try await Self.optionalBody(request, context, as: SearchRequest.self, keys: ["served_from", "duration_ms", "found"],
                                               wholeNumbers: ["duration_ms"])
        // Answering needs the view: refuse before writing when it was never built, or when
        // the wait asked for cannot be parsed.
        _ = try Self.tallyAfter(request)
        try await requireBuilt(hub.unlocked)
        let event = CreatorSearched(user: identity.subject, username: username, servedFrom: body?.servedFrom ?? .fresh,
                                    durationMs: body?.durationMs ?? 0, found: body?.found ?? true)
        let written = try await command {
            try await commands.recordSearch(event, context: Self.commandContext(request, context, identity), idempotencyKey: try Self.idempotencyKey(request))
        }
        let read = try await view(hub.unlocked, request, after: written.positions.upperBound)
        let content = SearchBody(username: username, position: written.positions.upperBound,
                                 unlocked: read.view.hasUnlocked(user: identity.subject, username: username), profile: read.view.profile(username),
                                 replayed: written.replayed)
        return try JSONResponse.view(content, read)
    }

    @_specialize(where Store == FileLog)
    @Sendable func unlock(_ request: Request, context: TallyRequestContext) async throws -> Response {
        let identity = try context.require(.user)
        let username = try context.parameters.require("username")
        let result = try await command {
            try await commands.unlock(user: identity.subject, username: username, context: Self.commandContext(request, context, identity),
                                      idempotencyKey: try Self.idempotencyKey(request))
        }
        return try JSONResponse.make(UnlockBody(result))
    }

    @_specialize(where Store == FileLog)
    @Sendable func unlocked(_ request: Request, context: TallyRequestContext) async throws -> Response {
        let identity = try context.require(.user)
        let limit = try Self.intQuery(request, "limit", default: 20, in: 1...100)
        let cursor = request.uri.queryParameters.get("cursor")
        // A cursor is a previous page's `next_cursor`, a log position; anything else would
        // silently restart at the first page.
        if let cursor, (LogPosition(cursor) ?? 0) == 0 {
            throw APIError.invalid("cursor", "must be a previous page's next_cursor (a log position)")
        }
        let read = try await view(hub.unlocked, request)
        let page = read.view.unlocked(user: identity.subject, limit: limit, cursor: cursor)
        return JSONResponse.view(encoded: UnlockedPageBody.json(page), freshness: read.freshness, stale: read.stale)
    }

    // MARK: - Credits

    /// From the unlocked-profiles view, like every read: it answers (marked stale) while the
    /// store is down; `Tally-After` with a grant's or an unlock's position waits for it.
    @Sendable func balance(_ request: Request, context: TallyRequestContext) async throws -> Response {
        let identity = try context.require(.user)
        let read = try await view(hub.unlocked, request)
        return try JSONResponse.view(BalanceBody(user: identity.subject, read.view.wallet(user: identity.subject)), read)
    }

    struct GrantRequest: Decodable {
        var user: String
        var amount: Int64
        var reason: String
    }

    @Sendable func grant(_ request: Request, context: TallyRequestContext) async throws -> Response {
        let identity = try context.require(.admin)
        guard let body = try await Self.optionalBody(request, context, as: GrantRequest.self, keys: ["user", "amount", "reason"],
                                                     wholeNumbers: ["amount"]) else {
            throw APIError.malformedBody("the body is empty; send {\"user\": …, \"amount\": …, \"reason\": …}")
        }
        let result = try await command {
            try await commands.grantCredits(user: body.user, amount: body.amount, reason: body.reason,
                                            context: Self.commandContext(request, context, identity), idempotencyKey: try Self.idempotencyKey(request))
        }
        return try JSONResponse.make(["position": Int64(result.position), "balance": result.balance])
    }

    // MARK: - System

    @Sendable func stats(_ request: Request, context: TallyRequestContext) async throws -> Response {
        _ = try context.require(.user, .admin)
        let read = try await view(hub.stats, request)
        let encoded = try statsCache.bytes(at: read.freshness.position) { Array(try JSONResponse.encoder.encode(read.view)) }
        return JSONResponse.view(encoded: encoded, freshness: read.freshness, stale: read.stale)
    }

    // MARK: - Worker reports

    /// `{"events": [{"type": T, "data": {…}}, …]}`: up to 1,000 items of the types this
    /// endpoint owns, written all together or not at all.
    func report(_ request: Request, _ context: TallyRequestContext, accepting types: Set<EventType>) async throws -> Response {
        let identity = try context.require(.service)
        try Self.requireJSON(request)
        let buffer = try await request.body.collect(upTo: context.maxUploadSize)
        let document = try JSONParser.parse(Array(buffer.readableBytesView), maxBytes: context.maxUploadSize)
        guard let object = document.objectValue, let items = object["events"]?.arrayValue, object.keys == ["events"] else {
            throw APIError.malformedBody("send {\"events\": [{\"type\": …, \"data\": {…}}, …]}")
        }
        guard items.count <= CommandService<Store>.maxBatchItems else {
            throw CommandError(.batchTooLarge, "the batch holds \(items.count) items; send at most \(CommandService<Store>.maxBatchItems) per request")
        }
        var events: [DomainEvent] = []
        for (index, item) in items.enumerated() {
            do {
                guard let entry = item.objectValue, let typeName = entry["type"]?.stringValue, let data = entry["data"] else {
                    throw DomainError(.invalidField, "each item needs \"type\" and \"data\"", field: "events")
                }
                guard let type = EventType(rawValue: typeName), types.contains(type) else {
                    throw DomainError(.unknownType, "type \(typeName) is not reported here; this endpoint takes \(types.map(\.rawValue).sorted().joined(separator: ", "))", field: "type")
                }
                events.append(try DomainEvent.parse(type: type, data: data))
            } catch let error as DomainError where error.code == .unknownType {
                throw APIError(.unknownType, "item \(index): \(error.message)", field: error.field, item: index, cause: error)
            } catch let error as DomainError {
                // The same refusal as a command's own check of the same field.
                throw CommandError.invalid(error, item: index)
            }
        }
        let commandContext = Self.commandContext(request, context, identity)
        let key = try Self.idempotencyKey(request)
        let parsed = events
        let result = try await command { try await record(parsed, types: types, context: commandContext, key: key) }
        let body = PositionsBody(position: result.positions.upperBound, positions: Array(result.positions), events: events.count, replayed: result.replayed)
        return try JSONResponse.make(body, status: result.replayed ? .ok : .created)
    }

    private func record(_ events: [DomainEvent], types: Set<EventType>, context commandContext: CommandContext, key: String?) async throws -> RecordResult {
        switch types.first! {
        case .profileRefreshed:
            return try await commands.recordProfileRefreshes(events.compactMap { if case .profileRefreshed(let e) = $0 { e } else { nil } },
                                                               context: commandContext, idempotencyKey: key)
        case .postAnalysisCompleted, .postAnalysisFailed:
            return try await commands.recordAnalysis(events.compactMap {
                switch $0 {
                case .postAnalysisCompleted(let e): .completed(e)
                case .postAnalysisFailed(let e): .failed(e)
                default: nil
                }
            }, context: commandContext, idempotencyKey: key)
        case .cdnJobQueued, .cdnJobSucceeded, .cdnJobFailed:
            return try await commands.recordCdn(events.compactMap {
                switch $0 {
                case .cdnJobQueued(let e): .queued(e)
                case .cdnJobSucceeded(let e): .succeeded(e)
                case .cdnJobFailed(let e): .failed(e)
                default: nil
                }
            }, context: commandContext, idempotencyKey: key)
        default:
            return try await commands.recordHealth(events.compactMap {
                switch $0 {
                case .healthSampled(let e): .sample(e)
                case .circuitBreakerChanged(let e): .breaker(e)
                default: nil
                }
            }, context: commandContext, idempotencyKey: key)
        }
    }

    /// Runs a command through the store's breaker, then writes the breaker transitions that
    /// the store could not take while it was failing (kept for the next command if that
    /// append fails; the batch's idempotency key makes a retry of a landed append a replay).
    func command<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await breaker.run(body) { transitions, key in
            (try? await commands.recordHealth(transitions.map { .breaker($0) }, context: CommandContext(actor: "service:tally-server"),
                                              idempotencyKey: key)) != nil
        }
    }

    @Sendable func recoverStore(_ request: Request, context: TallyRequestContext) async throws -> Response {
        let identity = try context.require(.admin)
        breaker.reset(reason: "operator \(identity.subject) asked to retry the store")
        return try JSONResponse.make(["breaker": breaker.current.rawValue])
    }

    // MARK: - Helpers

    /// The view, after waiting (bounded) for `Tally-After`; a view never built yet is a 503.
    @_specialize(where Store == FileLog, P == UnlockedProfilesProjection)
    @_specialize(where Store == FileLog, P == SystemStatsProjection)
    func view<P: Projection>(_ runner: ProjectionRunner<P, Store>, _ request: Request, after written: LogPosition? = nil) async throws -> ViewRead<P.View> {
        var after = written
        if let position = try Self.tallyAfter(request) { after = max(after ?? 0, position) }
        try await requireBuilt(runner)
        return await hub.read(runner, after: after)
    }

    /// The `Tally-After` position, if sent. Commands that answer from a view check it before
    /// they append: a refused request writes nothing.
    static func tallyAfter(_ request: Request) throws -> LogPosition? {
        guard let raw = request.headers[.tallyAfter] else { return nil }
        guard let position = LogPosition(raw) else {
            throw APIError.invalid("Tally-After", "must be a log position (a whole number)")
        }
        return position
    }

    /// A view never built yet (cold start, still catching up from position 0) is a 503 with
    /// the catch-up progress, not an empty answer.
    func requireBuilt<P: Projection>(_ runner: ProjectionRunner<P, Store>) async throws {
        let head = await hub.head()
        guard runner.current.position == 0, head > 0, runner.state != .live else { return }
        var error = APIError(.viewNotReady, "the \(P.name) view is still being built from the log; retry shortly")
        error.retryAfter = 1
        error.head = head
        error.viewState = runner.state
        throw error
    }

    /// A JSON object body decoded strictly: well-formed (bounded parser), only `keys`, every
    /// field of the right type, `wholeNumbers` written as integers (`1e2` or `100.0` is not
    /// one, though a decoder would round it); nil when the body is empty.
    static func optionalBody<T: Decodable>(_ request: Request, _ context: TallyRequestContext, as: T.Type, keys: Set<String>,
                                           wholeNumbers: Set<String> = []) async throws -> T? {
        let buffer = try await request.body.collect(upTo: context.maxUploadSize)
        guard buffer.readableBytes > 0 else { return nil }
        try requireJSON(request)
        let bytes = Array(buffer.readableBytesView)
        guard let object = try JSONParser.parse(bytes, maxBytes: context.maxUploadSize).objectValue else {
            throw APIError.malformedBody("the body must be a JSON object")
        }
        let unknown = object.keys.filter { !keys.contains($0) }
        guard unknown.isEmpty else {
            throw APIError.malformedBody("unknown field(s) \(unknown.sorted().joined(separator: ", ")); this endpoint takes \(keys.sorted().joined(separator: ", "))")
        }
        for key in wholeNumbers.sorted() {
            guard let value = object[key] else { continue }
            if case .integer = value { continue }
            throw APIError.invalid(key, "must be a whole number written without fraction or exponent")
        }
        return try JSONDecoder().decode(T.self, from: Data(bytes))
    }

    /// A body's declared type must be JSON: `application/json`, with parameters (a charset
    /// other than UTF-8 is refused too). A body without `Content-Type` is read as JSON, as
    /// most HTTP clients' JSON helpers send it; anything else is a 415 before it is parsed.
    static func requireJSON(_ request: Request) throws {
        guard let declared = request.headers[.contentType] else { return }
        let parts = declared.split(separator: ";", omittingEmptySubsequences: false)
        let media = parts[0].trimmingCharacters(in: .whitespaces).lowercased()
        let charsetOK = parts.dropFirst().allSatisfy { parameter in
            let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard pair.first == "charset" else { return true }
            return pair.count == 2 && ["utf-8", "\"utf-8\"", "utf8"].contains(pair[1])
        }
        guard media == "application/json", charsetOK else {
            throw APIError(.unsupportedMediaType, "the body is declared as \(declared.prefix(100)); send it as JSON with Content-Type: application/json")
        }
    }

    /// The `Idempotency-Key`, 1–128 visible ASCII characters. Anything else is refused rather
    /// than stored: a header in invalid UTF-8 reaches us with U+FFFD in place of its bytes, so
    /// two different keys would collide.
    static func idempotencyKey(_ request: Request) throws -> String? {
        guard let key = request.headers[.idempotencyKey] else { return nil }
        guard (1...EventLimits.maxIdempotencyKeyBytes).contains(key.utf8.count), key.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            throw APIError.invalid("Idempotency-Key", "must be 1–\(EventLimits.maxIdempotencyKeyBytes) visible ASCII characters (letters, digits, punctuation)")
        }
        return key
    }

    static func commandContext(_ request: Request, _ context: TallyRequestContext, _ identity: Identity) -> CommandContext {
        // ProblemMiddleware checked both ids; the request id stands in for a missing correlation id.
        CommandContext(actor: identity.actor, correlationID: context.correlationID ?? context.id, causationID: context.causationID ?? "")
    }

    static func intQuery(_ request: Request, _ name: String, default value: Int, in range: ClosedRange<Int>) throws -> Int {
        guard let raw = request.uri.queryParameters.get(name) else { return value }
        guard let parsed = Int(raw), range.contains(parsed) else {
            throw APIError.invalid(name, "must be a whole number in \(range.lowerBound)...\(range.upperBound)")
        }
        return parsed
    }
}
