import API
import Foundation
import Hummingbird
import HummingbirdTesting
import TallyTestSupport
import Testing

@Suite("Over a real socket", .timeLimit(.minutes(5)))
struct LiveTests {
    @Test("health, then an authenticated command and view over a live server")
    func liveServer() async throws {
        try await withAPI(.live) { fixture, client in
            #expect(client.port.map { $0 > 0 } == true)
            try await client.execute(uri: "/api/health", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.requestID]?.isEmpty == false)
                let body = try json(response)
                #expect(body["status"] as? String == "ok")
            }
            try await client.execute(uri: "/api/v1/credits/balance", method: .get) { response in
                try expectProblem(response, .unauthorized, code: "unauthenticated")
            }
            let position = try await CreatorFlowTests.grant(fixture, client, APIFixture.alice, 2)
            let unlock = try await CreatorFlowTests.unlock(client, fixture.aliceToken, "natgeo")
            #expect(unlock.status == .ok)
            let written = try #require(int(try json(unlock), "position"))
            #expect(written > position)
            let list = try await send(client, .get, "/api/v1/creator/unlocked", token: fixture.aliceToken, [.tallyAfter: String(written)])
            #expect(list.status == .ok)
            let body = try expectFreshness(list)
            #expect(body["stale"] as? Bool == false)
            #expect(int(body, "total") == 1)
        }
    }

    /// A body declared as 10 GiB is refused from its Content-Length, at once: the server does
    /// not wait for a body the client never sends (the exchange would time out, 20 s, with
    /// nothing answered) and writes nothing.
    @Test func aBodyDeclaredPastTheLimitIsRefusedBeforeItIsRead() async throws {
        try await withAPI(.live) { fixture, client in
            let port = try #require(client.port)
            let answer = try await rawHTTPExchange(port: port, "POST /api/v1/credits/grant HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                + "Authorization: Bearer \(fixture.adminToken)\r\nContent-Type: application/json\r\n"
                + "Content-Length: 10737418240\r\n\r\n{\"user\":")
            #expect(answer.hasPrefix("HTTP/1.1 413"), "\(answer.prefix(300))")
            #expect(answer.contains("body_too_large"), "\(answer.prefix(600))")
            #expect(fixture.head == 0)
        }
    }
}
