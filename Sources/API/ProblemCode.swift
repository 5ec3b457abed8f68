public import Hummingbird

/// The closed vocabulary of problem responses: every `code` a client can see, each with
/// one HTTP status. Errors of every layer map onto it in `Problem.init(_:)`, so the same
/// fault has the same code on every route.
public struct ProblemCode: Sendable, Hashable, CustomStringConvertible {
    package enum Base: String, Sendable, CaseIterable {
        case malformedBody = "malformed_body"
        case invalidInput = "invalid_input"
        case unknownType = "unknown_type"
        case batchTooLarge = "batch_too_large"
        case bodyTooLarge = "body_too_large"
        case unsupportedMediaType = "unsupported_media_type"
        case unauthenticated
        case forbidden
        case notFound = "not_found"
        case methodNotAllowed = "method_not_allowed"
        case badRequest = "bad_request"
        case insufficientCredits = "insufficient_credits"
        case conflict
        case idempotencyKeyReused = "idempotency_key_reused"
        case storeUnavailable = "store_unavailable"
        case unreadableHistory = "unreadable_history"
        case viewNotReady = "view_not_ready"
        case busy
        case `internal`
    }

    package let base: Base
    private init(_ base: Base) { self.base = base }

    /// The body is not a JSON object of the endpoint's shape (not JSON, unknown members,
    /// no `events` array, empty where one is required). Send the documented shape. (400)
    public static let malformedBody = Self(.malformedBody)
    /// A field (body member, query parameter, header, path segment) is missing, of the wrong
    /// kind or out of its range; `field` names it, `item` the batch item. Fix it. (400)
    public static let invalidInput = Self(.invalidInput)
    /// A reported event type that this endpoint does not take. (400)
    public static let unknownType = Self(.unknownType)
    /// A batch of more items than one request takes. Split it. (400)
    public static let batchTooLarge = Self(.batchTooLarge)
    /// A body past the upload limit. Split it. (413)
    public static let bodyTooLarge = Self(.bodyTooLarge)
    /// A body sent with a `Content-Type` other than JSON. Send `application/json`. (415)
    public static let unsupportedMediaType = Self(.unsupportedMediaType)
    /// No, or a malformed, forged or expired token. (401)
    public static let unauthenticated = Self(.unauthenticated)
    /// The token's role may not do this. (403)
    public static let forbidden = Self(.forbidden)
    /// No such route. (404)
    public static let notFound = Self(.notFound)
    /// The route exists for another method. (405)
    public static let methodNotAllowed = Self(.methodNotAllowed)
    /// A request the HTTP layer refused before any route saw it. (400)
    public static let badRequest = Self(.badRequest)
    /// The balance is below the cost; grant credits first. (402)
    public static let insufficientCredits = Self(.insufficientCredits)
    /// Another writer (another server) kept moving the stream through every retry; nothing
    /// was written. Retry after Retry-After with the same Idempotency-Key. (409)
    public static let conflict = Self(.conflict)
    /// The Idempotency-Key was first used, by the same caller on the same route, for a
    /// different request (other path parameters or body); nothing was written. Use a new
    /// key for a new request. (422)
    public static let idempotencyKeyReused = Self(.idempotencyKeyReused)
    /// The store is failing or slow, or the breaker is open; nothing was written. Retry
    /// after Retry-After with the same Idempotency-Key. (503)
    public static let storeUnavailable = Self(.storeUnavailable)
    /// The wallet's history holds events this build cannot read; upgrade Tally. (503)
    public static let unreadableHistory = Self(.unreadableHistory)
    /// The view was never built yet; retry after Retry-After. (503)
    public static let viewNotReady = Self(.viewNotReady)
    /// The server failed; nothing internal is said. (500)
    /// The server already serves as many live streams, or folds as many series, as it takes
    /// at once. Retry after `Retry-After` seconds. (503)
    public static let busy = Self(.busy)
    public static let `internal` = Self(.internal)

    /// Every code, for tests and the OpenAPI document.
    public static var all: [ProblemCode] { Base.allCases.map(Self.init) }

    /// The stable string clients key on.
    public var rawValue: String { base.rawValue }
    public var description: String { rawValue }

    /// The one status of this code.
    public var status: HTTPResponse.Status {
        switch base {
        case .malformedBody, .invalidInput, .unknownType, .batchTooLarge, .badRequest: .badRequest
        case .bodyTooLarge: .contentTooLarge
        case .unsupportedMediaType: .unsupportedMediaType
        case .unauthenticated: .unauthorized
        case .forbidden: .forbidden
        case .notFound: .notFound
        case .methodNotAllowed: .methodNotAllowed
        case .insufficientCredits: .init(code: 402, reasonPhrase: "Payment Required")
        case .conflict: .conflict
        case .idempotencyKeyReused: .unprocessableContent
        case .storeUnavailable, .unreadableHistory, .viewNotReady, .busy: .serviceUnavailable
        case .internal: .internalServerError
        }
    }

    /// The problem's `title`: short, the same for every response of this code.
    public var title: String {
        switch base {
        case .malformedBody: "Malformed body"
        case .invalidInput: "Invalid input"
        case .unknownType: "Unknown event type"
        case .batchTooLarge: "Batch too large"
        case .bodyTooLarge: "Body too large"
        case .unsupportedMediaType: "Unsupported media type"
        case .unauthenticated: "Unauthorized"
        case .forbidden: "Forbidden"
        case .notFound: "Not found"
        case .methodNotAllowed: "Method not allowed"
        case .badRequest: "Bad request"
        case .insufficientCredits: "Insufficient credits"
        case .conflict: "Conflict"
        case .idempotencyKeyReused: "Idempotency key reused"
        case .storeUnavailable: "Store unavailable"
        case .unreadableHistory: "Unreadable history"
        case .viewNotReady: "View not ready"
        case .busy: "Busy"
        case .internal: "Internal error"
        }
    }
}
