@testable import API
import EventLog
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Projections
import TallyTestSupport
import Testing

/// `/metrics`: the real statuses of domain errors, Prometheus naming and type conventions,
/// and the exposition as `promtool check metrics` and the official Python parser read it.
/// promtool and the Python parser are found as `make test` provides them; a run without
/// them fails (as the PostgreSQL tests do without their server), it never skips.
@Suite(.timeLimit(.minutes(5)))
struct MetricsExpositionTests {
    // MARK: - Statuses and conventions, in Swift

    @Test func domainErrorsShowTheirRealStatus() async throws {
        try await withAPI { fixture, client in
            let text = try await Self.driveAndScrape(fixture, client)
            let samples = Exposition(text).samples
            func requests(_ route: String, _ status: String) -> Double? {
                samples.first { $0.name == "tally_http_requests_total" && $0.labels["route"] == route && $0.labels["status"] == status }?.value
            }
            #expect(requests("/api/v1/creator/unlock/{username}", "402") == 2, "\(text)")
            #expect(requests("/api/v1/credits/grant", "400") == 3)
            #expect(requests("/api/v1/credits/grant", "200") == 1)
            #expect(requests("/api/v1/system/stats", "401") == 1)
            #expect(requests("NotFound", "404") == 1)
            #expect(!samples.contains { $0.labels["status"] == "500" }, "a 4xx was counted as a 500")
            #expect(!samples.contains { $0.labels.keys.contains("error_type") || $0.name.hasPrefix("hb_") })
            func outcome(_ route: String, _ outcome: String) -> Double? {
                samples.first { $0.name == "tally_command_outcomes_total" && $0.labels["route"] == route && $0.labels["outcome"] == outcome }?.value
            }
            #expect(outcome("/api/v1/creator/unlock/{username}", "insufficient_credits") == 2)
            #expect(outcome("/api/v1/credits/grant", "malformed_body") == 1)
            #expect(outcome("/api/v1/credits/grant", "invalid_input") == 2)
            #expect(outcome("/api/v1/credits/grant", "ok") == 1)
            // Scrape-time totals and views.
            #expect(samples.first { $0.name == "tally_log_events_total" }?.value == 1)
            #expect(samples.first { $0.name == "tally_build_info" }?.labels["version"] == TallyMetrics.version)
            #expect(samples.first { $0.name == "tally_breaker_state" && $0.labels["state"] == "closed" }?.value == 1)
            #expect(samples.contains { $0.name == "tally_projection_lag_seconds" && $0.labels["projection"] == "system-stats" })
            #expect((samples.first { $0.name == "process_resident_memory_bytes" }?.value ?? 0) > 0)
            #expect((samples.first { $0.name == "process_open_fds" }?.value ?? 0) > 0)
            #expect((samples.first { $0.name == "process_start_time_seconds" }?.value ?? 0) > 1_600_000_000)
        }
    }

    @Test func everyFamilyFollowsTheNamingAndTypeConventions() async throws {
        try await withAPI { fixture, client in
            let exposition = Exposition(try await Self.driveAndScrape(fixture, client))
            #expect(exposition.types.count >= 20, "\(exposition.types)")
            for (name, type) in exposition.types {
                #expect(exposition.help[name]?.isEmpty == false, "\(name) has no HELP")
                switch type {
                case "counter": #expect(name.hasSuffix("_total"), "counter \(name) is not named _total")
                case "gauge": #expect(!name.hasSuffix("_total") && !name.hasSuffix("_count") && !name.hasSuffix("_sum"), "gauge \(name) is named like a total")
                case "histogram": #expect(name.hasSuffix("_seconds") || name.hasSuffix("_bytes"), "histogram \(name) has no base unit")
                default: Issue.record("\(name) has type \(type)")
                }
            }
            for sample in exposition.samples {
                #expect(exposition.types[sample.family] != nil, "\(sample.name) belongs to no family with a TYPE")
                #expect(sample.labels["quantile"] == nil, "\(sample.name) has a quantile label")
            }
        }
    }

    /// Every durable fsync lands in the histogram: its count is the fsync total.
    @Test func fsyncsAreAHistogram() async throws {
        try await withFsyncingAPI { fixture, client in
            _ = try await Self.driveAndScrape(fixture, client)
            for amount in 1...3 {
                _ = try await send(client, .post, "/api/v1/credits/grant", token: fixture.adminToken,
                                   body: ["user": "bob", "amount": amount, "reason": "more"])
            }
            let exposition = Exposition(try await Self.scrape(client))
            #expect(exposition.types["tally_log_fsync_duration_seconds"] == "histogram")
            let fsyncs = try #require(exposition.samples.first { $0.name == "tally_log_fsyncs_total" }?.value)
            #expect(fsyncs >= 4)
            #expect(exposition.samples.first { $0.name == "tally_log_fsync_duration_seconds_count" }?.value == fsyncs)
            #expect(exposition.samples.first { $0.name == "tally_log_fsync_duration_seconds_bucket" && $0.labels["le"] == "+Inf" }?.value == fsyncs)
            #expect(exposition.samples.first { $0.name == "tally_log_fsync_unobserved_total" }?.value == 0)
            #expect(exposition.samples.first { $0.name == "tally_log_batches_total" }?.value == 4)
        }
    }

