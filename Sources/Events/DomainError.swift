/// Why domain data was refused or could not be read. The code is stable (clients and the
/// API key on it); the message says what was wrong and what to do.
public struct DomainError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A closed set: the stable strings tools and the API key on, made nowhere else.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        package enum Base: String, Sendable, CaseIterable {
            case invalidField = "invalid_field"
            case unknownType = "unknown_type"
            case unsupportedVersion = "unsupported_version"
            case malformedPayload = "malformed_payload"
            case malformedJSON = "malformed_json"
        }

        package let base: Base
        private init(_ base: Base) { self.base = base }

        /// A field is missing, of the wrong kind or out of its range.
        public static let invalidField = Code(.invalidField)
        /// A type this build does not know.
        public static let unknownType = Code(.unknownType)
        /// A schema version newer than this build reads.
        public static let unsupportedVersion = Code(.unsupportedVersion)
        /// Payload bytes that do not decode.
        public static let malformedPayload = Code(.malformedPayload)
        /// JSON text that does not parse.
        public static let malformedJSON = Code(.malformedJSON)

        /// Every code, for tests and documentation.
        public static var all: [Code] { Base.allCases.map(Code.init) }

        public var rawValue: String { base.rawValue }
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
