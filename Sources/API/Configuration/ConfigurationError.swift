/// A setting that cannot be used: which one, why, and what it accepts. The server refuses
/// to start with it rather than guess.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable, CaseIterable {
        /// A value outside the setting's allowed range or form.
        case invalidValue = "invalid_value"
        /// A setting the server cannot start without.
        case missingSetting = "missing_setting"
        /// Two settings that cannot both be given.
        case conflictingSettings = "conflicting_settings"
        /// A file the configuration names cannot be read.
        case unreadableFile = "unreadable_file"
    }

    public let code: Code
    /// The setting's flag name, e.g. `port`.
    public let setting: String
    public let message: String
    public let cause: (any Error & Sendable)?

    public init(_ code: Code, setting: String, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.setting = setting
        self.message = message
        self.cause = cause
    }

    public var description: String { message }
}
