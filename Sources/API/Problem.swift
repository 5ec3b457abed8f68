public import Commands
public import EventLog
import Events
import Foundation
public import Hummingbird

/// The one place errors become HTTP responses: `application/problem+json` with a stable
/// `code`, a `detail` that says what to do, and `Retry-After` on 503s.
public struct Problem: Error, HTTPResponseError, Sendable, Hashable {
    public var status: HTTPResponse.Status
    public var code: String
    public var title: String
    public var detail: String
    /// Seconds a client should wait before retrying.
    public var retryAfter: Int?
    /// Extra members of the body (the catch-up progress of a cold view, an item index).
    public var extra: [String: Member] = [:]

    /// A value of an extra member: numbers stay numbers in the JSON.
    public enum Member: Sendable, Hashable, Encodable {
        case string(String)
        case number(Int64)

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .string(let value): try container.encode(value)
            case .number(let value): try container.encode(value)
            }
        }
    }

    public init(_ status: HTTPResponse.Status, code: String, title: String, detail: String, retryAfter: Int? = nil) {
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.retryAfter = retryAfter
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var body = extra
        body["type"] = .string("about:blank")
        body["title"] = .string(title)
        body["detail"] = .string(detail)
        body["code"] = .string(code)
        body["status"] = .number(Int64(status.code))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(body)
        var headers: HTTPFields = [.contentType: "application/problem+json"]
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    // MARK: - Mapping

    /// Maps any error a handler throws; unknown errors become a 500 that says nothing internal.
    public static func from(_ error: any Error) -> Problem {
        switch error {
        case let problem as Problem: return problem
        case let error as CommandError: return Problem(error)
        case let error as DomainError: return Problem(.badRequest, code: error.code.rawValue, title: "Invalid input", detail: error.message)
        case let error as AuthError: return Problem(error)
        case let error as EventLogError: return Problem(error)
        case let error as HTTPError:
            return Problem(error.status, code: error.status == .contentTooLarge ? "body_too_large" : "http_\(error.status.code)",
                           title: error.status.reasonPhrase, detail: error.body ?? error.status.reasonPhrase)
        case let error as any HTTPResponseError:
            // Hummingbird's own refusals, e.g. a body past the upload limit (413).
            let tooLarge = error.status == .contentTooLarge
            return Problem(error.status, code: tooLarge ? "body_too_large" : "http_\(error.status.code)", title: error.status.reasonPhrase,
                           detail: tooLarge ? "the body is larger than \(TallyRequestContext.maxBodyBytes) bytes; split it" : error.status.reasonPhrase)
        case let error as DecodingError:
            return Problem(.badRequest, code: "malformed_body", title: "Malformed body", detail: "the JSON body does not match the schema: \(describe(error))")
        default:
            return Problem(.internalServerError, code: "internal", title: "Internal error", detail: "the server failed to answer; the request id is in the logs")
        }
    }

    public init(_ error: CommandError) {
        switch error.code {
        case .invalidInput, .batchTooLarge:
            self.init(.badRequest, code: error.code.rawValue, title: "Invalid input", detail: error.message)
            if let index = error.itemIndex { extra["item"] = .number(Int64(index)) }
            if let field = error.field { extra["field"] = .string(field) }
        case .insufficientCredits:
            self.init(.init(code: 402, reasonPhrase: "Payment Required"), code: error.code.rawValue, title: "Insufficient credits", detail: error.message)
            if let balance = error.balance { extra["balance"] = .number(balance) }
            if let cost = error.cost { extra["cost"] = .number(cost) }
        case .conflict:
            self.init(.conflict, code: error.code.rawValue, title: "Conflict", detail: error.message)
        default:
            self.init(.serviceUnavailable, code: error.code.rawValue, title: "Store unavailable", detail: error.message, retryAfter: 1)
        }
    }

    public init(_ error: AuthError) {
        switch error.code {
        case .forbidden: self.init(.forbidden, code: error.code.rawValue, title: "Forbidden", detail: error.message)
        default: self.init(.unauthorized, code: AuthError.Code.unauthenticated.rawValue, title: "Unauthorized", detail: error.message)
        }
    }

    public init(_ error: EventLogError) {
        switch error.code {
        case .invalidInput:
            self.init(.badRequest, code: error.code.description, title: "Invalid input", detail: error.message)
        case .wrongExpectedVersion:
            self.init(.conflict, code: error.code.description, title: "Conflict", detail: error.message)
        default:
            self.init(.serviceUnavailable, code: "store_unavailable", title: "Store unavailable", detail: error.message, retryAfter: 1)
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound(let key, _): "missing field \(key.stringValue)"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            (context.codingPath.map(\.stringValue).joined(separator: ".").nilIfEmpty.map { "\($0): " } ?? "") + context.debugDescription
        @unknown default: "\(error)"
        }
    }
}

extension String {
    var nilIfEmpty: String? { isEmpty ? nil : self }
}
