import API
import Commands
import EventLog
import Foundation
import Hummingbird
import HTTPTypes
import HummingbirdTesting
import Projections
import Testing

/// One API over a fresh log in a temporary directory: the hub with its runners, the
/// command service, an HS256 authority and a token for each role.
struct APIFixture: Sendable {
    static let secret = "tally-api-tests-secret-0123456789abcdef-not-for-production"

    let directory: String
    let log: FileLog
    let hub: ViewHub<FileLog>
    let commands: CommandService<FileLog>
    let authority: TokenAuthority
    let api: TallyAPI<FileLog>

    /// Subjects of the tokens below.
    static let alice = "alice"
    static let bob = "bob"

    let aliceToken: String
    let bobToken: String
    let serviceToken: String
    let adminToken: String
    let auditorToken: String

    init(consistencyWait: Duration, label: String) async throws {
        let safe = label.filter { $0.isLetter || $0.isNumber }.prefix(40)
        directory = FileManager.default.temporaryDirectory.path + "/tally-api-\(safe)-\(UUID().uuidString)"
        log = try FileLog(directory: directory + "/log", options: .init(fsync: .never))
        hub = ViewHub(store: log, snapshots: nil, consistencyWait: consistencyWait)
        commands = CommandService(store: log, unlockCost: 1)
        authority = try await TokenAuthority.hs256(secret: Self.secret)
        api = TallyAPI(hub: hub, commands: commands, authority: authority)
        aliceToken = try await authority.mint(subject: Self.alice, role: .user)
        bobToken = try await authority.mint(subject: Self.bob, role: .user)
        serviceToken = try await authority.mint(subject: "scraper-1", role: .service)
        adminToken = try await authority.mint(subject: "ops", role: .admin)
        auditorToken = try await authority.mint(subject: "audit", role: .auditor)
    }

    /// Starts the three projection runners; cancel the returned tasks to stop them.
    func startRunners() -> [Task<Void, Never>] {
        let hub = self.hub
        return [
            Task { try? await hub.stats.run() },
            Task { try? await hub.unlocked.run() },
            Task { try? await hub.metrics.run() },
        ]
    }

    var head: LogPosition { log.currentHead().position }

    func remove() async {
        try? await log.close()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// Runs `body` against the API through `setup` (the router by default), with the runners
/// started unless `startRunners` is false; stops them and removes the data dir afterwards.
func withAPI(
    _ setup: TestingSetup = .router,
    consistencyWait: Duration = .milliseconds(200),
    startRunners: Bool = true,
    label: String = #function,
    _ body: @Sendable (APIFixture, any TestClientProtocol) async throws -> Void
) async throws {
    let fixture = try await APIFixture(consistencyWait: consistencyWait, label: label)
    let runners = startRunners ? fixture.startRunners() : []
    let app = Application(router: fixture.api.makeRouter())
    do {
        try await app.test(setup) { client in try await body(fixture, client) }
    } catch {
        for runner in runners { runner.cancel() }
        for runner in runners { await runner.value }
        await fixture.remove()
        throw error
    }
    for runner in runners { runner.cancel() }
    for runner in runners { await runner.value }
    await fixture.remove()
}

// MARK: - Requests

extension HTTPField.Name {
    static let tallyAfter = Self("Tally-After")!
    static let tallyPosition = Self("Tally-Position")!
    static let tallyLagEvents = Self("Tally-Lag-Events")!
    static let requestID = Self("Request-Id")!
    static let idempotencyKey = Self("Idempotency-Key")!
}

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
