import HTTPTypes
public import Hummingbird
import Logging

/// The request context of every Tally route: the caller's identity once authenticated.
public struct TallyRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Set by `AuthMiddleware`; nil on public routes.
    public var identity: Identity?
    /// `X-Correlation-Id` and `X-Causation-Id` as sent (checked by `ProblemMiddleware`);
    /// nil when absent. Commands record them on the events they write.
    public var correlationID: String?
    public var causationID: String?
    /// Bodies are bounded: larger ones get 413 before any parsing.
    public var maxUploadSize: Int { Self.maxBodyBytes }
    public static let maxBodyBytes = 1 << 20

    public init(source: Source) {
        coreContext = .init(source: source)
    }

    /// The caller, required to hold one of `roles`: 401 without a valid token, 403 with
    /// another role.
    public func require(_ roles: Role...) throws -> Identity {
        guard let identity else { throw AuthError(.unauthenticated, "send a bearer token: Authorization: Bearer <jwt>") }
        guard roles.contains(identity.role) else {
            throw AuthError(.forbidden, "the role \(identity.role.rawValue) may not do this; it needs \(roles.map(\.rawValue).joined(separator: " or "))")
        }
        return identity
    }
}

/// Reads `Authorization: Bearer …` when present. A present but invalid token is refused
/// at once (401); an absent one leaves the route to decide (public routes need none).
struct AuthMiddleware: RouterMiddleware {
    typealias Context = TallyRequestContext
    let authority: TokenAuthority

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        // /metrics has its own static token (TALLY_METRICS_TOKEN), not a JWT; liveness takes none.
        if request.uri.path != "/metrics", request.uri.path != "/api/health", let header = request.headers[.authorization] {
            guard header.hasPrefix("Bearer "), header.count > 7 else {
                throw AuthError(.unauthenticated, "the Authorization header must be `Bearer <jwt>`")
            }
            context.identity = try await authority.verify(String(header.dropFirst(7)))
        }
        return try await next(request, context)
    }
}

/// Turns every error into a problem response, and counts each command's outcome. It checks
/// the correlation and causation ids first, so a bad one is a 400 like any bad input.
struct ProblemMiddleware: RouterMiddleware {
    typealias Context = TallyRequestContext
    let metrics: TallyMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var problem: Problem?
        var response: Response
        do {
            // A body declared past the limit is refused before a byte of it is read, rather
            // than after waiting for (and counting) the body a client may never send.
            if let declared = request.headers[.contentLength], let length = UInt64(declared), length > UInt64(TallyRequestContext.maxBodyBytes) {
                throw APIError(.bodyTooLarge, "the body is declared as \(length) bytes, over the \(TallyRequestContext.maxBodyBytes)-byte limit; split it")
            }
            var context = context
            context.correlationID = try RequestIDs.recorded(request, .correlationID)
            context.causationID = try RequestIDs.recorded(request, .causationID)
            response = try await next(request, context)
        } catch {
            var mapped = Problem(error)
            if mapped.code == .internal {
                context.logger.error("request failed", metadata: ["error": "\(error)"])
            }
            // No route took it: a path that exists for other methods is a 405 with `Allow`.
            var allow: [String] = []
            if mapped.code == .notFound, let refusal = error as? HTTPError, refusal.status == .notFound {
                allow = OpenAPIDocument.methods(atPath: request.uri.path)
                if !allow.isEmpty {
                    mapped = Problem(.methodNotAllowed, detail: "\(request.method.rawValue) is not allowed on \(request.uri.path.prefix(200)); it takes \(allow.joined(separator: ", "))")
                }
            }
            problem = mapped
            response = try mapped.response()
            if !allow.isEmpty { response.headers[.allow] = allow.joined(separator: ", ") }
        }
        // Commands are the POST routes; a request no route took is no command.
        if request.method == .post, let route = context.endpointPath, route != "NotFound" {
            metrics.recordCommand(route: route, outcome: problem?.code.rawValue ?? "ok")
        }
        return response
    }
}
