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
}
