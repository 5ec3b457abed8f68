/// Writes an event's `data` object straight into a byte buffer: the same bytes as
/// `jsonData.write(to:)`, without building the `JSONValue.Object` (an array of members, a
/// `String` key and an enum box per field). `replay export` writes millions of these, and
/// building the tree was most of its cost. `EventJSONTests` checks both agree.
extension DomainEvent {
    public func writeJSONData(to bytes: inout [UInt8]) {
        var o = JSONMemberWriter()
        bytes.append(UInt8(ascii: "{"))
        switch self {
        case .creditsGranted(let e):
            o.string("user", e.user, &bytes)
            o.integer("amount", e.amount, &bytes)
            o.string("reason", e.reason, &bytes)
        case .creatorSearched(let e):
            o.string("user", e.user, &bytes)
            o.string("username", e.username, &bytes)
            o.string("served_from", e.servedFrom.rawValue, &bytes)
            o.integer("duration_ms", Int64(e.durationMs), &bytes)
            o.bool("found", e.found, &bytes)
        case .profileRefreshed(let e):
            o.string("username", e.username, &bytes)
            o.integer("followers", e.followers, &bytes)
            o.integer("following", e.following, &bytes)
            o.integer("posts_count", e.postsCount, &bytes)
            o.bool("verified", e.verified, &bytes)
            o.string("category", e.category, &bytes)
        case .profileUnlocked(let e):
            o.string("user", e.user, &bytes)
            o.string("username", e.username, &bytes)
            o.integer("credits_spent", e.creditsSpent, &bytes)
        case .postAnalysisCompleted(let e):
            o.string("username", e.username, &bytes)
            o.string("post_id", e.postID, &bytes)
            o.number("sentiment", e.sentiment, &bytes)
            o.string("language", e.language, &bytes)
            o.string("category", e.category, &bytes)
            o.integer("duration_ms", Int64(e.durationMs), &bytes)
        case .postAnalysisFailed(let e):
            o.string("username", e.username, &bytes)
            o.string("post_id", e.postID, &bytes)
            o.string("error", e.error, &bytes)
            o.integer("duration_ms", Int64(e.durationMs), &bytes)
        case .cdnJobQueued(let e):
            o.string("job_id", e.jobID, &bytes)
            o.string("priority", e.priority.rawValue, &bytes)
            o.string("kind", e.kind, &bytes)
            if let username = e.username { o.string("username", username, &bytes) }
        case .cdnJobSucceeded(let e):
            o.string("job_id", e.jobID, &bytes)
            o.string("priority", e.priority.rawValue, &bytes)
            o.string("kind", e.kind, &bytes)
            o.integer("duration_ms", Int64(e.durationMs), &bytes)
            if let value = e.bytes { o.integer("bytes", value, &bytes) }
        case .cdnJobFailed(let e):
            o.string("job_id", e.jobID, &bytes)
            o.string("priority", e.priority.rawValue, &bytes)
            o.string("kind", e.kind, &bytes)
            o.integer("duration_ms", Int64(e.durationMs), &bytes)
            o.string("error", e.error, &bytes)
            if let attempt = e.attempt { o.integer("attempt", Int64(attempt), &bytes) }
            if let willRetry = e.willRetry { o.bool("will_retry", willRetry, &bytes) }
        case .healthSampled(let e):
            o.string("component", e.component, &bytes)
            o.string("status", e.status.rawValue, &bytes)
            o.number("memory_pct", e.memoryPct, &bytes)
            o.number("cpu_pct", e.cpuPct, &bytes)
            o.number("disk_pct", e.diskPct, &bytes)
            o.number("latency_ms", e.latencyMs, &bytes)
        case .circuitBreakerChanged(let e):
            o.string("component", e.component, &bytes)
            o.string("state", e.state.rawValue, &bytes)
            o.string("reason", e.reason, &bytes)
        }
        bytes.append(UInt8(ascii: "}"))
    }
}
