public import HTTPTypes
public import Hummingbird

/// Which browser origins may call the API and what their scripts may send and read. The
/// decision is a pure function of the request (`action(method:headers:)`), tested without
/// I/O; `CORSPolicyMiddleware` applies it. It sits outside the problem mapping, so it only
/// ever sees finished responses: a 402 stays a 402 and every status, problem documents
/// included, carries the same headers.
public struct CORSPolicy: Sendable, Hashable {
    public enum Origins: Sendable, Hashable {
        /// `*`: any origin (public data only; tokens still decide what is answered).
        case any
        /// Exactly these serialized origins (`https://app.example`, `http://localhost:3000`).
        case list(Set<String>)
    }

    public let origins: Origins

    /// Methods the API routes take.
    public static let allowedMethods: [HTTPRequest.Method] = [.get, .post]
    /// Request headers a browser script may send (beyond the CORS-safelisted ones).
    public static let allowedRequestHeaders: [HTTPField.Name] = [
        .authorization, .contentType, .idempotencyKey, .tallyAfter, .correlationID, .causationID, .clientRequestID,
    ]
    /// Response headers a browser script may read (beyond the CORS-safelisted ones).
    public static let exposedResponseHeaders: [HTTPField.Name] = [
        .tallyPosition, .tallyLagEvents, .retryAfter, .requestID, .correlationID,
    ]
    /// How long a browser may cache a preflight answer.
    public static let maxAgeSeconds = 600

    /// The policy for the configured origins (`["*"]` for any); nil for none: CORS off.
    public init?(origins configured: [String]) {
        if configured.isEmpty { return nil }
        origins = configured == ["*"] ? .any : .list(Set(configured))
    }

    /// What to do with a request.
    public enum Action: Sendable, Hashable {
        /// Run the route, then add these headers to whatever it answers.
        case forward(adding: HTTPFields)
        /// A preflight: answer 204 with these headers without running any route.
        case answerPreflight(HTTPFields)
    }

    public func action(method: HTTPRequest.Method, headers: HTTPFields) -> Action {
        var fields = HTTPFields()
        // A listed origin is echoed, so caches must key on Origin, for every response.
        if case .list = origins { fields[.vary] = "Origin" }
        let origin = headers[.origin]
        let allowed = origin.flatMap(allowOrigin)
        if method == .options, origin != nil, headers[.accessControlRequestMethod] != nil {
            if let allowed {
                fields[.accessControlAllowOrigin] = allowed
                fields[.accessControlAllowMethods] = Self.allowedMethods.map(\.rawValue).joined(separator: ", ")
                fields[.accessControlAllowHeaders] = Self.allowedRequestHeaders.map(\.rawName).joined(separator: ", ")
                fields[.accessControlMaxAge] = String(Self.maxAgeSeconds)
            }
            return .answerPreflight(fields)
        }
        if let allowed {
            fields[.accessControlAllowOrigin] = allowed
            fields[.accessControlExposeHeaders] = Self.exposedResponseHeaders.map(\.rawName).joined(separator: ", ")
        }
        return .forward(adding: fields)
    }

    /// The `Access-Control-Allow-Origin` value for a request from `origin`, or nil when the
    /// origin is not allowed (an opaque `null` origin never is).
    func allowOrigin(_ origin: String) -> String? {
        guard origin != "null" else { return nil }
        switch origins {
        case .any: return "*"
        case .list(let list): return list.contains(origin) ? origin : nil
        }
    }
}

/// Applies `CORSPolicy` to every request, including those no route matches.
struct CORSPolicyMiddleware: RouterMiddleware {
    typealias Context = TallyRequestContext
    let policy: CORSPolicy

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        switch policy.action(method: request.method, headers: request.headers) {
        case .answerPreflight(let fields):
            return Response(status: .noContent, headers: fields)
        case .forward(let fields):
            var response = try await next(request, context)
            response.headers.append(contentsOf: fields)
            return response
        }
    }
}
