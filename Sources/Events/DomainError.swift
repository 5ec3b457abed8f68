/// Why domain data was refused or could not be read. The code is stable (clients and the
/// API key on it); the message says what was wrong and what to do.
public struct DomainError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }

        /// A field is missing, of the wrong kind or out of its range.
        public static let invalidField = Code(rawValue: "invalid_field")
        /// A type this build does not know.
        public static let unknownType = Code(rawValue: "unknown_type")
        /// A schema version newer than this build reads.
        public static let unsupportedVersion = Code(rawValue: "unsupported_version")
        /// Payload bytes that do not decode.
        public static let malformedPayload = Code(rawValue: "malformed_payload")
        /// JSON text that does not parse.
        public static let malformedJSON = Code(rawValue: "malformed_json")

        public var description: String { rawValue }
    }

    public var code: Code
    public var message: String
    /// The field at fault (JSON name), when one is.
    public var field: String?

    public init(_ code: Code, _ message: String, field: String? = nil) {
        self.code = code
        self.message = message
        self.field = field
    }

    public var description: String { "\(code): \(message)" }

    static func invalid(_ field: String, _ message: String) -> DomainError {
        DomainError(.invalidField, "\(field) \(message)", field: field)
    }
}
