import Events
import Projections

/// The series endpoints' query rules, as pure functions: what a range and an interval mean,
/// and the bounds that keep one request's work small. Every refusal is an `APIError` naming
/// the parameter, before anything is read.
enum SeriesQuery {
    /// The most rows a stats series answers (each row is a view as of its end).
    static let maximumStatsRows = 1_000
    /// Stats series requests in flight (one folds, the others wait for it); past it, `busy`.
    static let maximumConcurrentStatsFolds = 2

    /// `every`: `N` followed by m, h or d (15m, 1h, 1d), N in 1...10000; the interval in µs.
    static func interval(_ text: String) throws -> Int64 {
        guard let unit = text.last, let count = Int64(text.dropLast()), (1...10_000).contains(count) else {
            throw APIError.invalid("every", "must be N followed by m, h or d (15m, 1h, 1d), N in 1...10000")
        }
        switch unit {
        case "m": return count * 60_000_000
        case "h": return count * 3_600_000_000
        case "d": return count * 86_400_000_000
        default: throw APIError.invalid("every", "must be N followed by m, h or d (15m, 1h, 1d), N in 1...10000")
        }
    }

    /// An ISO 8601 time parameter (a date alone means its midnight UTC).
    static func time(_ raw: String?, _ name: String) throws -> Int64? {
        guard let raw else { return nil }
        do {
            return try EventTime.parseISO8601(raw, field: name)
        } catch {
            throw APIError.invalid(name, "must be an ISO 8601 UTC time or date (2026-12-01T10:00:00Z, 2026-12-01)")
        }
    }

    /// `time` rounded down to a multiple of `width`, also before 1970.
    static func floor(_ time: Int64, _ width: Int64) -> Int64 {
        let q = time / width
        return (time % width < 0 ? q - 1 : q) * width
    }

    /// The number of `width` steps from `from` to `until` (the last one may be shorter), or
    /// a refusal when it is not in 1...`maximum`. Checked without overflow.
    static func rows(from: Int64, until: Int64, width: Int64, maximum: Int, what: String) throws -> Int {
        guard from < until else { throw APIError.invalid("until", "must be after from") }
        let (span, overflow) = until.subtractingReportingOverflow(from)
        let rows = overflow ? Int64.max : span / width + (span % width == 0 ? 0 : 1)
        guard rows <= Int64(maximum) else {
            throw APIError.invalid("from", "from \(EventTime.iso8601(micros: from)) until \(EventTime.iso8601(micros: until)) is \(rows) \(what); "
                + "at most \(maximum) per request: shorten the range or use a longer interval")
        }
        return Int(rows)
    }

    /// The stats series' row ends: from `from` in steps of `every`, the last cut at `until`.
    static func ends(from: Int64, until: Int64, every: Int64) throws -> [(start: Int64, end: Int64)] {
        _ = try rows(from: from, until: until, width: every, maximum: maximumStatsRows, what: "rows")
        var out: [(Int64, Int64)] = []
        var start = from
        while start < until {
            let end = start.addingReportingOverflow(every)
            let cut = end.overflow ? until : min(end.partialValue, until)
            out.append((start, cut))
            start = cut
        }
        return out
    }

    /// `resolution`: minute or hour.
    static func resolution(_ raw: String?) throws -> MetricsResolution {
        guard let raw else { return .hour }
        guard let resolution = MetricsResolution(rawValue: raw) else { throw APIError.invalid("resolution", "must be minute or hour") }
        return resolution
    }
}
