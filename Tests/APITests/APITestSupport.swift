import API
import Commands
import EventLog
import Foundation
import Hummingbird
import HTTPTypes
import HummingbirdTesting
import Projections
import TallyTestSupport
import Testing

/// The fixture and `withAPI` are TallyTestSupport's, built on the composition root.

/// The operations tests' server: a breaker that opens after 3 failures and stays open for
/// far longer than a test, a 300 ms consistency wait.
@Sendable func opsConfiguration(_ configuration: inout TallyConfiguration) {
    configuration.consistencyWait = .milliseconds(300)
    configuration.breakerFailureThreshold = 3
    configuration.breakerOpenDuration = .seconds(30)
}

// MARK: - Requests

/// Headers with `Authorization: Bearer <token>` (when given) and a JSON content type.
func headers(_ token: String?, _ extra: [HTTPField.Name: String] = [:]) -> HTTPFields {
    var fields: HTTPFields = [.contentType: "application/json"]
    if let token { fields[.authorization] = "Bearer \(token)" }
    for (name, value) in extra { fields[name] = value }
    return fields
}

/// Sends one request; `body` is a Foundation value sent as JSON, or a String sent as is.
func send(
    _ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, token: String?,
    body: Any? = nil, _ extra: [HTTPField.Name: String] = [:]
) async throws -> TestResponse {
    let buffer: ByteBuffer? = switch body {
    case nil: nil
    case let text as String: ByteBuffer(string: text)
    case let value?: try jsonBody(value)
    }
    return try await client.execute(uri: uri, method: method, headers: headers(token, extra), body: buffer)
}

/// A JSON body from a Foundation value.
func jsonBody(_ value: Any) throws -> ByteBuffer {
    ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: value))
}

/// The response body as a JSON object (fails the test when it is not one).
func json(_ response: TestResponse, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
    let data = Data(response.body.readableBytesView)
    let object = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
    return try #require(object as? [String: Any], "body is not a JSON object: \(String(decoding: data, as: UTF8.self))",
                        sourceLocation: sourceLocation)
}

/// An integer member of a JSON object, however JSONSerialization typed it (a number, or a
/// string holding one: problem members such as `item` may be either).
func int(_ object: [String: Any]?, _ key: String) -> Int? {
    number(object?[key])
}

func number(_ value: Any?) -> Int? {
    switch value {
    case let i as Int: i
    case let i as Int64: Int(exactly: i)
    case let u as UInt64: Int(exactly: u)
    case let d as Double: Int(exactly: d)
    case let n as NSNumber: n.intValue
    case let text as String: Int(text)
    default: nil
    }
}

/// An array of integers in a JSON body.
func ints(_ value: Any?) -> [Int]? {
    (value as? [Any])?.compactMap { number($0) }
}

/// Expects a problem response: the status, `application/problem+json`, the stable code,
/// a numeric `status` member and a Request-Id. Returns the body for further checks.
@discardableResult
func expectProblem(
    _ response: TestResponse, _ status: HTTPResponse.Status, code: String, sourceLocation: SourceLocation = #_sourceLocation
) throws -> [String: Any] {
    #expect(response.status == status, "body: \(String(buffer: response.body))", sourceLocation: sourceLocation)
    #expect(response.headers[.contentType] == "application/problem+json", sourceLocation: sourceLocation)
    #expect(response.headers[.requestID] != nil, sourceLocation: sourceLocation)
    let body = try json(response, sourceLocation: sourceLocation)
    #expect(body["code"] as? String == code, "body: \(body)", sourceLocation: sourceLocation)
    #expect(int(body, "status") == Int(status.code), sourceLocation: sourceLocation)
    #expect((body["detail"] as? String)?.isEmpty == false, sourceLocation: sourceLocation)
    return body
}

/// The `freshness` object of a view response, checked for its members and matched with
/// the Tally-Position and Tally-Lag-Events headers.
@discardableResult
func expectFreshness(_ response: TestResponse, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
    let body = try json(response, sourceLocation: sourceLocation)
    let freshness = try #require(body["freshness"] as? [String: Any], "no freshness in \(body)", sourceLocation: sourceLocation)
    for key in ["position", "head", "lag_events", "lag_seconds", "state"] {
        #expect(freshness[key] != nil, "freshness lacks \(key): \(freshness)", sourceLocation: sourceLocation)
    }
    #expect(body["stale"] is Bool, "no stale flag in \(body)", sourceLocation: sourceLocation)
    #expect(response.headers[.tallyPosition] == int(freshness, "position").map(String.init), sourceLocation: sourceLocation)
    #expect(response.headers[.tallyLagEvents] == int(freshness, "lag_events").map(String.init), sourceLocation: sourceLocation)
    return body
}

// MARK: - Worker report items

func analysisCompleted(_ username: String, post: String, sentiment: Double = 0.5) -> [String: Any] {
    ["type": "PostAnalysisCompleted",
     "data": ["username": username, "post_id": post, "sentiment": sentiment, "language": "en", "category": "travel", "duration_ms": 120]]
}

func analysisFailed(_ username: String, post: String) -> [String: Any] {
    ["type": "PostAnalysisFailed", "data": ["username": username, "post_id": post, "error": "model timeout", "duration_ms": 3000]]
}

func profileRefreshed(_ username: String) -> [String: Any] {
    ["type": "ProfileRefreshed",
     "data": ["username": username, "followers": 1200, "following": 80, "posts_count": 42, "verified": false, "category": "travel"]]
}

func cdnQueued(_ job: String) -> [String: Any] {
    ["type": "CdnJobQueued", "data": ["job_id": job, "priority": "high", "kind": "avatar"]]
}
