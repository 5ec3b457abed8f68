/// An image job entered the CDN queue (stream `cdn-<job_id>`).
public struct CdnJobQueued: Sendable, Hashable {
    public var jobID: String
    public var priority: CdnPriority
    public var kind: String
    public var username: String?

    public init(jobID: String, priority: CdnPriority, kind: String, username: String? = nil) {
        self.jobID = jobID
        self.priority = priority
        self.kind = kind
        self.username = username
    }

    func validated() throws -> Self {
        var copy = self
        try FieldRules.identifier(jobID, field: "job_id", maxBytes: FieldRules.maxJobIDBytes)
        try FieldRules.text(kind, field: "kind", maxBytes: FieldRules.maxLabelBytes, allowEmpty: false)
        copy.username = try username.map { try FieldRules.username($0) }
        return copy
    }
}

public struct CdnJobSucceeded: Sendable, Hashable {
    public var jobID: String
    public var priority: CdnPriority
    public var kind: String
    public var durationMs: Int
    public var bytes: Int64?

    public init(jobID: String, priority: CdnPriority, kind: String, durationMs: Int, bytes: Int64? = nil) {
        self.jobID = jobID
        self.priority = priority
        self.kind = kind
        self.durationMs = durationMs
        self.bytes = bytes
    }

    func validated() throws -> Self {
        try FieldRules.identifier(jobID, field: "job_id", maxBytes: FieldRules.maxJobIDBytes)
        try FieldRules.text(kind, field: "kind", maxBytes: FieldRules.maxLabelBytes, allowEmpty: false)
        try FieldRules.integer(durationMs, field: "duration_ms", in: 0...FieldRules.maxDurationMs)
        if let bytes { try FieldRules.integer(bytes, field: "bytes", in: 0...(1 << 40)) }
        return self
    }
}

public struct CdnJobFailed: Sendable, Hashable {
    public var jobID: String
    public var priority: CdnPriority
    public var kind: String
    public var durationMs: Int
    public var error: String
    public var attempt: Int?
    public var willRetry: Bool?

    public init(jobID: String, priority: CdnPriority, kind: String, durationMs: Int, error: String, attempt: Int? = nil, willRetry: Bool? = nil) {
        self.jobID = jobID
        self.priority = priority
        self.kind = kind
        self.durationMs = durationMs
        self.error = error
        self.attempt = attempt
        self.willRetry = willRetry
    }

    func validated() throws -> Self {
        try FieldRules.identifier(jobID, field: "job_id", maxBytes: FieldRules.maxJobIDBytes)
        try FieldRules.text(kind, field: "kind", maxBytes: FieldRules.maxLabelBytes, allowEmpty: false)
        try FieldRules.integer(durationMs, field: "duration_ms", in: 0...FieldRules.maxDurationMs)
        try FieldRules.text(error, field: "error", maxBytes: FieldRules.maxTextBytes)
        if let attempt { try FieldRules.integer(attempt, field: "attempt", in: 1...1_000) }
        return self
    }
}
