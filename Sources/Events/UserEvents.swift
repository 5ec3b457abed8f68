/// Credits added to a user's wallet (stream `user-<id>`).
public struct CreditsGranted: Sendable, Hashable {
    public var user: String
    public var amount: Int64
    public var reason: String

    public init(user: String, amount: Int64, reason: String) {
        self.user = user
        self.amount = amount
        self.reason = reason
    }

    func validated() throws -> Self {
        try FieldRules.identifier(user, field: "user", maxBytes: FieldRules.maxUserIDBytes)
        try FieldRules.integer(amount, field: "amount", in: 1...FieldRules.maxCredits)
        try FieldRules.text(reason, field: "reason", maxBytes: FieldRules.maxLabelBytes * 4)
        return self
    }
}

/// A creator search a user made, and whether the backend served it from its cache.
public struct CreatorSearched: Sendable, Hashable {
    public var user: String
    public var username: String
    public var servedFrom: ServedFrom
    public var durationMs: Int
    public var found: Bool

    public init(user: String, username: String, servedFrom: ServedFrom, durationMs: Int, found: Bool) {
        self.user = user
        self.username = username
        self.servedFrom = servedFrom
        self.durationMs = durationMs
        self.found = found
    }

    func validated() throws -> Self {
        var copy = self
        try FieldRules.identifier(user, field: "user", maxBytes: FieldRules.maxUserIDBytes)
        copy.username = try FieldRules.username(username)
        try FieldRules.integer(durationMs, field: "duration_ms", in: 0...FieldRules.maxDurationMs)
        return copy
    }
}

/// A profile a user paid credits to unlock.
public struct ProfileUnlocked: Sendable, Hashable {
    public var user: String
    public var username: String
    public var creditsSpent: Int64

    public init(user: String, username: String, creditsSpent: Int64) {
        self.user = user
        self.username = username
        self.creditsSpent = creditsSpent
    }

    func validated() throws -> Self {
        var copy = self
        try FieldRules.identifier(user, field: "user", maxBytes: FieldRules.maxUserIDBytes)
        copy.username = try FieldRules.username(username)
        try FieldRules.integer(creditsSpent, field: "credits_spent", in: 0...FieldRules.maxCredits)
        return copy
    }
}
