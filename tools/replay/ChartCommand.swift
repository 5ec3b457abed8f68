import ArgumentParser
import EventLog
import Events
import Foundation
import Projections

/// `replay chart`: the `replay stats --every` series drawn as an SVG a person can open,
/// without a server: one panel per figure, each with its own scale, the counts per interval
/// (the difference between the stats as of its end and as of its start).
struct Chart: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Draw the `replay stats --every` series as an SVG (counts per interval).",
        discussion: """
            Folds the stats as of each interval's end in one pass from the nearest checkpoint \
            (as `replay stats --every`) and draws, per interval, the searches, cache hits, \
            unlocks, credits spent, analyses completed and failed, and CDN jobs queued and \
            failed: one panel and one path per series. --from defaults to the first event's \
            interval, --until to the end of the last event's; at most 10000 intervals. The \
            file is written whole (to a temporary name, then renamed) only once the series is \
            folded. Exit 2 when the log cannot be read, 64 on bad usage.
            """
    )

    @OptionGroup var target: LogOption
    @OptionGroup var checkpoints: CheckpointOptions
    @Option(help: "One point per interval of event time: 1h, 1d, or N followed by m, h or d.") var every: Interval
    @Option(help: "Where the first interval starts (ISO 8601 UTC or a date).") var from: String?
    @Option(help: "Where the last interval ends (exclusive; ISO 8601 UTC or a date).") var until: String?
    @Option(help: "The SVG file to write.") var out: String

    func validate() throws {
        let start = try from.map { try EventSelection.time($0, option: "--from") }
        let end = try until.map { try EventSelection.time($0, option: "--until") }
        if let start, let end, start >= end { throw ValidationError("--from must be before --until") }
        guard out.hasSuffix(".svg") else { throw ValidationError("--out must name an .svg file") }
        let directory = (out as NSString).deletingLastPathComponent
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.isEmpty ? "." : directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ValidationError("--out \(out): the directory \(directory) does not exist")
        }
    }

    func run() async throws {
        let store = try target.open()
        let head: LogPosition
        let span: (Int64, Int64)?
        do {
            head = try await store.head().position
            span = try await firstAndLastTimes(store, head: head)
        } catch {
            throw target.unreadable("cannot read the log at \(target.name)", error)
        }
        let start = try from.map { try EventSelection.time($0, option: "--from") } ?? span.map { SeriesPlan.floor($0.0, every) }
        let end = try until.map { try EventSelection.time($0, option: "--until") } ?? span.map { SeriesPlan.floor($0.1, every) + every.micros }
        guard let start, let end else { throw ValidationError("the log at \(target.name) holds no event: give --from and --until to draw an empty chart") }
        let intervals = try SeriesPlan.intervals(from: start, until: end, every: every)
        guard !intervals.isEmpty else { throw ValidationError("--from must be before --until") }
        let progress = Progress(label: "chart", total: head)
        let answer: AsOfSeries.Answer<SystemStats>
        do {
            // One more row, as of the first interval's start: the baseline of the first count.
            answer = try await AsOfSeries.fold(SystemStatsProjection.self, from: store, checkpoints: checkpoints.store(for: target),
                                               ends: [start] + intervals.map(\.end)) { progress.update($0) }
        } catch {
            progress.finish()
            throw target.unreadable("cannot read the log at \(target.name)", error)
        }
        progress.finish()
        reportRefused(answer.refused)
        try await store.close()
        let views = answer.rows.map(\.view)
        let svg = StatsChartSVG.render(title: "\(target.name), per \(every.text)", starts: intervals.map(\.start), end: end,
                                       series: StatsChartSVG.series(views))
        let temporary = out + ".partial"
        do {
            try Data(svg.utf8).write(to: URL(fileURLWithPath: temporary))
            guard rename(temporary, out) == 0 else { throw CocoaError(.fileWriteUnknown) }
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            printError("cannot write \(out): \(error)")
            throw ReplayExit.unreadable
        }
        writeLine(1, "wrote \(out): \(intervals.count) intervals, \(StatsChartSVG.seriesNames.count) series")
    }
}

