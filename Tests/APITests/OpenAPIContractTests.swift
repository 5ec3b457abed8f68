@testable import API
import AsyncHTTPClient
import Foundation
import Hummingbird
import NIOHTTP1
import HummingbirdTesting
import TallyTestSupport
import Testing

/// `/openapi.json` as real tools read it: `openapi-spec-validator` on the served document,
/// and `schemathesis` fuzzing a live server with a token of each role, checking for 5xx,
/// undocumented statuses and content types, and bodies and headers that break their schema.
/// The tools come from the virtual environment `make test` builds; without them these tests
/// fail with the way to get them, they never skip.
@Suite(.timeLimit(.minutes(5)))
struct OpenAPIContractTests {
    @Test func theServedDocumentPassesOpenAPISpecValidator() async throws {
        let validator = try ExternalTools.openAPIValidator()
        try await withAPI { _, client in
            let response = try await client.execute(uri: "/openapi.json", method: .get)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "application/json")
            try await withTemporaryDirectory { directory in
                let file = directory.sub("openapi.json")
                try Data(response.body.readableBytesView).write(to: URL(fileURLWithPath: file))
                let result = try await runProcess(validator, ["--errors", "all", file])
                #expect(result.status == 0, "openapi-spec-validator: \(result.stdout.suffix(8_000)) \(result.stderr.suffix(4_000))")
                #expect(result.stdout.contains("OK"), "\(result.stdout) \(result.stderr)")
            }
        }
    }

    /// The validator does find errors: a document without a response's `description` fails,
    /// so the test above cannot pass by accident.
    @Test func theValidatorRefusesADocumentWithAnError() async throws {
        let validator = try ExternalTools.openAPIValidator()
        var document = try #require(try JSONSerialization.jsonObject(with: Data(OpenAPIDocument.json().utf8)) as? [String: Any])
        var paths = try #require(document["paths"] as? [String: Any])
        var health = try #require(paths["/api/health"] as? [String: Any])
        health["get"] = ["responses": ["200": ["content": [:]]]]
        paths["/api/health"] = health
        document["paths"] = paths
        try await withTemporaryDirectory { directory in
            let file = directory.sub("broken.json")
            try JSONSerialization.data(withJSONObject: document).write(to: URL(fileURLWithPath: file))
            let result = try await runProcess(validator, ["--errors", "all", file])
            #expect(result.status != 0)
            #expect((result.stdout + result.stderr).contains("description"), "\(result.stdout) \(result.stderr)")
        }
    }

    /// One bounded schemathesis run per role against a real `tally-server` process on a fresh
    /// log with a few events of every kind; any failing check fails the test with the failing
    /// cases. The server is a process of its own, not the test process's live server: the
    /// other tests' CPU-bound work holds both threads of this process's cooperative pool for
    /// seconds at a time (a stall watchdog caught 5–7 s, in a Merkle reference fold and in
    /// array comparisons), and an in-process server then answered nothing until schemathesis's
    /// read timeout.
    @Test func schemathesisFindsNoServerErrorAndNoSchemaViolation() async throws {
        let st = try ExternalTools.schemathesis()
        try await withTemporaryDirectory { directory in
            let authority = try await TokenAuthority.hs256(secret: ServerLifecycleTests.secret)
            let tokens = Tokens(
                alice: try await authority.mint(subject: APIFixture.alice, role: .user),
                service: try await authority.mint(subject: "scraper-1", role: .service),
                admin: try await authority.mint(subject: "root", role: .admin),
                auditor: try await authority.mint(subject: "auditor-1", role: .auditor)
            )
            let server = try ServerLifecycleTests.ServerProcess(dataDir: directory.sub("data"), logDir: directory.path, run: 1)
            do {
                let base = try await server.url()
                try await Self.seed(base, tokens)
                for (role, token) in [("user", tokens.alice), ("service", tokens.service), ("admin", tokens.admin), ("auditor", tokens.auditor)] {
                    let junit = directory.sub("\(role).xml")
                    let result = try await runProcess(st, [
                        "run", base + "/openapi.json", "--url", base, "--header", "Authorization: Bearer \(token)",
                        "--checks", Self.checks.joined(separator: ","), "--phases", "examples,coverage,fuzzing",
                        "--max-examples", "20", "--max-time", "12", "--seed", "13", "--request-timeout", "15",
                        "--generation-database", "none", "--no-color", "--exclude-path", "/api/v1/live", "--report", "junit", "--report-junit-path", junit,
                    ], environment: ["PATH": "/usr/bin:/bin", "HOME": directory.sub("home")])
                    let xml = (try? String(contentsOfFile: junit, encoding: .utf8)) ?? ""
                    let failures = JUnitReport.failures(xml)
                    #expect(result.status == 0 && failures.isEmpty && xml.contains("<testcase"), """
                        schemathesis as \(role) (exit \(result.status)): \(failures.count) failing operations
                        \(failures.joined(separator: "\n"))
                        \(result.stdout.suffix(6_000))
                        \(result.stderr.suffix(2_000))
                        """)
                }
            } catch {
                _ = try? await server.terminate()
                throw error
            }
            #expect(try await server.terminate() == 0, "\(server.stderr.suffix(4_000))")
        }
    }

    struct Tokens {
        var alice, service, admin, auditor: String
    }

    static let checks = [
        "not_a_server_error", "status_code_conformance", "content_type_conformance", "response_schema_conformance",
        "response_headers_conformance",
    ]

    /// A few events of every kind, so the views and the audit routes have something to show.
    static func seed(_ base: String, _ tokens: Tokens) async throws {
        let client = HTTPClient.shared
        func post(_ path: String, _ token: String, _ body: String?) async throws -> Int {
            try await ServerLifecycleTests.call(client, .POST, base + path, token: token, body: body).0
        }
        #expect(try await post("/api/v1/credits/grant", tokens.admin, #"{"user":"\#(APIFixture.alice)","amount":5,"reason":"seed"}"#) == 200)
        #expect(try await post("/api/v1/creator/search/natgeo", tokens.alice, #"{"served_from":"cache","duration_ms":12,"found":true}"#) == 200)
        #expect(try await post("/api/v1/creator/unlock/natgeo", tokens.alice, nil) == 200)
        let reports = [
            ("profiles", #"{"events":[{"type":"ProfileRefreshed","data":{"username":"natgeo","followers":1,"following":2,"posts_count":3,"verified":true,"category":"nature"}}]}"#),
            ("analysis", #"{"events":[{"type":"PostAnalysisFailed","data":{"username":"natgeo","post_id":"p1","error":"x","duration_ms":1}}]}"#),
            ("cdn", #"{"events":[{"type":"CdnJobQueued","data":{"job_id":"j1","priority":"low","kind":"avatar"}}]}"#),
            ("health", #"{"events":[{"type":"HealthSampled","data":{"component":"ai-worker","status":"degraded","memory_pct":95,"cpu_pct":20,"disk_pct":10,"latency_ms":3.5}}]}"#),
        ]
        for (endpoint, body) in reports {
            #expect(try await post("/api/v1/events/\(endpoint)", tokens.service, body) == 201, "\(endpoint)")
        }
    }
}

/// The failing test cases of a JUnit report as schemathesis writes it: one `<testcase>` per
/// operation, with a `<failure>` or `<error>` per failing check.
enum JUnitReport {
    static func failures(_ xml: String) -> [String] {
        var found: [String] = []
        for chunk in xml.components(separatedBy: "<testcase").dropFirst() {
            let testCase = chunk.components(separatedBy: "</testcase>").first ?? chunk
            guard testCase.contains("<failure") || testCase.contains("<error") else { continue }
            let name = attribute("name", in: testCase) ?? "?"
            let messages = testCase.components(separatedBy: "<failure").dropFirst().map { String($0.prefix(1_500)) }
                + testCase.components(separatedBy: "<error").dropFirst().map { String($0.prefix(1_500)) }
            found.append("\(name): " + messages.joined(separator: "\n  "))
        }
        return found
    }

    static func attribute(_ name: String, in element: String) -> String? {
        guard let start = element.range(of: " \(name)=\"") ?? element.range(of: "\(name)=\"") else { return nil }
        let rest = element[start.upperBound...]
        return rest.firstIndex(of: "\"").map { String(rest[..<$0]) }
    }
}

extension ExternalTools {
    static func schemathesis() throws -> String {
        try venvTool("TALLY_TEST_SCHEMATHESIS", "st", package: "schemathesis")
    }

    static func openAPIValidator() throws -> String {
        try venvTool("TALLY_TEST_OPENAPI_VALIDATOR", "openapi-spec-validator", package: "openapi-spec-validator")
    }

    /// The tool `make test` names in `variable`, or the one in `.build/venv`; else a failure
    /// that says how to get it.
    static func venvTool(_ variable: String, _ name: String, package: String) throws -> String {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment[variable], !path.isEmpty { return path }
        let venv = repositoryRoot + "/.build/venv/bin/" + name
        if FileManager.default.isExecutableFile(atPath: venv) { return venv }
        throw TestFailure("\(name) not found: run `make test` (it installs \(package) into .build/venv), or set \(variable)")
    }
}
