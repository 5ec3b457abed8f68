import Commands
import EventLog
import Events
import Hummingbird
import NIOHTTP1
import Projections

/// The one mapping from errors to problem responses: every error a handler or middleware
/// throws, of whichever layer, becomes a code of `ProblemCode` (and so its one status) here
/// and nowhere else. Unknown errors become a 500 that says nothing internal.
extension Problem {
    public init(_ error: any Error) {
        switch error {
        case let error as APIError: self.init(error)
        case let error as CommandError: self.init(error)
        case let error as DomainError: self.init(error)
        case let error as AuthError: self.init(error)
        case let error as EventLogError: self.init(error)
        case let error as BreakerOpen: self.init(error)
        case let error as DecodingError: self.init(error)
        // The body broke off mid-way (the client closed or sent malformed chunks): the
        // client's fault, answered if the connection still takes an answer.
        case let error as HTTPParserError:
            self.init(.badRequest, detail: "the request body could not be read whole (\(error)); send the whole body its Content-Length declares")
        case let error as HTTPError: self.init(status: error.status, detail: error.body)
        case let error as any HTTPResponseError: self.init(status: error.status, detail: nil)
        default: self.init(.internal, detail: "the server failed to answer; the request id is in the logs")
        }
    }

    init(_ error: APIError) {
        // Every 503 says when to retry.
        self.init(error.code, detail: error.message, retryAfter: error.retryAfter ?? (error.code.status == .serviceUnavailable ? 1 : nil))
        locate(item: error.item, field: error.field)
        set("head", error.head.map { .number(Int64($0)) })
        set("state", error.viewState.map { .string($0.rawValue) })
    }

    init(_ error: CommandError) {
        switch error.code.base {
        case .invalidInput:
            self.init(.invalidInput, detail: error.message)
            locate(item: error.itemIndex, field: error.field)
        case .batchTooLarge:
            self.init(.batchTooLarge, detail: error.message)
        case .insufficientCredits:
            self.init(.insufficientCredits, detail: error.message)
            set("balance", error.balance.map(Member.number))
            set("cost", error.cost.map(Member.number))
        case .conflict:
            // Only another server's write conflicts (this one's commands take turns): retryable.
            self.init(.conflict, detail: error.message, retryAfter: 1)
        case .idempotencyKeyReused:
            self.init(.idempotencyKeyReused, detail: error.message)
            locate(item: nil, field: error.field)
        case .storeUnavailable:
            self.init(.storeUnavailable, detail: error.message, retryAfter: 1)
        case .unreadableHistory:
            self.init(.unreadableHistory, detail: error.message, retryAfter: 1)
        }
    }

    /// Domain checks run on fields, so a domain refusal is `invalid_input` naming the field,
    /// as the same refusal wrapped by a command is.
    init(_ error: DomainError) {
        switch error.code.base {
        case .invalidField, .unsupportedVersion, .malformedPayload:
            self.init(.invalidInput, detail: error.message)
            locate(item: nil, field: error.field)
        case .unknownType:
            self.init(.unknownType, detail: error.message)
            locate(item: nil, field: error.field)
        case .malformedJSON:
            self.init(.malformedBody, detail: "the body is not well-formed JSON: \(error.message)")
        }
    }

    init(_ error: AuthError) {
        switch error.code.base {
        case .unauthenticated: self.init(.unauthenticated, detail: error.message)
        case .forbidden: self.init(.forbidden, detail: error.message)
        // Unusable key material is the server's fault, never the caller's.
        case .misconfigured: self.init(.internal, detail: "the server's token keys are unusable; the request id is in the logs")
        }
    }

    init(_ error: EventLogError) {
        switch error.code {
        case .invalidInput: self.init(.invalidInput, detail: error.message)
        case .wrongExpectedVersion: self.init(.conflict, detail: error.message, retryAfter: 1)
        default: self.init(.storeUnavailable, detail: error.message, retryAfter: 1)
        }
    }

    init(_ error: BreakerOpen) {
        self.init(.storeUnavailable, detail: error.message, retryAfter: error.retryAfterSeconds)
        set("breaker", .string(error.state.rawValue))
    }

    /// A body member of the wrong kind, missing or out of range is `invalid_input` naming
    /// it (as the same fault in a reported event is); anything else about the body is
    /// `malformed_body`.
    init(_ error: DecodingError) {
        func path(_ context: DecodingError.Context, _ last: (any CodingKey)? = nil) -> String? {
            ((context.codingPath + (last.map { [$0] } ?? [])).map(\.stringValue)).joined(separator: ".").nilIfEmpty
        }
        switch error {
        case .keyNotFound(let key, let context):
            let field = path(context, key) ?? key.stringValue
            self.init(.invalidInput, detail: "\(field) is missing; send it")
            locate(item: nil, field: field)
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            if let field = path(context) {
                self.init(.invalidInput, detail: "\(field): \(context.debugDescription)")
                locate(item: nil, field: field)
            } else {
                self.init(.malformedBody, detail: "the JSON body does not match the schema: \(context.debugDescription)")
            }
        @unknown default:
            self.init(.malformedBody, detail: "the JSON body does not match the schema: \(error)")
        }
    }

    /// Hummingbird's own refusals (no route, a body past the upload limit).
    init(status: HTTPResponse.Status, detail: String?) {
        let code: ProblemCode =
            switch status.code {
            case 413: .bodyTooLarge
            case 404: .notFound
            case 405: .methodNotAllowed
            case 401: .unauthenticated
            case 403: .forbidden
            case 400..<500: .badRequest
            default: .internal
            }
        switch code {
        case .bodyTooLarge: self.init(code, detail: "the body is larger than \(TallyRequestContext.maxBodyBytes) bytes; split it")
        case .internal: self.init(code, detail: "the server failed to answer; the request id is in the logs")
        default: self.init(code, detail: detail?.nilIfEmpty ?? status.reasonPhrase)
        }
    }
}
