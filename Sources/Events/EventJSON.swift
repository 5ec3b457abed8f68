/// The JSON `data` object of each catalogue type, as audit, export and import show it:
/// snake_case fields in catalogue order, optional fields omitted when nil. Parsing is
/// strict, since imported data becomes facts in the log: every field is type-checked,
/// unknown and missing fields are refused by name, then the event is `validated()`.
extension DomainEvent {
    /// The field names of each type's `data` object, in order; `optional` ones may be absent.
    public static func jsonFields(of type: EventType) -> [(name: String, optional: Bool)] {
        fieldTable[type]!
    }

    private static let fieldTable = Dictionary(uniqueKeysWithValues: EventType.allCases.map { ($0, fieldList($0)) })

    private static func fieldList(_ type: EventType) -> [(name: String, optional: Bool)] {
        switch type {
        case .creditsGranted: [("user", false), ("amount", false), ("reason", false)]
        case .creatorSearched: [("user", false), ("username", false), ("served_from", false), ("duration_ms", false), ("found", false)]
        case .profileRefreshed:
            [("username", false), ("followers", false), ("following", false), ("posts_count", false), ("verified", false), ("category", false)]
        case .profileUnlocked: [("user", false), ("username", false), ("credits_spent", false)]
        case .postAnalysisCompleted:
            [("username", false), ("post_id", false), ("sentiment", false), ("language", false), ("category", false), ("duration_ms", false)]
        case .postAnalysisFailed: [("username", false), ("post_id", false), ("error", false), ("duration_ms", false)]
        case .cdnJobQueued: [("job_id", false), ("priority", false), ("kind", false), ("username", true)]
        case .cdnJobSucceeded: [("job_id", false), ("priority", false), ("kind", false), ("duration_ms", false), ("bytes", true)]
        case .cdnJobFailed:
            [("job_id", false), ("priority", false), ("kind", false), ("duration_ms", false), ("error", false), ("attempt", true), ("will_retry", true)]
        case .healthSampled:
            [("component", false), ("status", false), ("memory_pct", false), ("cpu_pct", false), ("disk_pct", false), ("latency_ms", false)]
        case .circuitBreakerChanged: [("component", false), ("state", false), ("reason", false)]
        }
    }

    /// The event's `data` object.
    public var jsonData: JSONValue.Object {
        var o = JSONValue.Object()
        switch self {
        case .creditsGranted(let e):
            o["user"] = .string(e.user)
            o["amount"] = .integer(e.amount)
            o["reason"] = .string(e.reason)
        case .creatorSearched(let e):
            o["user"] = .string(e.user)
            o["username"] = .string(e.username)
            o["served_from"] = .string(e.servedFrom.rawValue)
            o["duration_ms"] = .integer(Int64(e.durationMs))
            o["found"] = .bool(e.found)
        case .profileRefreshed(let e):
            o["username"] = .string(e.username)
            o["followers"] = .integer(e.followers)
            o["following"] = .integer(e.following)
            o["posts_count"] = .integer(e.postsCount)
            o["verified"] = .bool(e.verified)
            o["category"] = .string(e.category)
        case .profileUnlocked(let e):
            o["user"] = .string(e.user)
            o["username"] = .string(e.username)
            o["credits_spent"] = .integer(e.creditsSpent)
        case .postAnalysisCompleted(let e):
            o["username"] = .string(e.username)
            o["post_id"] = .string(e.postID)
            o["sentiment"] = .number(e.sentiment)
            o["language"] = .string(e.language)
            o["category"] = .string(e.category)
            o["duration_ms"] = .integer(Int64(e.durationMs))
        case .postAnalysisFailed(let e):
            o["username"] = .string(e.username)
            o["post_id"] = .string(e.postID)
            o["error"] = .string(e.error)
            o["duration_ms"] = .integer(Int64(e.durationMs))
        case .cdnJobQueued(let e):
            o["job_id"] = .string(e.jobID)
            o["priority"] = .string(e.priority.rawValue)
            o["kind"] = .string(e.kind)
            o["username"] = e.username.map { .string($0) }
        case .cdnJobSucceeded(let e):
            o["job_id"] = .string(e.jobID)
            o["priority"] = .string(e.priority.rawValue)
            o["kind"] = .string(e.kind)
            o["duration_ms"] = .integer(Int64(e.durationMs))
            o["bytes"] = e.bytes.map { .integer($0) }
        case .cdnJobFailed(let e):
            o["job_id"] = .string(e.jobID)
            o["priority"] = .string(e.priority.rawValue)
            o["kind"] = .string(e.kind)
            o["duration_ms"] = .integer(Int64(e.durationMs))
            o["error"] = .string(e.error)
            o["attempt"] = e.attempt.map { .integer(Int64($0)) }
            o["will_retry"] = e.willRetry.map { .bool($0) }
        case .healthSampled(let e):
            o["component"] = .string(e.component)
            o["status"] = .string(e.status.rawValue)
            o["memory_pct"] = .number(e.memoryPct)
            o["cpu_pct"] = .number(e.cpuPct)
            o["disk_pct"] = .number(e.diskPct)
            o["latency_ms"] = .number(e.latencyMs)
        case .circuitBreakerChanged(let e):
            o["component"] = .string(e.component)
            o["state"] = .string(e.state.rawValue)
            o["reason"] = .string(e.reason)
        }
        return o
    }

