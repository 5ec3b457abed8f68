@testable import API
import EventLog
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import TallyTestSupport
import Testing

/// Request ids: a client's `X-Request-Id` is the request id when usable and is echoed as
/// `Request-Id`; `X-Correlation-Id` and `X-Causation-Id` end up on the events a command
/// writes, and a bad one is refused before anything is written.
@Suite(.timeLimit(.minutes(5)))
struct RequestIDTests {
    @Test func usableIDsAreBoundedVisibleASCII() {
        #expect(RequestIDs.usable("req-42_a.b:c/d") == "req-42_a.b:c/d")
        #expect(RequestIDs.usable(String(repeating: "a", count: 64)) != nil)
        for bad in ["", String(repeating: "a", count: 65), "has space", "tab\there", "line\nbreak", "caf\u{e9}", "\u{7f}"] {
            #expect(RequestIDs.usable(bad) == nil, "\(bad.debugDescription) was accepted")
        }
        #expect(RequestIDs.usable(nil) == nil)
    }

    @Test func aClientRequestIDIsEchoedAndRecordedAsTheCorrelation() async throws {
        try await withAPI { fixture, client in
            let response = try await send(client, .post, "/api/v1/credits/grant", token: fixture.adminToken,
                                          body: ["user": "alice", "amount": 3, "reason": "welcome"], [.clientRequestID: "client-req-7"])
            #expect(response.status == .ok, "\(String(buffer: response.body))")
            #expect(response.headers[.requestID] == "client-req-7")
            #expect(response.headers[.correlationID] == nil)
            let event = try #require(try await allEvents(fixture.log).last)
            #expect(event.correlationID == "client-req-7" && event.causationID.isEmpty)
            // Problem responses carry it too.
            let refused = try await send(client, .get, "/api/v1/system/stats", token: nil, [.clientRequestID: "client-req-8"])
            try expectProblem(refused, .unauthorized, code: "unauthenticated")
            #expect(refused.headers[.requestID] == "client-req-8")
        }
    }

    @Test func anUnusableClientRequestIDIsReplaced() async throws {
        try await withAPI { fixture, client in
            var seen: Set<String> = []
            for bad in [String(repeating: "x", count: 65), "two words", "caf\u{e9}"] {
                let response = try await send(client, .get, "/api/v1/system/stats", token: fixture.adminToken, [.clientRequestID: bad])
                #expect(response.status == .ok)
                let id = try #require(response.headers[.requestID])
                #expect(id != bad && RequestIDs.usable(id) == id, "\(id)")
                seen.insert(id)
            }
            #expect(seen.count == 3, "each request gets its own id: \(seen)")
        }
    }

    @Test func correlationAndCausationAreRecordedAndEchoed() async throws {
        try await withAPI { fixture, client in
            let ids: [HTTPField.Name: String] = [.correlationID: "checkout-2026-12-01", .causationID: "job-7f3a", .clientRequestID: "r-1"]
            let response = try await send(client, .post, "/api/v1/events/cdn", token: fixture.serviceToken,
                                          body: ["events": [cdnQueued("job-7f3a")]], ids)
            #expect(response.status == .created, "\(String(buffer: response.body))")
            #expect(response.headers[.correlationID] == "checkout-2026-12-01")
            #expect(response.headers[.requestID] == "r-1")
            let event = try #require(try await allEvents(fixture.log).last)
            #expect(event.correlationID == "checkout-2026-12-01")
            #expect(event.causationID == "job-7f3a")
        }
    }

    @Test func aBadCorrelationOrCausationIDIsRefusedAndWritesNothing() async throws {
        try await withAPI { fixture, client in
            for (header, value) in [(HTTPField.Name.correlationID, String(repeating: "c", count: 65)), (.causationID, "two words")] {
                let response = try await send(client, .post, "/api/v1/credits/grant", token: fixture.adminToken,
                                              body: ["user": "alice", "amount": 3, "reason": "welcome"], [header: value])
                let body = try expectProblem(response, .badRequest, code: "invalid_input")
                #expect(body["field"] as? String == header.rawName)
                #expect(response.headers[.correlationID] == nil)
            }
            #expect(fixture.head == 0, "a refused request wrote events")
        }
    }
}

/// Every event of the log, in order.
func allEvents(_ log: FileLog) async throws -> [RecordedEvent] {
    var events: [RecordedEvent] = []
    for try await event in log.read() { events.append(event) }
    return events
}
