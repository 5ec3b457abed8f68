import EventLog
import Events
import OpenAPIKit

/// The document from the table: each entry's parameters, request body, success response
/// and the error responses its kind of route can give, all as problem documents.
extension OpenAPIDocument {
    static var document: OpenAPI.Document {
        var paths: OpenAPI.PathItem.Map = [:]
        for op in operations {
            let path = OpenAPI.Path(rawValue: op.path)
            var item = paths[path]?.pathItemValue ?? OpenAPI.PathItem()
            switch op.method {
            case "GET": item.get = operation(op)
            case "POST": item.post = operation(op)
            case "PUT": item.put = operation(op)
            case "DELETE": item.delete = operation(op)
            default: item.patch = operation(op)
            }
            paths[path] = .b(item)
        }
        return OpenAPI.Document(
            openAPIVersion: .v3_1_0,
            info: .init(title: "Tally", description: """
                Event-sourced analytics core of a creator-analytics backend. Every route but /api/health, /metrics and \
                /openapi.json needs `Authorization: Bearer <JWT>` whose `role` claim is one of the route's `x-roles` \
                (user, service, admin, auditor); a missing or invalid token is 401, another role is 403.
                """, version: "1"),
            servers: [],
            paths: paths,
            components: .init(schemas: Schemas.components, securitySchemes: [
                "bearer": .b(.http(scheme: "bearer", bearerFormat: "JWT",
                                   description: "An HS256/RS256 JWT with `sub` and `role` (user, service, admin, auditor); `tally-server token` makes one.")),
            ])
        )
    }

    static func operation(_ op: Operation) -> OpenAPI.Operation {
        let roles = op.roles.map(\.rawValue)
        return OpenAPI.Operation(
            summary: op.summary,
            description: roles.isEmpty ? "Public: no token." : "Roles: " + roles.joined(separator: ", ") + ".",
            parameters: parameters(op),
            requestBody: op.body.map { .init(content: [.json: .b(OpenAPI.Content(schema: $0))], required: op.bodyRequired) },
            responses: responses(op),
            security: roles.isEmpty ? [] : [[.component(named: "bearer"): []]],
            vendorExtensions: ["x-roles": AnyCodable(roles)]
        )
    }

    static func parameters(_ op: Operation) -> OpenAPI.Parameter.Array {
        var parameters: OpenAPI.Parameter.Array = []
        for name in pathParameters(op.path) {
            let schema: JSONSchema = name == "username"
                ? .string(minLength: 1, maxLength: FieldRules.maxUsernameLength, pattern: "^[A-Za-z0-9._]+$")
                : .string(minLength: 1)
            parameters.append(.b(.init(name: name, context: .path(schema: schema))))
        }
        for query in op.query {
            parameters.append(.b(.init(name: query.name, context: .query(schema: query.schema), description: query.description)))
        }
        if op.view {
            parameters.append(.b(.init(name: "Tally-After", context: .header(schema: Schemas.position),
                                       description: "Wait (bounded) until the view has folded this position, e.g. a write's `position`.")))
        }
        parameters.append(contentsOf: requestIDParameters)
        if op.idempotent {
            parameters.append(.b(.init(name: "Idempotency-Key", context: .header(schema: .string(minLength: 1, maxLength: EventLimits.maxIdempotencyKeyBytes,
                                                                                              pattern: "^[!-~]+$")),
                                       description: "A retry with the same key and request answers the first result with `replayed: true`.")))
        }
        return parameters
    }

    /// Every route reads the ids `RequestIDs` describes: the request id only when usable,
    /// the two recorded on events refused when present and not usable.
    static let requestIDParameters: OpenAPI.Parameter.Array = {
        let id = JSONSchema.string(minLength: 1, maxLength: RequestIDs.maxBytes, pattern: "^[!-~]+$")
        return [
            .b(.init(name: "X-Request-Id", context: .header(schema: id),
                     description: "The request id the logs and `Request-Id` carry; a value that is not 1...64 visible ASCII characters is ignored and the server makes one.")),
            .b(.init(name: "X-Correlation-Id", context: .header(schema: id),
                     description: "Recorded on the events a command writes (else the request id is) and echoed; not 1...64 visible ASCII characters is a 400.")),
            .b(.init(name: "X-Causation-Id", context: .header(schema: id),
                     description: "Recorded on the events a command writes; not 1...64 visible ASCII characters is a 400.")),
        ]
    }()