    /// The event of type `type` (a catalogue type name) whose `data` is `data`, validated.
    /// Throws `DomainError`: `unknown_type`, or `invalid_field` naming the field at fault.
    public static func parse(type: String, data: JSONValue) throws -> DomainEvent {
        guard let known = EventType(rawValue: type) else {
            throw DomainError(.unknownType, "type \(FieldRules.quoted(type)) is not in the catalogue (\(EventType.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        return try parse(type: known, data: data)
    }

    public static func parse(type: EventType, data: JSONValue) throws -> DomainEvent {
        guard case .object(let object) = data else {
            throw DomainError(.invalidField, "data of a \(type.rawValue) event must be an object, got \(data.kindName)", field: "data")
        }
        let d = try DataFields(type: type, object: object)
        let event: DomainEvent
        switch type {
        case .creditsGranted:
            event = .creditsGranted(CreditsGranted(user: try d.string("user"), amount: try d.int64("amount"), reason: try d.string("reason")))
        case .creatorSearched:
            event = .creatorSearched(CreatorSearched(
                user: try d.string("user"), username: try d.string("username"), servedFrom: try d.vocabulary("served_from"),
                durationMs: try d.int("duration_ms"), found: try d.bool("found")))
        case .profileRefreshed:
            event = .profileRefreshed(ProfileRefreshed(
                username: try d.string("username"), followers: try d.int64("followers"), following: try d.int64("following"),
                postsCount: try d.int64("posts_count"), verified: try d.bool("verified"), category: try d.string("category")))
        case .profileUnlocked:
            event = .profileUnlocked(ProfileUnlocked(
                user: try d.string("user"), username: try d.string("username"), creditsSpent: try d.int64("credits_spent")))
        case .postAnalysisCompleted:
            event = .postAnalysisCompleted(PostAnalysisCompleted(
                username: try d.string("username"), postID: try d.string("post_id"), sentiment: try d.double("sentiment"),
                language: try d.string("language"), category: try d.string("category"), durationMs: try d.int("duration_ms")))
        case .postAnalysisFailed:
            event = .postAnalysisFailed(PostAnalysisFailed(
                username: try d.string("username"), postID: try d.string("post_id"), error: try d.string("error"),
                durationMs: try d.int("duration_ms")))
        case .cdnJobQueued:
            event = .cdnJobQueued(CdnJobQueued(
                jobID: try d.string("job_id"), priority: try d.vocabulary("priority"), kind: try d.string("kind"),
                username: try d.optional("username") { try d.string($0) }))
        case .cdnJobSucceeded:
            event = .cdnJobSucceeded(CdnJobSucceeded(
                jobID: try d.string("job_id"), priority: try d.vocabulary("priority"), kind: try d.string("kind"),
                durationMs: try d.int("duration_ms"), bytes: try d.optional("bytes") { try d.int64($0) }))
        case .cdnJobFailed:
            event = .cdnJobFailed(CdnJobFailed(
                jobID: try d.string("job_id"), priority: try d.vocabulary("priority"), kind: try d.string("kind"),
                durationMs: try d.int("duration_ms"), error: try d.string("error"),
                attempt: try d.optional("attempt") { try d.int($0) }, willRetry: try d.optional("will_retry") { try d.bool($0) }))
        case .healthSampled:
            event = .healthSampled(HealthSampled(
                component: try d.string("component"), status: try d.vocabulary("status"), memoryPct: try d.double("memory_pct"),
                cpuPct: try d.double("cpu_pct"), diskPct: try d.double("disk_pct"), latencyMs: try d.double("latency_ms")))
        case .circuitBreakerChanged:
            event = .circuitBreakerChanged(CircuitBreakerChanged(
                component: try d.string("component"), state: try d.vocabulary("state"), reason: try d.string("reason")))
        }
        return try event.validated()
    }
}

/// Typed reads of one `data` object. Construction refuses unknown fields and reports
/// missing required ones, all by name, before any field is read.
private struct DataFields {
    let type: EventType
    let object: JSONValue.Object

    init(type: EventType, object: JSONValue.Object) throws {
        self.type = type
        self.object = object
        let fields = DomainEvent.jsonFields(of: type)
        var unknown: [String] = []
        for member in object {
            let count = member.key.utf8.count
            guard !fields.contains(where: { $0.name.utf8.count == count && $0.name == member.key }) else { continue }
            unknown.append(member.key)
        }
        if !unknown.isEmpty {
            throw DomainError(
                .invalidField,
                "\(type.rawValue) data has unknown field\(unknown.count == 1 ? "" : "s") \(unknown.map { FieldRules.quoted($0) }.joined(separator: ", ")); its fields are \(fields.map(\.name).joined(separator: ", "))",
                field: unknown[0])
        }
        if fields.contains(where: { !$0.optional && object[$0.name] == nil }) {
            let missing = fields.filter { !$0.optional && object[$0.name] == nil }.map(\.name)
            throw DomainError(
                .invalidField, "\(type.rawValue) data is missing field\(missing.count == 1 ? "" : "s") \(missing.joined(separator: ", "))",
                field: missing[0])
        }
    }

    private func value(_ key: String) throws -> JSONValue {
        guard let value = object[key] else { throw DomainError.invalid(key, "is missing") }
        return value
    }

    private func wrong(_ key: String, _ expected: String, _ got: JSONValue) -> DomainError {
        DomainError.invalid(key, "must be \(expected), got \(got.kindName)")
    }

    func string(_ key: String) throws -> String {
        let v = try value(key)
        guard case .string(let s) = v else { throw wrong(key, "a string", v) }
        return s
    }

    func int64(_ key: String) throws -> Int64 {
        let v = try value(key)
        guard case .integer(let i) = v else {
            if case .number = v { throw DomainError.invalid(key, "must be an integer, got \(v)") }
            throw wrong(key, "an integer", v)
        }
        return i
    }

    func int(_ key: String) throws -> Int {
        let i = try int64(key)
        guard let narrowed = Int(exactly: i) else { throw DomainError.invalid(key, "is out of range, got \(i)") }
        return narrowed
    }

    func double(_ key: String) throws -> Double {
        let v = try value(key)
        guard let d = v.doubleValue else { throw wrong(key, "a number", v) }
        return d
    }

    func bool(_ key: String) throws -> Bool {
        let v = try value(key)
        guard case .bool(let b) = v else { throw wrong(key, "true or false", v) }
        return b
    }

    func vocabulary<T: CaseIterable & RawRepresentable>(_ key: String) throws -> T where T.RawValue == String, T.AllCases == [T] {
        try T.parse(try string(key), field: key)
    }

    /// An optional field: absent or null is nil.
    func optional<T>(_ key: String, _ read: (String) throws -> T) throws -> T? {
        guard let v = object[key], !v.isNull else { return nil }
        return try read(key)
    }
}
