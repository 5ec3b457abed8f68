import Foundation
import Hummingbird
import TallyTestSupport
import Testing
@testable import API

/// `/openapi.json` must describe exactly the routes the router serves, each completely.
@Suite(.timeLimit(.minutes(5))) struct OpenAPIDocumentTests {
    @Test func theDocumentListsExactlyTheRouterRoutes() async throws {
        try await withTallyFixture { fixture in
            let router = fixture.api.makeRouter()
            let served = Set(router.routes.map { "\($0.method.rawValue) \($0.path.description)" })
            let documented = Set(OpenAPIDocument.operations.map { "\($0.method) \($0.path)" })
            #expect(served == documented, "served but undocumented: \(served.subtracting(documented).sorted()); documented but not served: \(documented.subtracting(served).sorted())")

            let json = try Self.document()
            #expect(json["openapi"] as? String == "3.1.0")
            let paths = try #require(json["paths"] as? [String: [String: Any]])
            #expect(paths.values.reduce(0) { $0 + $1.count } == documented.count)
            let unlock = try #require(paths["/api/v1/creator/unlock/{username}"]?["post"] as? [String: Any])
            #expect((unlock["responses"] as? [String: Any])?["402"] != nil)
            #expect((unlock["x-roles"] as? [String]) == ["user"])
        }
    }

    /// Every response has its description and a schema; every error is a problem document;
    /// a route with roles names the bearer scheme, a public one names none.
    @Test func everyOperationIsCompletelyDescribed() throws {
        let json = try Self.document()
        let paths = try #require(json["paths"] as? [String: [String: Any]])
        for (path, methods) in paths {
            for (method, value) in methods {
                let operation = try #require(value as? [String: Any])
                let name = "\(method.uppercased()) \(path)"
                let responses = try #require(operation["responses"] as? [String: [String: Any]], "\(name)")
                #expect(responses.keys.contains { $0.hasPrefix("2") }, "\(name) has no success response")
                for (status, response) in responses {
                    #expect((response["description"] as? String)?.isEmpty == false, "\(name) \(status) has no description")
                    let content = try #require(response["content"] as? [String: [String: Any]], "\(name) \(status) has no content")
                    #expect(content.values.allSatisfy { $0["schema"] != nil }, "\(name) \(status) has no schema")
                    let requestID = (response["headers"] as? [String: [String: Any]])?["Request-Id"]
                    #expect(requestID?["required"] as? Bool == true, "\(name) \(status) does not list its Request-Id")
                    // Every refusal is a problem document, except the seed envelope's fallback:
                    // the /simple/ paths answer a never-built view in the seed's own shape.
                    let seedFallback = path.hasPrefix("/api/v1/simple/") && status == "503"
                    if status.hasPrefix("4") || status.hasPrefix("5") {
                        #expect(Array(content.keys) == [seedFallback ? "application/json" : "application/problem+json"], "\(name) \(status)")
                    }
                }
                // The ids every route reads (RequestIDs), with the bounds it checks.
                let headers = (operation["parameters"] as? [[String: Any]] ?? []).filter { $0["in"] as? String == "header" }
                for id in ["X-Request-Id", "X-Correlation-Id", "X-Causation-Id"] {
                    let schema = headers.first { $0["name"] as? String == id }?["schema"] as? [String: Any]
                    #expect(schema?["maxLength"] as? Int == RequestIDs.maxBytes && schema?["pattern"] as? String == "^[!-~]+$", "\(name) \(id)")
                }
                let roles = try #require(operation["x-roles"] as? [String], "\(name)")
                let security = try #require(operation["security"] as? [[String: [String]]], "\(name)")
                #expect(roles.isEmpty ? security.isEmpty : security == [["bearer": []]], "\(name)")
                if !roles.isEmpty { #expect(responses["401"] != nil && responses["403"] != nil, "\(name)") }
                if let body = operation["requestBody"] as? [String: Any] {
                    let content = try #require(body["content"] as? [String: [String: Any]])
                    #expect(content["application/json"]?["schema"] != nil, "\(name) request body has no schema")
                }
            }
        }
        let schemes = (json["components"] as? [String: Any])?["securitySchemes"] as? [String: [String: Any]]
        #expect(schemes?["bearer"]?["scheme"] as? String == "bearer")
        #expect(schemes?["bearer"]?["bearerFormat"] as? String == "JWT")
    }

    /// Query parameters the handlers parse as whole numbers are integers with the handlers' bounds.
    @Test func integerQueryParametersCarryTheirBounds() throws {
        let paths = try #require(try Self.document()["paths"] as? [String: [String: Any]])
        func parameter(_ path: String, _ name: String) -> [String: Any]? {
            let operation = paths[path]?["get"] as? [String: Any]
            let parameters = operation?["parameters"] as? [[String: Any]]
            return parameters?.first { $0["name"] as? String == name && $0["in"] as? String == "query" }?["schema"] as? [String: Any]
        }
        let expected: [(String, String, Int, Int)] = [
            ("/api/v1/creator/unlocked", "limit", 1, 100),
            ("/api/v1/simple/creator/unlocked", "limit", 1, 100),
            ("/api/v1/system/monitoring/performance", "hours", 1, 720),
            ("/api/v1/audit/events", "limit", 1, 1_000),
            ("/api/v1/audit/events", "from_position", 1, Int.max),
            ("/api/v1/audit/streams/{stream}", "limit", 1, 1_000),
            ("/api/v1/audit/streams/{stream}", "from_version", 0, Int.max),
        ]
        for (path, name, minimum, maximum) in expected {
            let schema = try #require(parameter(path, name), "\(path) \(name)")
            #expect(schema["type"] as? String == "integer", "\(path) \(name)")
            #expect(number(schema["minimum"]) == minimum && number(schema["maximum"]) == maximum, "\(path) \(name): \(schema)")
        }
        // The type filter names the catalogue, so a typo is refused by the document too.
        let type = try #require(parameter("/api/v1/audit/events", "type"))
        #expect((type["enum"] as? [String])?.contains("ProfileUnlocked") == true)
    }

    static func document() throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(OpenAPIDocument.json().utf8)) as? [String: Any])
    }
}
