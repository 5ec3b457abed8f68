import Events
import Projections

/// The seed backend's response envelope, which its frontend reads (`data.success`,
/// `resp.stats.profiles`, `data.profiles`): what the `/api/v1/simple/` compatibility paths
/// answer. Tally's freshness (`freshness`, `stale`, the Tally-Position and Tally-Lag-Events
/// headers) rides along as additions; the native paths keep Tally's own shape.
enum SeedEnvelope {
    /// `part / whole` as the seed's percent string: one decimal at most, the tenth rounded
    /// half up and a trailing `.0` dropped ("0%", "50%", "66.7%"). A rate strictly between
    /// 0 and 1 never reads "0%" or "100%" (it reads "0.1%" / "99.9%"): those two words mean
    /// none and all. Integer arithmetic on the counts, so the same counts always print the
    /// same string. A whole of 0 is "0%", as in the seed's fallback.
    static func percent(_ part: Int, of whole: Int) -> String {
        guard whole > 0, part > 0 else { return "0%" }
        guard part < whole else { return "100%" }
        // tenths = round(part * 1000 / whole), half up; part < whole ≤ Int.max / 2000 in
        // any real log, and the multiplication saturates rather than trap beyond that.
        let (scaled, overflow) = part.multipliedReportingOverflow(by: 2_000)
        var tenths = overflow ? Int((Double(part) / Double(whole) * 1_000).rounded()) : (scaled / whole + 1) / 2
        tenths = min(max(tenths, 1), 999)
        return tenths % 10 == 0 ? "\(tenths / 10)%" : "\(tenths / 10).\(tenths % 10)%"
    }

    /// `{total, with_ai_analysis, ai_completion_rate}` of profiles or posts.
    struct Coverage: Encodable {
        var total: Int
        var withAIAnalysis: Int
        var aiCompletionRate: String

        init(total: Int, withAIAnalysis: Int) {
            self.total = total
            self.withAIAnalysis = withAIAnalysis
            aiCompletionRate = SeedEnvelope.percent(withAIAnalysis, of: total)
        }

        enum CodingKeys: String, CodingKey { case total, withAIAnalysis = "with_ai_analysis", aiCompletionRate = "ai_completion_rate" }
    }

    struct Stats: Encodable {
        var profiles: Coverage
        var posts: Coverage
        var system: SystemStatusBody
    }

    /// The stats path's answer; `error` only in the fallback.
    struct StatsBody: Encodable {
        var success: Bool
        var stats: Stats
        var message: String
        var error: String?
        /// The fallback's additions: the problem code and the view's catch-up progress.
        var code: String?
        var freshness: FreshnessBody?
        var stale: Bool?

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(success, forKey: .success)
            try c.encode(stats, forKey: .stats)
            try c.encode(message, forKey: .message)
            try c.encodeIfPresent(error, forKey: .error)
            try c.encodeIfPresent(code, forKey: .code)
            try c.encodeIfPresent(freshness, forKey: .freshness)
            try c.encodeIfPresent(stale, forKey: .stale)
        }

        enum CodingKeys: String, CodingKey { case success, stats, message, error, code, freshness, stale }
    }

    static func stats(_ view: SystemStats, system: SystemStatusBody) -> StatsBody {
        StatsBody(success: true,
                  stats: Stats(profiles: Coverage(total: view.profiles.total, withAIAnalysis: view.profiles.withAIAnalysis),
                               posts: Coverage(total: view.posts.total, withAIAnalysis: view.posts.withAIAnalysis),
                               system: system),
                  message: "System statistics")
    }

    /// The seed's own fallback, verbatim in its keys and words, for a view never built.
    static func statsFallback(error: String, code: String, freshness: FreshnessBody) -> StatsBody {
        let empty = Coverage(total: 0, withAIAnalysis: 0)
        return StatsBody(success: false, stats: Stats(profiles: empty, posts: empty, system: SystemStatusBody(status: "fallback", aiSystem: "unavailable")),
                         message: "System statistics (fallback mode)", error: error, code: code, freshness: freshness, stale: true)
    }

    /// The unlocked path's answer: `success` and `message` before the page Tally encodes
    /// (`profiles`, `next_cursor`, `total`), so the hot page encoder serves both paths.
    static func unlocked(page: [UInt8], count: Int) -> [UInt8] {
        let noun = count == 1 ? "profile" : "profiles"
        var bytes = Array("{\"success\":true,\"message\":\"Retrieved \(count) unlocked \(noun)\"".utf8)
        if page.count > 2 { bytes.append(UInt8(ascii: ",")) }
        bytes.append(contentsOf: page.dropFirst())
        return bytes
    }

    struct UnlockedFallback: Encodable {
        var success = false
        var profiles: [String] = []
        var error: String
        var message: String
        var code: String
        var freshness: FreshnessBody
        var stale = true
    }

    static func unlockedFallback(error: String, code: String, freshness: FreshnessBody) -> UnlockedFallback {
        UnlockedFallback(error: error, message: "Unable to retrieve unlocked profiles - the view is still being built from the log",
                         code: code, freshness: freshness)
    }
}
