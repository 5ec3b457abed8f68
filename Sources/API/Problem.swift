import Foundation
public import Hummingbird

/// A problem response (`application/problem+json`, RFC 9457) with a stable `code`, a
/// `detail` that says what to do, and `Retry-After` on 503s. Made only from an error, by
/// `Problem.init(_:)` (ProblemMapping.swift): handlers throw typed errors, never a Problem.
public struct Problem: Sendable, Hashable {
    public private(set) var code: ProblemCode
    public private(set) var detail: String
    /// Seconds a client should wait before retrying.
    public private(set) var retryAfter: Int?
    /// Extra members of the body (the catch-up progress of a cold view, an item index).
    public private(set) var extra: [String: Member] = [:]

    public var status: HTTPResponse.Status { code.status }
    public var title: String { code.title }

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

    init(_ code: ProblemCode, detail: String, retryAfter: Int? = nil) {
        self.code = code
        self.detail = detail
        self.retryAfter = retryAfter
    }

    /// Adds the `item` and `field` members, when known.
    mutating func locate(item: Int?, field: String?) {
        if let item { extra["item"] = .number(Int64(item)) }
        if let field { extra["field"] = .string(field) }
    }

    mutating func set(_ name: String, _ value: Member?) {
        extra[name] = value
    }

    /// The response; errors are rare, so Foundation's encoder is fine here.
    public func response() throws -> Response {
        var headers: HTTPFields = [.contentType: "application/problem+json"]
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: try encodedBody())))
    }

    /// The `application/problem+json` document, also written by the connection guard for
    /// requests refused before any route saw them.
    func encodedBody() throws -> Data {
        var body = extra
        body["type"] = .string("about:blank")
        body["title"] = .string(title)
        body["detail"] = .string(detail)
        body["code"] = .string(code.rawValue)
        body["status"] = .number(Int64(status.code))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(body)
    }
}

extension String {
    var nilIfEmpty: String? { isEmpty ? nil : self }
}
