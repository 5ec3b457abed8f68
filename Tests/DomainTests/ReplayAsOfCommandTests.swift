import EventLog
import Events
import Foundation
import Projections
import TallyTestSupport
import Testing

/// `replay rebuild` writing checkpoints, `replay stats` as of a point finding them in the
/// log's own `DIR/snapshots` (or `--snapshots`), and `--every` series, through the real binary.
@Suite(.timeLimit(.minutes(5))) struct ReplayAsOfCommandTests {
    typealias Run = ProcessOutput

    static func run(_ arguments: [String], in dir: String) async throws -> Run {
        try await ImportExportTests.run(arguments, in: dir)
    }

    static func json(_ text: String) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8))
        return try #require(object as? [String: Any], "not a JSON object: \(text)")
    }

    static func stats(_ arguments: [String], in dir: String) async throws -> [String: Any] {
        let run = try await run(["stats"] + arguments, in: dir)
        try #require(run.status == 0, "\(arguments): \(run.stderr)")
        return try json(run.stdout)
    }

    static func same(_ a: Any?, _ b: Any?) -> Bool {
        guard let a = a as? NSDictionary, let b = b as? NSDictionary else { return false }
        return a.isEqual(b)
    }

    @Test func statsAsOfStartsFromTheLogsCheckpointsOrTheGivenDirectory() async throws {
        try await ImportExportTests.withDirectory { dir in
            let log = dir + "/log"
            let generated = try await Self.run(["generate", "--log", log, "--events", "20000", "--seed", "3", "--batch", "1000"], in: dir)
            try #require(generated.status == 0, "\(generated.stderr)")
            let rebuilt = try await Self.run(["rebuild", "--log", log, "--checkpoint-every", "3000"], in: dir)
            try #require(rebuilt.status == 0, "\(rebuilt.stderr)")
            let store = CheckpointStore(snapshotDirectory: log + "/snapshots")
            let entries = store.entries(for: SystemStatsProjection.name)
            #expect(entries.count >= 6 && entries.last?.position == 20_000, "\(entries)")
            #expect(store.entries(for: MetricsProjection.name).map(\.position) == entries.map(\.position))
            #expect(try Self.json(rebuilt.stdout)["checkpoints"] as? Int == 2 * entries.count)
            let expectedCheckpoint = try #require(entries.last { $0.position <= 10_000 }).position

            let fileLog = try FileLog(directory: log, options: .init(readOnly: true))
            let full = try await SystemStatsProjection.rebuild(from: fileLog, until: 10_000).projection.makeView()
            try await fileLog.close()
            let fullJSON = try Self.json(String(decoding: try JSONEncoder().encode(full), as: UTF8.self))

            let asOf = try await Self.stats(["--log", log, "--until-position", "10000"], in: dir)
            #expect(asOf["checkpoint"] as? Int == Int(expectedCheckpoint))
            #expect(asOf["position"] as? Int == 10_000)
            #expect(Self.same(asOf["stats"], fullJSON))
            let scratch = try await Self.stats(["--log", log, "--until-position", "10000", "--no-checkpoints"], in: dir)
            #expect(scratch["checkpoint"] == nil)
            #expect(Self.same(scratch["stats"], asOf["stats"]))
            let head = try await Self.stats(["--log", log], in: dir)
            #expect(head["checkpoint"] as? Int == 20_000 && head["position"] as? Int == 20_000)

            // --snapshots overrides the default: an empty directory has none, the moved one has them.
            let empty = try await Self.stats(["--log", log, "--until-position", "10000", "--snapshots", dir + "/none"], in: dir)
            #expect(empty["checkpoint"] == nil && Self.same(empty["stats"], asOf["stats"]))
            try FileManager.default.moveItem(atPath: log + "/snapshots", toPath: dir + "/elsewhere")
            let moved = try await Self.stats(["--log", log, "--until-position", "10000", "--snapshots", dir + "/elsewhere"], in: dir)
            #expect(moved["checkpoint"] as? Int == Int(expectedCheckpoint) && Self.same(moved["stats"], asOf["stats"]))
            let noDefault = try await Self.stats(["--log", log, "--until-position", "10000"], in: dir)
            #expect(noDefault["checkpoint"] == nil)

            // A damaged checkpoint is passed over on stderr; the answer is still exact.
            let chosen = try #require(CheckpointStore(snapshotDirectory: dir + "/elsewhere").entries(for: SystemStatsProjection.name)
                .last { $0.position <= 10_000 })
            var bytes = try Data(contentsOf: URL(fileURLWithPath: chosen.path))
            bytes[bytes.count - 100] ^= 0x01
            try bytes.write(to: URL(fileURLWithPath: chosen.path))
            let damaged = try await Self.run(["stats", "--log", log, "--until-position", "10000", "--snapshots", dir + "/elsewhere"], in: dir)
            #expect(damaged.status == 0)
            #expect(damaged.stderr.contains("passed over checkpoint") && damaged.stderr.contains("checksum"), "\(damaged.stderr)")
            let damagedJSON = try Self.json(damaged.stdout)
            #expect((damagedJSON["checkpoint"] as? Int ?? .max) < Int(expectedCheckpoint))
            #expect(Self.same(damagedJSON["stats"], asOf["stats"]))
        }
    }

    @Test func everyRowsEqualSeparateAsOfAnswersInJSONLinesAndCSV() async throws {
        try await ImportExportTests.withDirectory { dir in
            let log = dir + "/log"
            let generated = try await Self.run(["generate", "--log", log, "--events", "12000", "--seed", "4", "--batch", "500"], in: dir)
            try #require(generated.status == 0, "\(generated.stderr)")
            let rebuilt = try await Self.run(["rebuild", "--log", log, "--checkpoint-every", "2000"], in: dir)
            try #require(rebuilt.status == 0, "\(rebuilt.stderr)")

            let series = try await Self.run(["stats", "--log", log, "--every", "5m"], in: dir)
            try #require(series.status == 0, "\(series.stderr)")
            let rows = try series.stdout.split(separator: "\n").map { try Self.json(String($0)) }
            try #require(rows.count >= 5, "\(series.stdout.prefix(500))")
            for row in [rows[0], rows[rows.count / 2], rows[rows.count - 1]] {
                let until = try #require(row["until"] as? String)
                let separate = try await Self.stats(["--log", log, "--until", until, "--no-checkpoints"], in: dir)
                #expect(Self.same(row["stats"], separate["stats"]), "until \(until)")
                #expect(row["position"] as? Int == separate["position"] as? Int, "until \(until)")
            }
            #expect(rows.last?["position"] as? Int == 12_000)
            // Rows follow each other: each starts where the previous ended.
            for (a, b) in zip(rows, rows.dropFirst()) { #expect(a["until"] as? String == b["from"] as? String) }

            let csv = try await Self.run(["stats", "--log", log, "--every", "5m", "--format", "csv"], in: dir)
            try #require(csv.status == 0, "\(csv.stderr)")
            let lines = csv.stdout.split(separator: "\r\n").map(String.init)
            #expect(lines.count == rows.count + 1)
            #expect(lines.first?.hasPrefix("from,until,position,profiles.total,") == true)
            let columns = lines[1].split(separator: ",", omittingEmptySubsequences: false)
            #expect(columns.count == lines[0].split(separator: ",").count)
            #expect(Int(columns[2]) == rows[0]["position"] as? Int)

            // Bounded: too many rows is a usage error, and so is a bad interval.
            let tooMany = try await Self.run(["stats", "--log", log, "--every", "1m", "--from", "2000-01-01", "--until", "2030-01-01"], in: dir)
            #expect(tooMany.status == 64 && tooMany.stderr.contains("at most 10000"), "\(tooMany.stderr)")
            let badInterval = try await Self.run(["stats", "--log", log, "--every", "1w"], in: dir)
            #expect(badInterval.status == 64, "\(badInterval.stderr)")
            let mixed = try await Self.run(["stats", "--log", log, "--every", "1h", "--until-position", "5"], in: dir)
            #expect(mixed.status == 64, "\(mixed.stderr)")
        }
    }
}
