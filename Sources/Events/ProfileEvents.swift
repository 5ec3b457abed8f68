/// A profile's public figures as the scraper last saw them (stream `profile-<username>`).
public struct ProfileRefreshed: Sendable, Hashable {
    public var username: String
    public var followers: Int64
    public var following: Int64
    public var postsCount: Int64
    public var verified: Bool
    public var category: String

    public init(username: String, followers: Int64, following: Int64, postsCount: Int64, verified: Bool, category: String) {
        self.username = username
        self.followers = followers
        self.following = following
        self.postsCount = postsCount
        self.verified = verified
        self.category = category
    }

    func validated() throws -> Self {
        var copy = self
        copy.username = try FieldRules.username(username)
        try FieldRules.integer(followers, field: "followers", in: 0...FieldRules.maxCount)
        try FieldRules.integer(following, field: "following", in: 0...FieldRules.maxCount)
        try FieldRules.integer(postsCount, field: "posts_count", in: 0...FieldRules.maxCount)
        try FieldRules.text(category, field: "category", maxBytes: FieldRules.maxLabelBytes)
        return copy
    }
}

/// The AI worker analysed one post of a profile.
public struct PostAnalysisCompleted: Sendable, Hashable {
    public var username: String
    public var postID: String
    /// −1 (negative) … 1 (positive).
    public var sentiment: Double
    public var language: String
    public var category: String
    public var durationMs: Int

    public init(username: String, postID: String, sentiment: Double, language: String, category: String, durationMs: Int) {
        self.username = username
        self.postID = postID
        self.sentiment = sentiment
        self.language = language
        self.category = category
        self.durationMs = durationMs
    }

    func validated() throws -> Self {
        var copy = self
        copy.username = try FieldRules.username(username)
        try FieldRules.identifier(postID, field: "post_id", maxBytes: FieldRules.maxPostIDBytes)
        try FieldRules.number(sentiment, field: "sentiment", in: -1...1)
        try FieldRules.text(language, field: "language", maxBytes: 16)
        try FieldRules.text(category, field: "category", maxBytes: FieldRules.maxLabelBytes)
        try FieldRules.integer(durationMs, field: "duration_ms", in: 0...FieldRules.maxDurationMs)
        return copy
    }
}

/// The AI worker failed to analyse one post; a later completion recovers it.
public struct PostAnalysisFailed: Sendable, Hashable {
    public var username: String
    public var postID: String
    public var error: String
    public var durationMs: Int

    public init(username: String, postID: String, error: String, durationMs: Int) {
        self.username = username
        self.postID = postID
        self.error = error
        self.durationMs = durationMs
    }

    func validated() throws -> Self {
        var copy = self
        copy.username = try FieldRules.username(username)
        try FieldRules.identifier(postID, field: "post_id", maxBytes: FieldRules.maxPostIDBytes)
        try FieldRules.text(error, field: "error", maxBytes: FieldRules.maxTextBytes)
        try FieldRules.integer(durationMs, field: "duration_ms", in: 0...FieldRules.maxDurationMs)
        return copy
    }
}
