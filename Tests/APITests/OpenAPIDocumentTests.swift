import Foundation
import Hummingbird
import TallyTestSupport
import Testing
@testable import API

/// `/openapi.json` must describe exactly the routes the router serves.
@Suite(.timeLimit(.minutes(5))) struct OpenAPIDocumentTests {
    @Test func theDocumentListsExactlyTheRouterRoutes() async throws {
        try await withTallyFixture { fixture in
            let router = fixture.api.makeRouter()
            let served = Set(router.routes.map { "\($0.method.rawValue) \($0.path.description)" })
            let documented = Set(OpenAPIDocument.operations.map { "\($0.method) \($0.path)" })
            #expect(served == documented, "served but undocumented: \(served.subtracting(documented).sorted()); documented but not served: \(documented.subtracting(served).sorted())")

            let json = try JSONSerialization.jsonObject(with: Data(OpenAPIDocument.json().utf8)) as? [String: Any]
            #expect(json?["openapi"] as? String == "3.1.0")
            let paths = try #require(json?["paths"] as? [String: [String: Any]])
            #expect(paths.values.reduce(0) { $0 + $1.count } == documented.count)
            let unlock = try #require(paths["/api/v1/creator/unlock/{username}"]?["post"] as? [String: Any])
            #expect((unlock["responses"] as? [String: Any])?["402"] != nil)
            #expect((unlock["x-roles"] as? [String]) == ["user"])
        }
    }
}
