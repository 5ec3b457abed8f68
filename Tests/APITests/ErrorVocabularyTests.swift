import Commands
import EventLog
import Events
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import TallyTestSupport
import Testing
@testable import API

/// One vocabulary at the HTTP edge: every error maps to one code of `ProblemCode`, each code
/// to one status, and the same fault gets the same code on every route.
@Suite("Error vocabulary", .timeLimit(.minutes(5)))
struct ErrorVocabularyTests {
    /// The contract clients key on: a code is never renamed and never changes status.
    static let statuses: [String: Int] = [
        "malformed_body": 400, "invalid_input": 400, "unknown_type": 400, "batch_too_large": 400, "bad_request": 400,
        "body_too_large": 413, "unsupported_media_type": 415, "unauthenticated": 401, "forbidden": 403, "not_found": 404, "method_not_allowed": 405,
        "insufficient_credits": 402, "conflict": 409, "idempotency_key_reused": 422, "store_unavailable": 503, "unreadable_history": 503,
        "view_not_ready": 503, "busy": 503, "internal": 500,
    ]

    @Test func everyCodeIsStableUniqueAndHasOneStatus() {
        let codes = ProblemCode.all.map(\.rawValue)
        #expect(Set(codes).count == codes.count)
        #expect(Dictionary(uniqueKeysWithValues: ProblemCode.all.map { ($0.rawValue, Int($0.status.code)) }) == Self.statuses)
        for code in ProblemCode.all { #expect(!code.title.isEmpty) }
    }

    /// `/openapi.json` documents exactly this vocabulary.
    @Test func theOpenAPIDocumentListsEveryCode() throws {
        let document = try #require(try JSONSerialization.jsonObject(with: Data(OpenAPIDocument.json().utf8)) as? [String: Any])
        let schemas = (document["components"] as? [String: Any])?["schemas"] as? [String: Any]
        let problem = try #require(schemas?["Problem"] as? [String: Any])
        let code = (problem["properties"] as? [String: Any])?["code"] as? [String: Any]
        #expect(code?["enum"] as? [String] == ProblemCode.all.map(\.rawValue))
        for (name, status) in Self.statuses {
            #expect((problem["description"] as? String)?.contains("\(name) (\(status))") == true, "\(name)")
        }
    }

    /// Every code of every layer's error maps to a problem of the vocabulary, and a code
    /// string another layer shares means the same problem code.
    @Test func everyErrorCodeMapsToOneProblemCode() {
        var seen: [String: String] = [:]
        func check(_ error: any Error, _ layerCode: String) {
            let problem = Problem(error)
            #expect(Self.statuses[problem.code.rawValue] == Int(problem.status.code), "\(error)")
            #expect(!problem.detail.isEmpty)
            #expect(problem.status.code != 503 || (problem.retryAfter ?? 0) >= 1, "every 503 says when to retry: \(error)")
            if let earlier = seen[layerCode] { #expect(earlier == problem.code.rawValue, "\(layerCode) maps to two codes") }
            seen[layerCode] = problem.code.rawValue
        }
        for code in CommandError.Code.all { check(CommandError(code, "refused"), code.rawValue) }
        for code in DomainError.Code.all { check(DomainError(code, "refused", field: "x"), code.rawValue) }
        for code in AuthError.Code.all { check(AuthError(code, "refused"), code.rawValue) }
        for code in [EventLogError.Code.invalidInput, .wrongExpectedVersion, .io, .closed, .unavailable, .corrupted, .locked, .readOnly] {
            check(EventLogError(code, "refused"), code.description)
        }
        for code in ProblemCode.all { check(APIError(code, "refused"), code.rawValue) }
        check(BreakerOpen(state: .open, retryAfter: .milliseconds(1_500)), "store_unavailable")
        #expect(Problem(BreakerOpen(state: .open, retryAfter: .milliseconds(1_500))).retryAfter == 2)
        struct Unknown: Error {}
        #expect(Problem(Unknown()).code == .internal)
        #expect(Problem(HTTPError(.notFound)).code == .notFound)
        #expect(Problem(HTTPError(.contentTooLarge)).code == .bodyTooLarge)
        // The same refusal reaches the edge as a domain error or wrapped by a command.
        let domain = DomainError(.invalidField, "amount must be in 1...1000000000", field: "amount")
        #expect(Problem(domain).code == Problem(CommandError.invalid(domain)).code)
        #expect(Problem(domain).code == .invalidInput)
    }

    /// The same fault of a body, sent to a report endpoint and to the grant.
    static let faults: [(fault: String, grant: String, report: String, code: String, field: String?)] = [
        ("a number out of range", #"{"user":"alice","amount":-5,"reason":"x"}"#,
         #"{"events":[{"type":"ProfileRefreshed","data":{"username":"natgeo","followers":-1,"following":2,"posts_count":3,"verified":true,"category":"x"}}]}"#,
         "invalid_input", nil),
        ("a string where a number goes", #"{"user":"alice","amount":"5","reason":"x"}"#,
         #"{"events":[{"type":"ProfileRefreshed","data":{"username":"natgeo","followers":"1","following":2,"posts_count":3,"verified":true,"category":"x"}}]}"#,
         "invalid_input", nil),
        ("a missing member", #"{"user":"alice","amount":5}"#,
         #"{"events":[{"type":"ProfileRefreshed","data":{"username":"natgeo","following":2,"posts_count":3,"verified":true,"category":"x"}}]}"#,
         "invalid_input", nil),
        ("an empty name", #"{"user":"","amount":5,"reason":"x"}"#,
         #"{"events":[{"type":"ProfileRefreshed","data":{"username":"","followers":1,"following":2,"posts_count":3,"verified":true,"category":"x"}}]}"#,
         "invalid_input", nil),
        ("not JSON", #"{"user":"alice","#, #"{"events":["#, "malformed_body", nil),
        ("not an object", "[1]", "[1]", "malformed_body", nil),
        ("an unknown member", #"{"user":"alice","amount":5,"reason":"x","extra":1}"#, #"{"events":[],"extra":1}"#, "malformed_body", nil),
    ]

    @Test("the same bad body gets the same code on /events/* and /credits/grant", arguments: 0..<faults.count)
    func sameFaultSameCode(index: Int) async throws {
        let fault = Self.faults[index]
        try await withAPI { fixture, client in
            let grant = try await send(client, .post, "/api/v1/credits/grant", token: fixture.adminToken, body: fault.grant)
            let grantBody = try expectProblem(grant, .badRequest, code: fault.code)
            let report = try await send(client, .post, "/api/v1/events/profiles", token: fixture.serviceToken, body: fault.report)
            let reportBody = try expectProblem(report, .badRequest, code: fault.code)
            if fault.code == "invalid_input" {
                #expect(grantBody["field"] is String, "\(fault.fault): the grant names the field: \(grantBody)")
                #expect(reportBody["field"] is String, "\(fault.fault): the report names the field: \(reportBody)")
                #expect(int(reportBody, "item") == 0, "\(reportBody)")
            }
            #expect(fixture.head == 0)
        }
    }

    /// A bad query parameter, header or path segment is `invalid_input` on every route.
    @Test func badParametersAreInvalidInputEverywhere() async throws {
        try await withAPI { fixture, client in
            for (uri, token) in [("/api/v1/creator/unlocked?limit=0", fixture.aliceToken),
                                 ("/api/v1/system/monitoring/performance?hours=0", fixture.adminToken),
                                 ("/api/v1/audit/events?limit=abc", fixture.auditorToken),
                                 ("/api/v1/audit/events?since=yesterday", fixture.auditorToken),
                                 ("/api/v1/creator/unlocked?cursor=page-two", fixture.aliceToken),
                                 ("/api/v1/creator/unlocked?cursor=0", fixture.aliceToken),
                                 ("/api/v1/audit/events?type=NoSuchType", fixture.auditorToken),
                                 ("/api/v1/audit/events?stream=user-alice&type=creditsgranted", fixture.auditorToken)] {
                let field = String(uri.split(separator: "?")[1].split(separator: "&").last!.split(separator: "=")[0])
                let body = try expectProblem(try await send(client, .get, uri, token: token), .badRequest, code: "invalid_input")
                #expect(body["field"] as? String == field, "\(uri): \(body)")
            }
            // A known type and a real cursor are taken.
            #expect(try await send(client, .get, "/api/v1/audit/events?type=CreditsGranted", token: fixture.auditorToken).status == .ok)
            #expect(try await send(client, .get, "/api/v1/creator/unlocked?cursor=17", token: fixture.aliceToken).status == .ok)
            let after = try await send(client, .get, "/api/v1/system/stats", token: fixture.aliceToken, [.tallyAfter: "soon"])
            let body = try expectProblem(after, .badRequest, code: "invalid_input")
            #expect(body["field"] as? String == "Tally-After")
            // A search refused for its Tally-After writes no CreatorSearched event (checked by
            // the head at the end).
            let searchAfter = try await send(client, .post, "/api/v1/creator/search/natgeo", token: fixture.aliceToken, [.tallyAfter: "soon"])
            #expect(try expectProblem(searchAfter, .badRequest, code: "invalid_input")["field"] as? String == "Tally-After")
            // Whole numbers are written as such: a decoder would round 1e2 or 5.0 to an integer.
            for amount in ["1e2", "5.0", "1E1"] {
                let grant = try await send(client, .post, "/api/v1/credits/grant", token: fixture.adminToken,
                                           body: #"{"user":"alice","amount":\#(amount),"reason":"r"}"#)
                #expect(try expectProblem(grant, .badRequest, code: "invalid_input")["field"] as? String == "amount", "\(amount)")
            }
            let duration = try await send(client, .post, "/api/v1/creator/search/natgeo", token: fixture.aliceToken, body: #"{"duration_ms":2.5e1}"#)
            #expect(try expectProblem(duration, .badRequest, code: "invalid_input")["field"] as? String == "duration_ms")
            // An Idempotency-Key that is not visible ASCII is refused, not folded (invalid
            // UTF-8 would arrive as U+FFFD, and two keys would collide).
            for key in ["café-1", "has space", String(repeating: "k", count: 129)] {
                let unlock = try await send(client, .post, "/api/v1/creator/unlock/natgeo", token: fixture.aliceToken, [.idempotencyKey: key])
                #expect(try expectProblem(unlock, .badRequest, code: "invalid_input")["field"] as? String == "Idempotency-Key", "\(key)")
            }
            // A body declared as something other than JSON is refused before it is parsed.
            for declared in ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin1"] {
                let grant = try await send(client, .post, "/api/v1/credits/grant", token: fixture.adminToken,
                                           body: #"{"user":"alice","amount":5,"reason":"r"}"#, [.contentType: declared])
                try expectProblem(grant, .unsupportedMediaType, code: "unsupported_media_type")
                let search = try await send(client, .post, "/api/v1/creator/search/natgeo", token: fixture.aliceToken,
                                            body: #"{"found":true}"#, [.contentType: declared])
                try expectProblem(search, .unsupportedMediaType, code: "unsupported_media_type")
            }
            // A bad username is the same fault in a path as in a command.
            let search = try await send(client, .post, "/api/v1/creator/search/bad-name", token: fixture.aliceToken)
            #expect(try expectProblem(search, .badRequest, code: "invalid_input")["field"] as? String == "username")
            let unlock = try await send(client, .post, "/api/v1/creator/unlock/bad-name", token: fixture.aliceToken)
            #expect(try expectProblem(unlock, .badRequest, code: "invalid_input")["field"] as? String == "username")
            try expectProblem(try await send(client, .get, "/api/v1/no/such/route", token: fixture.aliceToken), .notFound, code: "not_found")
            // A path that exists for other methods is a 405 naming them, not a 404.
            for (method, uri, allow) in [(HTTPRequest.Method.post, "/api/v1/system/stats", "GET"),
                                         (.delete, "/api/v1/creator/unlock/natgeo", "POST"),
                                         (.put, "/api/v1/audit/streams/user-alice", "GET")] {
                let refused = try await send(client, method, uri, token: fixture.adminToken)
                try expectProblem(refused, .methodNotAllowed, code: "method_not_allowed")
                #expect(refused.headers[.allow] == allow, "\(method) \(uri)")
            }
            try expectProblem(try await send(client, .post, "/api/v1/creator/unlock/a/b", token: fixture.aliceToken), .notFound, code: "not_found")
            #expect(fixture.head == 0)
        }
    }

    /// JSON declared in any spelling of `application/json`, with a UTF-8 charset or none, or
    /// not declared at all, is read.
    @Test func jsonBodiesAreReadHoweverTheTypeIsSpelled() async throws {
        try await withAPI { fixture, client in
            for (i, declared) in ["application/json", "Application/JSON; charset=UTF-8", "application/json;charset=\"utf-8\"", nil].enumerated() {
                let extra: [HTTPField.Name: String] = declared.map { [.contentType: $0] } ?? [:]
                let grant = try await send(client, .post, "/api/v1/credits/grant", token: fixture.adminToken,
                                           body: #"{"user":"carol","amount":5,"reason":"r"}"#, extra)
                #expect(grant.status == .ok, "\(declared ?? "no Content-Type"): \(String(buffer: grant.body))")
                #expect(fixture.head == LogPosition(i + 1))
            }
        }
    }
}
