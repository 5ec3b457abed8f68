import EventLog
import Events
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import TallyTestSupport
import Testing

/// `replay chart` through the real binary: a well-formed SVG with one path per series whose
/// points are the `replay stats --every` rows' differences, and bad input refused before
/// anything is written.
@Suite(.timeLimit(.minutes(5))) struct ReplayChartTests {
    static func run(_ arguments: [String], in dir: String) async throws -> ProcessOutput {
        try await ImportExportTests.run(arguments, in: dir)
    }

    @Test func chartWritesOnePathPerSeriesWithThePointsOfStatsEvery() async throws {
        try await ImportExportTests.withDirectory { dir in
            let log = dir + "/log"
            let generated = try await Self.run(["generate", "--log", log, "--events", "3000", "--seed", "7"], in: dir)
            #expect(generated.status == 0, "\(generated)")
            let out = dir + "/chart.svg"
            let chart = try await Self.run(["chart", "--log", log, "--every", "1m", "--out", out], in: dir)
            #expect(chart.status == 0, "\(chart)")
            let data = try Data(contentsOf: URL(fileURLWithPath: out))
            let elements = try #require(SVGElements.parse(data), "not well-formed XML")
            #expect(elements.first?.name == "svg")
            let paths = elements.filter { $0.name == "path" }.map(\.attributes)
            #expect(paths.count == 8, "\(paths.count) paths")
            // The points of the searches path are the per-minute differences of `stats --every`.
            let every = try await Self.run(["stats", "--log", log, "--every", "1m", "--format", "csv"], in: dir)
            let lines = every.stdout.split(separator: "\r\n").map(String.init)
            let header = lines[0].split(separator: ",").map(String.init)
            let column = try #require(header.firstIndex(of: "searches.total"))
            let totals = lines.dropFirst().map { Int($0.split(separator: ",", omittingEmptySubsequences: false)[column])! }
            let counts = zip([0] + totals, totals).map { $1 - $0 }
            let searches = try #require(paths.first { $0["data-series"] == "searches" })
            let points = (searches["d"] ?? "").split(whereSeparator: { $0 == "M" || $0 == "L" })
            #expect(counts.count > 3 && points.count == counts.count, "\(points.count) points, \(counts.count) rows")
            // The highest point is the largest count: y is smallest where the count is largest.
            let ys = points.compactMap { Double($0.split(separator: ",")[1]) }
            #expect(ys.firstIndex(of: ys.min()!) == counts.firstIndex(of: counts.max()!))
            for path in paths { #expect((path["d"] ?? "").hasPrefix("M") && path["class"] == "series") }
        }
    }

    @Test func chartRefusesBadInputAndWritesNothing() async throws {
        try await ImportExportTests.withDirectory { dir in
            let log = dir + "/log"
            #expect(try await Self.run(["generate", "--log", log, "--events", "200", "--seed", "3"], in: dir).status == 0)
            let out = dir + "/c.svg"
            let cases: [([String], Int32, String)] = [
                (["--every", "1w", "--out", out], 64, "every"),
                (["--every", "1h", "--out", dir + "/c.png"], 64, ".svg"),
                (["--every", "1h", "--out", dir + "/missing/c.svg"], 64, "does not exist"),
                (["--every", "1h", "--from", "2026-01-02", "--until", "2026-01-01", "--out", out], 64, "before"),
                (["--every", "1m", "--from", "2020-01-01", "--until", "2026-01-01", "--out", out], 64, "at most 10000"),
                (["--every", "1h", "--from", "yesterday", "--out", out], 64, "ISO 8601"),
            ]
            for (arguments, status, message) in cases {
                let run = try await Self.run(["chart", "--log", log] + arguments, in: dir)
                #expect(run.status == status && run.stderr.contains(message), "\(arguments): \(run)")
                #expect(!FileManager.default.fileExists(atPath: out) && !FileManager.default.fileExists(atPath: out + ".partial"))
            }
            let missing = try await Self.run(["chart", "--log", dir + "/nothing", "--every", "1h", "--out", out], in: dir)
            #expect(missing.status == 2 && !FileManager.default.fileExists(atPath: out), "\(missing)")
        }
    }
}

/// The elements of an XML document in order, with their attributes; nil when it is not
/// well-formed.
final class SVGElements: NSObject, XMLParserDelegate {
    var elements: [(name: String, attributes: [String: String])] = []

    static func parse(_ data: Data) -> [(name: String, attributes: [String: String])]? {
        let parser = XMLParser(data: data)
        let collector = SVGElements()
        parser.delegate = collector
        return parser.parse() ? collector.elements : nil
    }

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]) {
        elements.append((name, attributes))
    }
}