/// The chart as SVG text: pure, so a test can check its shape without a log.
enum StatsChartSVG {
    static let seriesNames = ["searches", "cache hits", "unlocks", "credits spent", "analyses completed", "analyses failed", "CDN queued", "CDN failed"]

    /// Per-interval counts from views as of each bound (`views[0]` as of the first start).
    static func series(_ views: [SystemStats]) -> [(name: String, values: [Int64])] {
        let figures: [(SystemStats) -> Int64] = [
            { $0.searches.total }, { $0.searches.cacheHits }, { $0.unlocks.total }, { $0.credits.spent },
            { $0.analyses.completed }, { $0.analyses.failed }, { $0.cdn.queued }, { $0.cdn.failed },
        ]
        return zip(seriesNames, figures).map { name, figure in
            (name, zip(views, views.dropFirst()).map { figure($1) - figure($0) })
        }
    }

    static let width = 900.0
    static let panel = 110.0
    static let left = 70.0
    static let right = 20.0

    static func render(title: String, starts: [Int64], end: Int64, series: [(name: String, values: [Int64])]) -> String {
        let height = 40 + panel * Double(series.count) + 30
        var svg = """
            <?xml version="1.0" encoding="UTF-8"?>
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="11">
            <rect width="100%" height="100%" fill="#ffffff"/>
            <text x="\(left)" y="24" font-size="14" font-weight="bold">\(escape(title))</text>

            """
        let n = starts.count
        let plotWidth = width - left - right
        for (index, entry) in series.enumerated() {
            let top = 40 + panel * Double(index)
            let bottom = top + panel - 28
            let maxValue = max(1, entry.values.max() ?? 0)
            func x(_ i: Int) -> Double { left + (n <= 1 ? plotWidth / 2 : plotWidth * Double(i) / Double(n - 1)) }
            func y(_ v: Int64) -> Double { bottom - (bottom - top - 10) * Double(max(0, v)) / Double(maxValue) }
            svg += "<text x=\"\(left)\" y=\"\(fmt(top + 8))\" font-weight=\"bold\">\(escape(entry.name))</text>\n"
            svg += "<text x=\"\(fmt(left - 6))\" y=\"\(fmt(top + 14))\" text-anchor=\"end\">\(maxValue)</text>\n"
            svg += "<text x=\"\(fmt(left - 6))\" y=\"\(fmt(bottom))\" text-anchor=\"end\">0</text>\n"
            svg += "<line x1=\"\(left)\" y1=\"\(fmt(bottom))\" x2=\"\(fmt(width - right))\" y2=\"\(fmt(bottom))\" stroke=\"#aab2c0\"/>\n"
            var d = ""
            for (i, value) in entry.values.enumerated() { d += (i == 0 ? "M" : "L") + fmt(x(i)) + "," + fmt(y(value)) }
            // One interval: a level line across the panel, so the point is visible.
            if n == 1, let only = entry.values.first { d = "M" + fmt(left) + "," + fmt(y(only)) + "L" + fmt(width - right) + "," + fmt(y(only)) }
            svg += "<path class=\"series\" data-series=\"\(escape(entry.name))\" d=\"\(d)\" fill=\"none\" stroke=\"#3d5a99\" stroke-width=\"1.5\"/>\n"
        }
        if let first = starts.first {
            let axis = 40 + panel * Double(series.count)
            svg += "<text x=\"\(left)\" y=\"\(fmt(axis))\">\(EventTime.iso8601(micros: first))</text>\n"
            svg += "<text x=\"\(fmt(width - right))\" y=\"\(fmt(axis))\" text-anchor=\"end\">until \(EventTime.iso8601(micros: end))</text>\n"
        }
        return svg + "</svg>\n"
    }

    static func fmt(_ v: Double) -> String { format(v, decimals: 1) }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;")
    }
}