    static func pathParameters(_ path: String) -> [String] {
        path.split(separator: "/").compactMap { $0.hasPrefix("{") && $0.hasSuffix("}") ? String($0.dropFirst().dropLast()) : nil }
    }

    static func responses(_ op: Operation) -> OpenAPI.Response.Map {
        var responses: OpenAPI.Response.Map = [:]
        for status in op.success {
            var headers = requestIDHeader
            if op.view {
                headers["Tally-Position"] = .b(.init(schema: Schemas.position, description: "The view's position.", required: true))
                headers["Tally-Lag-Events"] = .b(.init(schema: Schemas.count, description: "Events the view is behind the head.", required: true))
            }
            let description = status == 201 ? "Written; the positions of the events."
                : op.success.count > 1 ? "A replay of an earlier request with the same Idempotency-Key: nothing new written."
                : op.view ? "The view with its `freshness` and `stale`." : "OK."
            responses[.status(code: status)] = .response(description: description, headers: headers,
                                                          content: [op.contentType: .b(OpenAPI.Content(schema: op.response))])
        }
        for status in errorStatuses(op) {
            let content: OpenAPI.Content.Map = if status == 503, let fallback = op.unavailable {
                [.json: .b(OpenAPI.Content(schema: fallback))]
            } else {
                [.problem: .b(OpenAPI.Content(schema: Schemas.ref("Problem")))]
            }
            responses[.status(code: status)] = .response(description: errorDescriptions[status] ?? "A problem document.",
                                                          headers: status == 503 || status == 409 ? requestIDAndRetryAfter : requestIDHeader,
                                                          content: content)
        }
        return responses
    }

    /// The refusals a route of this kind can give: every route checks the ids and the
    /// declared body length (400, 413) and may fail (500); a route with a token checks it
    /// (401, 403) and reads the store or a view (503); a body is checked for its type (415);
    /// a command may meet a concurrent write (409); an empty path parameter (or one holding a
    /// `/`) makes the path another one, which no route serves (404).
    static func errorStatuses(_ op: Operation) -> [Int] {
        var statuses: Set<Int> = [400, 413, 500]
        statuses.formUnion(op.errors)
        if !op.roles.isEmpty { statuses.formUnion([401, 403, 503]) }
        if op.body != nil { statuses.insert(415) }
        if op.idempotent { statuses.formUnion([409, 422]) }
        if !pathParameters(op.path).isEmpty { statuses.insert(404) }
        return statuses.sorted()
    }

    static let errorDescriptions: [Int: String] = [
        400: "Invalid input: a malformed body, parameter or header (`code` says which, `field` names it).",
        401: "No valid token (or, for /metrics, not TALLY_METRICS_TOKEN).",
        402: "Insufficient credits: `balance` and `cost` say by how much.",
        403: "The token's role may not call this route.",
        404: "No route has this path: a path parameter was empty or held a `/`.",
        409: "Another writer changed the stream and the bounded retries ran out; retry after `Retry-After` seconds.",
        422: "idempotency_key_reused: this caller used the Idempotency-Key on this route for a different request.",
        413: "The body is over the 1 MiB limit.",
        415: "The body is not declared as application/json.",
        500: "An internal error; the server logs it with the request id.",
        503: "The store is unavailable or the view is still being built; retry after `Retry-After` seconds.",
    ]

    static let requestIDHeader: OpenAPI.Header.Map = [
        "Request-Id": .b(.init(schema: .string(minLength: 1), description: "The request's id, as the server's log lines carry it: quote it when reporting a problem.", required: true)),
    ]

    static let requestIDAndRetryAfter: OpenAPI.Header.Map = [
        "Request-Id": requestIDHeader["Request-Id"]!,
        "Retry-After": .b(.init(schema: .integer(minimum: (0, exclusive: false)), description: "Seconds to wait before retrying.")),
    ]
}

extension OpenAPI.ContentType {
    static let problem = OpenAPI.ContentType(rawValue: "application/problem+json")!
}