    // MARK: - External checkers

    @Test func promtoolChecksTheExposition() async throws {
        let promtool = try ExternalTools.promtool()
        try await withFsyncingAPI { fixture, client in
            let text = try await Self.driveAndScrape(fixture, client)
            try await withTemporaryDirectory { directory in
                let file = directory.sub("metrics.txt")
                try Data(text.utf8).write(to: URL(fileURLWithPath: file))
                let result = try await runProcess("/bin/sh", ["-c", #""$0" check metrics < "$1""#, promtool, file])
                #expect(result.status == 0, "promtool: \(result.stdout) \(result.stderr)\n\(text)")
                #expect(result.stdout.isEmpty && result.stderr.isEmpty, "promtool found problems: \(result.stdout) \(result.stderr)")
            }
        }
    }

    @Test func theOfficialPythonParserReadsEveryFamily() async throws {
        let python = try ExternalTools.python()
        try await withFsyncingAPI { fixture, client in
            let text = try await Self.driveAndScrape(fixture, client)
            let swiftView = Exposition(text)
            try await withTemporaryDirectory { directory in
                let file = directory.sub("metrics.txt")
                try Data(text.utf8).write(to: URL(fileURLWithPath: file))
                let script = """
                    import json, sys
                    from prometheus_client.parser import text_string_to_metric_families
                    out = {}
                    for family in text_string_to_metric_families(open(sys.argv[1]).read()):
                        out[family.name] = {"type": family.type, "help": family.documentation,
                                            "samples": [[s.name, s.labels, str(s.value)] for s in family.samples]}
                    print(json.dumps(out))
                    """
                let result = try await runProcess(python, ["-c", script, file])
                #expect(result.status == 0, "the parser refused the exposition: \(result.stderr)\n\(text)")
                let parsed = try #require(try JSONSerialization.jsonObject(with: Data(result.stdoutBytes)) as? [String: [String: Any]])
                // The parser names a counter family without `_total`.
                for (name, type) in swiftView.types {
                    let key = type == "counter" ? String(name.dropLast("_total".count)) : name
                    #expect(parsed[key]?["type"] as? String == type, "\(name): \(parsed[key] ?? [:])")
                    #expect((parsed[key]?["help"] as? String)?.isEmpty == false, "\(name) has no help for the parser")
                }
                #expect(parsed.count == swiftView.types.count, "\(parsed.keys.sorted()) vs \(swiftView.types.keys.sorted())")
                let requests = parsed["tally_http_requests"]?["samples"] as? [[Any]] ?? []
                #expect(requests.contains { ($0[1] as? [String: String])?["status"] == "402" && Double($0[2] as? String ?? "") == 2 }, "\(requests)")
            }
        }
    }

    /// docs/metrics.md lists every family the server exposes, with its type.
    @Test func everyFamilyIsDocumented() async throws {
        let docs = try String(contentsOfFile: ExternalTools.repositoryRoot + "/docs/metrics.md", encoding: .utf8)
        var documented: [String: String] = [:]
        for line in docs.split(separator: "\n") where line.hasPrefix("| `") {
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 2 else { continue }
            for name in cells[0].split(separator: "`") where !name.contains(" ") && !name.contains(",") && !name.isEmpty {
                documented[String(name)] = cells[1]
            }
        }
        let table = documented
        try await withFsyncingAPI { fixture, client in
            for (name, type) in Exposition(try await Self.driveAndScrape(fixture, client)).types {
                #expect(table[name] == type, "\(name) (\(type)) is not in docs/metrics.md as such")
            }
        }
    }

    @Test func procStatParses() throws {
        // A command name with a space and a parenthesis, as proc(5) allows.
        let stat = "4242 (tally (srv) x) S 1 4242 4242 0 -1 4194560 3000 0 0 0 250 50 0 0 20 0 9 0 12000 1073741824 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
        let figures = try #require(ProcessFigures.parseStat(stat, ticksPerSecond: 100, pageBytes: 4_096, bootTime: 1_700_000_000))
        #expect(figures.cpuSeconds == 3)
        #expect(figures.startTimeSeconds == 1_700_000_120)
        #expect(figures.virtualBytes == 1_073_741_824)
        #expect(figures.residentBytes == 2_560 * 4_096)
        #expect(ProcessFigures.parseStat("4242 (cut", ticksPerSecond: 100, pageBytes: 4_096, bootTime: 0) == nil)
        #expect(ProcessFigures.parseStat("4242 (x) S 1 2", ticksPerSecond: 100, pageBytes: 4_096, bootTime: 0) == nil)
        #expect(ProcessFigures.parseBootTime("cpu  1 2 3\nbtime 1764547200\nprocesses 9\n") == 1_764_547_200)
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n"
        #expect(ProcessFigures.parseMaxOpenFiles(limits) == 1_024)
        #expect(ProcessFigures.parseMaxOpenFiles("Max open files            unlimited            unlimited            files\n") == nil)
    }

    // MARK: - Helpers

    /// Two 402s, three 400s, a 401, a 404, a grant and a search; then the exposition after a
    /// first scrape (so the scrape-time counters have been raised twice).
    static func driveAndScrape<Store: EventStore>(_ fixture: TallyFixture<Store>, _ client: any TestClientProtocol) async throws -> String {
        _ = try await scrape(client)
        for _ in 0..<2 {
            try expectProblem(try await send(client, .post, "/api/v1/creator/unlock/somebody", token: fixture.aliceToken),
                              .init(code: 402), code: "insufficient_credits")
        }
        try expectProblem(try await send(client, .post, "/api/v1/credits/grant", token: fixture.adminToken, body: "{"),
                          .badRequest, code: "malformed_body")
        for amount in [0, -1] {
            try expectProblem(try await send(client, .post, "/api/v1/credits/grant", token: fixture.adminToken,
                                             body: ["user": "alice", "amount": amount, "reason": "none"]), .badRequest, code: "invalid_input")
        }
        try expectProblem(try await send(client, .get, "/api/v1/system/stats", token: nil), .unauthorized, code: "unauthenticated")
        try expectProblem(try await send(client, .get, "/api/v1/nowhere", token: fixture.aliceToken), .notFound, code: "not_found")
        let grant = try await send(client, .post, "/api/v1/credits/grant", token: fixture.adminToken,
                                   body: ["user": "alice", "amount": 5, "reason": "welcome"])
        #expect(grant.status == .ok, "\(String(buffer: grant.body))")
        // The views have folded the grant before the scrape reads their lag.
        let head = try await fixture.store.head().position
        try await waitUntil("the views reach the head \(head)") {
            fixture.hub.stats.current.position >= head && fixture.hub.unlocked.current.position >= head && fixture.hub.metrics.current.position >= head
        }
        return try await scrape(client)
    }

    static func scrape(_ client: any TestClientProtocol) async throws -> String {
        let response = try await client.execute(uri: "/metrics", method: .get, headers: [:], body: nil)
        #expect(response.status == .ok)
        #expect(response.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
        return String(buffer: response.body)
    }

    /// `withAPI` over a file log that fsyncs every batch.
    func withFsyncingAPI(_ body: @Sendable (TallyFixture<FileLog>, any TestClientProtocol) async throws -> Void) async throws {
        try await withTallyFixture(store: { try FileLog(directory: $0 + "/log", options: .init(fsync: .always)) }) { fixture in
            try await fixture.makeApplication().test(.router) { client in try await body(fixture, client) }
        }
    }
}

/// The text format as far as the tests read it: `# TYPE` and `# HELP` per family, and samples.
struct Exposition {
    struct Sample {
        var name: String
        var labels: [String: String]
        var value: Double
        /// The family: the name without a histogram's `_bucket`, `_sum`, `_count`.
        var family: String
    }

    var types: [String: String] = [:]
    var help: [String: String] = [:]
    var samples: [Sample] = []

    init(_ text: String) {
        for line in text.split(separator: "\n") {
            let words = line.split(separator: " ", maxSplits: 3).map(String.init)
            if line.hasPrefix("# TYPE "), words.count == 4 {
                types[words[2]] = words[3]
            } else if line.hasPrefix("# HELP "), words.count >= 3 {
                help[words[2]] = words.count == 4 ? words[3] : ""
            } else if !line.hasPrefix("#"), let space = line.lastIndex(of: " ") {
                let series = String(line[..<space])
                let value = String(line[line.index(after: space)...])
                let name = String(series.prefix { $0 != "{" })
                var labels: [String: String] = [:]
                if let open = series.firstIndex(of: "{") {
                    // Label values here never hold `",`; good enough for the tests' own output.
                    for pair in series[series.index(after: open)..<series.index(before: series.endIndex)].split(separator: "\",") {
                        let parts = pair.split(separator: "=", maxSplits: 1)
                        if parts.count == 2 { labels[String(parts[0])] = parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
                    }
                }
                var family = name
                for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) && types[name] == nil {
                    let base = String(name.dropLast(suffix.count))
                    if types[base] == "histogram" { family = base }
                }
                samples.append(Sample(name: name, labels: labels, value: Double(value) ?? (value == "+Inf" || value == "inf" ? .infinity : .nan), family: family))
            }
        }
    }
}

/// The external checkers `make test` installs: promtool (Debian's `prometheus` package) and
/// a Python with prometheus-client (the venv under `.build/venv`).
enum ExternalTools {
    static var repositoryRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    static func promtool() throws -> String {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["TALLY_TEST_PROMTOOL"], !path.isEmpty { return path }
        for directory in (environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(directory)/promtool"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw TestFailure("promtool not found: run `make test` (it installs Debian's prometheus package), or set TALLY_TEST_PROMTOOL")
    }

    static func python() throws -> String {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["TALLY_TEST_PYTHON"], !path.isEmpty { return path }
        let venv = repositoryRoot + "/.build/venv/bin/python"
        if FileManager.default.isExecutableFile(atPath: venv) { return venv }
        throw TestFailure("no Python with prometheus-client: run `make test` (it makes .build/venv), or set TALLY_TEST_PYTHON")
    }
}
