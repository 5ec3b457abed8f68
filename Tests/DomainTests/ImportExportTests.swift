import ArgumentParser
import EventLog
import Events
import Foundation
import TallyTestSupport
import Testing
@testable import replay

/// `replay export`, `inspect` and `import`: export → import → export gives the same lines;
/// CSV has a header and a row per event; filters select what they say; a bad line stops
/// the import (everything before it written, nothing after) unless --skip-invalid.
@Suite(.timeLimit(.minutes(5))) struct ImportExportTests {
    static let start: Int64 = 1_795_615_387_000_000

    /// A log holding every sample, interleaved over streams, some appends multi-stream with
    /// an idempotency key, and two opaque events (an unknown type and a newer schema).
    static func writeFixture(_ directory: String) async throws -> Int {
        let log = try FileLog(directory: directory, options: .init(fsync: .never))
        var time = start
        func proposed(_ event: DomainEvent) -> ProposedEvent {
            time += 1_000_000
            return event.proposed(actor: "user:42", correlationID: "c\(time % 1_000)", causationID: "", recordedAt: time)
        }
        var count = 0
        for round in 0..<3 {
            for (i, event) in CatalogueSamples.events.enumerated() {
                let key = i % 7 == 3 ? "k-\(round)-\(i)" : nil
                var appends = [StreamAppend(stream: event.stream, events: [proposed(event)])]
                if key != nil {
                    let other = CatalogueSamples.events[(i + 5) % CatalogueSamples.events.count]
                    if other.stream != event.stream {
                        appends.append(StreamAppend(stream: other.stream, events: [proposed(other), proposed(other)]))
                    }
                }
                _ = try await log.append(appends, idempotencyKey: key)
                count += appends.reduce(0) { $0 + $1.events.count }
            }
            time += 1_000_000
            _ = try await log.append(to: "legacy-\(round)", events: [
                ProposedEvent(type: "LegacyThing", schemaVersion: 1, recordedAt: time, payload: [1, 2, UInt8(round)]),
                ProposedEvent(type: "CreditsGranted", schemaVersion: 9, recordedAt: time, actor: "svc", payload: [9, 9]),
            ])
            count += 2
        }
        try await log.close()
        return count
    }

    static func withDirectory(_ body: (String) async throws -> Void) async throws {
        try await withTemporaryDirectory("import") { try await body($0.path) }
    }

    static func export(_ arguments: [String]) async throws -> String {
        var output = LineOutput(descriptor: nil)
        try await ExportCommand.parse(arguments).execute(into: &output)
        return output.text
    }

    static func inspect(_ arguments: [String]) async throws -> [String] {
        var output = LineOutput(descriptor: nil)
        try await InspectCommand.parse(arguments).execute(into: &output)
        return output.text.split(separator: "\n").map(String.init)
    }

    static func importFile(_ arguments: [String]) async throws -> (ImportSummary, [(Int, String)]) {
        var reports: [(Int, String)] = []
        let summary = try await ImportCommand.parse(arguments).execute { reports.append(($0, $1)) }
        return (summary, reports)
    }

    static func write(_ path: String, _ text: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    /// A line without its position and version, which import reassigns.
    static func placeless(_ line: some StringProtocol) throws -> JSONValue.Object {
        var object = try #require(try JSONParser.parse(String(line), maxBytes: 1 << 20).objectValue)
        object["position"] = nil
        object["version"] = nil
        return object
    }

    @Test func exportImportExportIsIdentical() async throws {
        try await Self.withDirectory { dir in
            let count = try await Self.writeFixture(dir + "/source")
            let exported = try await Self.export(["--log", dir + "/source", "--format", "jsonl"])
            let lines = exported.split(separator: "\n")
            #expect(lines.count == count)
            #expect(lines.contains { $0.contains("\"idempotency_key\":\"k-1-3\"") })
            #expect(lines.filter { $0.contains("\"data\":null,\"opaque\":{\"reason\":") }.count == 6)
            try Self.write(dir + "/events.jsonl", exported)
            for batch in ["1", "3", "10000"] {
                let target = dir + "/copy-\(batch)"
                let (summary, reports) = try await Self.importFile(["--log", target, dir + "/events.jsonl", "--batch", batch])
                #expect(reports.isEmpty, "\(reports)")
                #expect(summary.events == count && summary.lines == count && summary.skipped == 0 && summary.deduplicated == 0)
                #expect(summary.headPosition == LogPosition(count))
                let again = try await Self.export(["--log", target])
                #expect(again == exported, "batch \(batch)")
            }
            // A copy keeps idempotency keys: repeating a key of the source writes nothing.
            let copy = try FileLog(directory: dir + "/copy-3", options: .init(fsync: .never))
            let repeated = try await copy.append(to: "user-42", events: [CatalogueSamples.events[0].proposed()], idempotencyKey: "k-0-3")
            #expect(repeated.deduplicated)
            try await copy.close()
        }
    }

    @Test func importIntoANonEmptyLogKeepsOrderAndDeduplicatesKeys() async throws {
        try await Self.withDirectory { dir in
            let count = try await Self.writeFixture(dir + "/source")
            let exported = try await Self.export(["--log", dir + "/source"])
            try Self.write(dir + "/events.jsonl", exported)
            _ = try await Self.importFile(["--log", dir + "/target", dir + "/events.jsonl"])
            let (summary, _) = try await Self.importFile(["--log", dir + "/target", dir + "/events.jsonl", "--batch", "7"])
            let keyed = exported.split(separator: "\n").filter { $0.contains("\"idempotency_key\"") }
            #expect(summary.deduplicated == keyed.count && summary.events == count - keyed.count)
            #expect(summary.headPosition == LogPosition(2 * count - keyed.count))
            let tail = try await Self.inspect(["--log", dir + "/target", "--from-position", "\(count + 1)"])
            let expected = try exported.split(separator: "\n").filter { !$0.contains("\"idempotency_key\"") }.map(Self.placeless)
            #expect(try tail.map(Self.placeless) == expected)
        }
    }

    /// RFC 4180 records of `text`: fields split on commas outside quotes, "" as a quote.
    static func csvRecords(_ text: String) -> [[String]] {
        var records: [[String]] = []
        var fields: [String] = []
        var field = ""
        var quoted = false
        var chars = Array(text)[...]
        while let c = chars.popFirst() {
            if quoted {
                if c == "\"" {
                    if chars.first == "\"" { field.append(chars.removeFirst()) } else { quoted = false }
                } else {
                    field.append(c)
                }
            } else if c == "\"" {
                quoted = true
            } else if c == "," {
                fields.append(field)
                field = ""
            } else if c == "\r\n" {
                fields.append(field)
                records.append(fields)
                fields = []
                field = ""
            } else {
                field.append(c)
            }
        }
        return records
    }

    @Test func csvHasAHeaderAndOneRowPerEvent() async throws {
        try await Self.withDirectory { dir in
            let count = try await Self.writeFixture(dir + "/log")
            let csv = try await Self.export(["--log", dir + "/log", "--format", "csv"])
            let records = Self.csvRecords(csv)
            #expect(csv.hasSuffix("\r\n"))
            #expect(records.count == count + 1)
            #expect(records.first == EventLine.keys)
            let lines = try await Self.inspect(["--log", dir + "/log"])
            for (row, line) in zip(records.dropFirst(), lines) {
                let object = try #require(try JSONParser.parse(line, maxBytes: 1 << 20).objectValue)
                #expect(row.count == EventLine.keys.count)
                #expect(row[0] == "\(object["position"]!)" && row[1] == object["stream"]?.stringValue && row[5] == object["recorded_at"]?.stringValue)
                #expect(try JSONParser.parse(row[10], maxBytes: 1 << 20) == object["data"])
                #expect(row[11].isEmpty == (object["opaque"] == nil))
            }
            let until = try await Self.export(["--log", dir + "/log", "--format", "csv", "--until-position", "4"])
            #expect(Self.csvRecords(until).count == 5)
        }
    }

    @Test func inspectAndExportSelectWhatTheySay() async throws {
        try await Self.withDirectory { dir in
            let log = dir + "/log"
            let count = try await Self.writeFixture(log)
            let all = try await Self.inspect(["--log", log])
            let objects = try all.map { try #require(try JSONParser.parse($0, maxBytes: 1 << 20).objectValue) }
            #expect(objects.count == count)
            #expect(objects.map { $0["position"] } == (1...count).map { .integer(Int64($0)) })
            func expectSelection(_ arguments: [String], _ keep: (JSONValue.Object) -> Bool, sourceLocation: SourceLocation = #_sourceLocation) async throws {
                let got = try await Self.inspect(["--log", log] + arguments)
                let want = zip(all, objects).filter { keep($0.1) }.map(\.0)
                #expect(got == want, "\(arguments)", sourceLocation: sourceLocation)
            }
            try await expectSelection(["--stream", "health-database"]) { $0["stream"] == "health-database" }
            try await expectSelection(["--stream", "user-42", "--type", "ProfileUnlocked"]) { $0["stream"] == "user-42" && $0["type"] == "ProfileUnlocked" }
            try await expectSelection(["--type", "CdnJobFailed", "--type", "LegacyThing", "--allow-unknown-type"]) { $0["type"] == "CdnJobFailed" || $0["type"] == "LegacyThing" }
            #expect(throws: (any Error).self) { try InspectCommand.parse(["--log", log, "--type", "LegacyThing"]) }
            try await expectSelection(["--until-position", "30"]) { $0["position"]!.int64Value! <= 30 }
            try await expectSelection(["--from-position", "10", "--until-position", "20"]) { (10...20).contains($0["position"]!.int64Value!) }
            try await expectSelection(["--from-position", "40"]) { $0["position"]!.int64Value! >= 40 }
            try await expectSelection(["--stream", "user-42", "--from-position", "30"]) { $0["stream"] == "user-42" && $0["position"]!.int64Value! >= 30 }
            let since = EventTime.iso8601(micros: Self.start + 10_000_000)
            let until = EventTime.iso8601(micros: Self.start + 20_000_000)
            try await expectSelection(["--since", since, "--until", until]) { ($0["recorded_at"]!.stringValue! >= since) && $0["recorded_at"]!.stringValue! < until }
            #expect(try await Self.inspect(["--log", log, "--limit", "3"]) == Array(all.prefix(3)))
            #expect(try await Self.inspect(["--log", log, "--stream", "user-42", "--limit", "2"]).count == 2)
            #expect(try await Self.inspect(["--log", log, "--stream", "user-nobody"]).isEmpty)
            #expect(try await Self.inspect(["--log", log, "--since", "2030-01-01"]).isEmpty)
            let exportUntil = try await Self.export(["--log", log, "--until", until]).split(separator: "\n").map(String.init)
            #expect(exportUntil == zip(all, objects).filter { $0.1["recorded_at"]!.stringValue! < until }.map(\.0))
            // export takes the same range options as inspect, with the same meaning.
            let exportWindow = try await Self.export(["--log", log, "--since", since, "--until", until, "--from-position", "12"])
            let inspectWindow = try await Self.inspect(["--log", log, "--since", since, "--until", until, "--from-position", "12"])
            #expect(exportWindow.split(separator: "\n").map(String.init) == inspectWindow && !inspectWindow.isEmpty)
            #expect(throws: (any Error).self) { try InspectCommand.parse(["--log", log, "--since", "tomorrow"]) }
            #expect(throws: (any Error).self) { try InspectCommand.parse(["--log", log, "--since", until, "--until", since]) }
            #expect(throws: (any Error).self) { try ExportCommand.parse(["--log", log, "--until", until, "--until-position", "3"]) }
        }
    }

    /// Ten good lines of the fixture's export with lines 6 and 8 broken.
    static func fileWithBadLines(_ dir: String) async throws -> [Substring] {
        _ = try await writeFixture(dir + "/source")
        var lines = Array(try await export(["--log", dir + "/source"]).split(separator: "\n").prefix(10))
        try #require(lines.count == 10, "the fixture's export was cut short")
        lines[5] = lines[5].dropLast()
        lines[7] = Substring(lines[7].replacingOccurrences(of: "\"stream\":", with: "\"extra\":1,\"stream\":"))
        try write(dir + "/bad.jsonl", lines.joined(separator: "\n") + "\n")
        return lines
    }

    @Test func aBadLineStopsTheImportAndNothingAfterItIsWritten() async throws {
        try await Self.withDirectory { dir in
            let lines = try await Self.fileWithBadLines(dir)
            let (summary, reports) = try await Self.importFile(["--log", dir + "/target", dir + "/bad.jsonl", "--batch", "2"])
            #expect(reports.map(\.0) == [6, 8])
            #expect(reports.first?.1.contains("malformed_json") == true && reports.last?.1.contains("unknown key 'extra'") == true, "\(reports)")
            #expect(summary.events == 5 && summary.firstInvalidLine == 6 && summary.invalidLines == 2 && summary.skipped == 0 && summary.lines == 10)
            let written = try await Self.inspect(["--log", dir + "/target"])
            #expect(written == lines.prefix(5).map(String.init))

            let (skipping, skipReports) = try await Self.importFile(["--log", dir + "/skipping", dir + "/bad.jsonl", "--skip-invalid"])
            #expect(skipReports.map(\.0) == [6, 8])
            #expect(skipping.events == 8 && skipping.skipped == 2 && skipping.firstInvalidLine == 6)
            let kept = try await Self.inspect(["--log", dir + "/skipping"])
            #expect(try kept.map(Self.placeless) == lines.enumerated().filter { $0.offset != 5 && $0.offset != 7 }.map { try Self.placeless($0.element) })
        }
    }

    /// Enough lines that parsing is split over tasks: order and line numbers still hold.
    @Test func aLargeFileKeepsOrderAndLineNumbers() async throws {
        try await Self.withDirectory { dir in
            let log = try FileLog(directory: dir + "/source", options: .init(fsync: .never))
            for block in 0..<60 {
                var appends: [StreamAppend] = []
                for i in (block * 100)..<(block * 100 + 100) {
                    let event: DomainEvent = switch i % 3 {
                    case 0: .creditsGranted(CreditsGranted(user: "u\(i % 97)", amount: Int64(i + 1), reason: "r\(i)"))
                    case 1: .profileRefreshed(ProfileRefreshed(username: "p\(i % 89)", followers: Int64(i), following: 1, postsCount: 2, verified: i % 2 == 0, category: "c"))
                    default: .healthSampled(HealthSampled(component: "c\(i % 5)", status: .ok, memoryPct: Double(i % 100), cpuPct: 1.5, diskPct: 2, latencyMs: 3))
                    }
                    let proposed = event.proposed(actor: "a", correlationID: "c\(i)", recordedAt: Self.start + Int64(i))
                    if let at = appends.firstIndex(where: { $0.stream == event.stream }) {
                        appends[at].events.append(proposed)
                    } else {
                        appends.append(StreamAppend(stream: event.stream, events: [proposed]))
                    }
                }
                _ = try await log.append(appends, idempotencyKey: nil)
            }
            try await log.close()
            let exported = try await Self.export(["--log", dir + "/source"])
            var lines = exported.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
            // Required, not expected: the lines are indexed below, and an export cut short
            // (a suite past its time limit) must fail this test, not trap the test process.
            try #require(lines.count == 6_000)
            try Self.write(dir + "/all.jsonl", exported)
            let (all, _) = try await Self.importFile(["--log", dir + "/all", dir + "/all.jsonl", "--batch", "777"])
            #expect(all.events == 6_000)
            #expect(try await Self.export(["--log", dir + "/all"]) == exported)

            lines[4_320] = "{\"position\":"
            try Self.write(dir + "/bad.jsonl", lines.joined(separator: "\n"))
            let (stopped, reports) = try await Self.importFile(["--log", dir + "/stopped", dir + "/bad.jsonl"])
            #expect(reports.map(\.0) == [4_321] && stopped.events == 4_320 && stopped.lines == 6_000)
            #expect(try await Self.inspect(["--log", dir + "/stopped"]) == Array(lines.prefix(4_320)))
            let (skipped, _) = try await Self.importFile(["--log", dir + "/skipped", dir + "/bad.jsonl", "--skip-invalid"])
            #expect(skipped.events == 5_999 && skipped.skipped == 1)
            let kept = try await Self.inspect(["--log", dir + "/skipped"]).map(Self.placeless)
            #expect(try kept == lines.enumerated().filter { $0.offset != 4_320 }.map { try Self.placeless($0.element) })
        }
    }

    @Test func crlfBlankAndOverlongLines() async throws {
        try await Self.withDirectory { dir in
            let lines = try await Self.export(["--log", try await Self.fixtureLog(dir)]).split(separator: "\n").prefix(3)
            let huge = "{\"stream\":\"" + String(repeating: "x", count: 3 << 20) + "\"}"
            try Self.write(dir + "/mixed.jsonl", "\n" + lines[0] + "\r\n\r\n" + lines[1] + "\n" + huge + "\n" + lines[2])
            let (summary, reports) = try await Self.importFile(["--log", dir + "/target", dir + "/mixed.jsonl", "--skip-invalid"])
            #expect(reports.map(\.0) == [5] && reports.first?.1.contains("bound") == true, "\(reports.map(\.0))")
            #expect(summary.events == 3 && summary.skipped == 1 && summary.lines == 6)
            #expect(try await Self.inspect(["--log", dir + "/target"]) == lines.map(String.init))
        }
    }

    static func fixtureLog(_ dir: String) async throws -> String {
        _ = try await writeFixture(dir + "/source")
        return dir + "/source"
    }

    // MARK: - The binary

    /// Runs the built `replay` to completion.
    static func run(_ arguments: [String], in dir: String) async throws -> ProcessOutput {
        try await runProcess(try builtProduct("replay"), arguments)
    }

    @Test func commandLineExitCodesAndMessages() async throws {
        try await Self.withDirectory { dir in
            _ = try await Self.fileWithBadLines(dir)
            let stopped = try await Self.run(["import", "--log", dir + "/target", dir + "/bad.jsonl"], in: dir)
            #expect(stopped.status == 65, "\(stopped.stderr)")
            #expect(stopped.stderr.contains("line 6: malformed_json") && stopped.stderr.contains("line 8: invalid_field"), "\(stopped.stderr)")
            #expect(stopped.stdout.hasPrefix("{\"events\":5,\"seconds\":") && stopped.stdout.contains("\"skipped\":0"), "\(stopped.stdout)")
            let skipped = try await Self.run(["import", "--log", dir + "/skipped", dir + "/bad.jsonl", "--skip-invalid"], in: dir)
            #expect(skipped.status == 0 && skipped.stdout.contains("\"events\":8") && skipped.stdout.contains("\"skipped\":2"), "\(skipped)")
            let exported = try await Self.run(["export", "--log", dir + "/skipped", "--format", "jsonl"], in: dir)
            #expect(exported.status == 0 && exported.stdout.split(separator: "\n").count == 8)
            let inspected = try await Self.run(["inspect", "--log", dir + "/skipped", "--limit", "1"], in: dir)
            #expect(inspected.status == 0 && inspected.stdout.hasPrefix("{\"position\":1,\"stream\":"))
            #expect(try await Self.run(["import", "--log", dir + "/x", dir + "/missing.jsonl"], in: dir).status == 2)
            #expect(try await Self.run(["inspect", "--log", dir + "/bad.jsonl"], in: dir).status == 2)
            #expect(try await Self.run(["export", "--log", dir + "/skipped", "--format", "xml"], in: dir).status == 64)
            let unknownType = try await Self.run(["inspect", "--log", dir + "/skipped", "--type", "NoSuchType"], in: dir)
            #expect(unknownType.status == 64 && unknownType.stdout.isEmpty, "\(unknownType)")
            #expect(unknownType.stderr.contains("NoSuchType") && unknownType.stderr.contains("ProfileUnlocked") && unknownType.stderr.contains("CircuitBreakerChanged"), "\(unknownType.stderr)")
        }
    }
}
