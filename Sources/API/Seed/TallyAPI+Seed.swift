import EventLog
import Foundation
import Hummingbird
import Projections

/// The `/api/v1/simple/` compatibility paths in the seed backend's envelope (`SeedEnvelope`).
/// A stale view is still a success; a view never built answers the seed's fallback with
/// 503 and Retry-After, as the native paths' `view_not_ready` does: a browser's `fetch` reads
/// the body of a 503 like any other, so `if (!data.success)` works, while proxies, monitors
/// and retrying clients see what a 503 means. Errors of the request itself (token, role,
/// query) stay problem+json, as on every path.
extension TallyAPI {
    @Sendable func seedStats(_ request: Request, context: TallyRequestContext) async throws -> Response {
        _ = try context.require(.user, .admin)
        switch try await seedView(hub.stats, request) {
        case .read(let read):
            let system = systemStatus(componentHealth(read.view.health.latest))
            return try JSONResponse.view(SeedEnvelope.stats(read.view, system: system), read)
        case .notBuilt(let error, let freshness):
            return try Self.seedFallback(SeedEnvelope.statsFallback(error: error.message, code: error.code.rawValue, freshness: FreshnessBody(freshness)),
                                         freshness: freshness)
        }
    }

    @Sendable func seedUnlocked(_ request: Request, context: TallyRequestContext) async throws -> Response {
        let identity = try context.require(.user)
        let limit = try Self.intQuery(request, "limit", default: 20, in: 1...100)
        let cursor = request.uri.queryParameters.get("cursor")
        if let cursor, (LogPosition(cursor) ?? 0) == 0 {
            throw APIError.invalid("cursor", "must be a previous page's next_cursor (a log position)")
        }
        switch try await seedView(hub.unlocked, request) {
        case .read(let read):
            let page = read.view.unlocked(user: identity.subject, limit: limit, cursor: cursor)
            let bytes = SeedEnvelope.unlocked(page: UnlockedPageBody.json(page), count: page.profiles.count)
            return JSONResponse.view(encoded: bytes, freshness: read.freshness, stale: read.stale)
        case .notBuilt(let error, let freshness):
            return try Self.seedFallback(SeedEnvelope.unlockedFallback(error: error.message, code: error.code.rawValue, freshness: FreshnessBody(freshness)),
                                         freshness: freshness)
        }
    }

    enum SeedRead<View: Sendable> {
        case read(ViewRead<View>)
        /// The view was never built: the refusal the native path answers, and the progress.
        case notBuilt(APIError, Freshness)
    }

    func seedView<P: Projection>(_ runner: ProjectionRunner<P, Store>, _ request: Request) async throws -> SeedRead<P.View> {
        do {
            return .read(try await view(runner, request))
        } catch let error as APIError where error.code == .viewNotReady {
            let head = error.head ?? 0
            let freshness = Freshness(position: 0, positionRecordedAt: nil, head: head, headRecordedAt: nil, state: error.viewState ?? .catchingUp)
            return .notBuilt(error, freshness)
        }
    }

    /// 503 with Retry-After and the freshness headers, in the seed's JSON envelope.
    static func seedFallback(_ body: some Encodable, freshness: Freshness) throws -> Response {
        var response = try JSONResponse.make(body, status: .serviceUnavailable, freshness: freshness)
        response.headers[.retryAfter] = "1"
        return response
    }
}
