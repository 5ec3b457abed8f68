/// Why an append with an expected version was refused, as the error's cause.
public struct WrongExpectedVersion: Error, Sendable, Hashable {
    public var stream: String
    public var expected: ExpectedVersion
    /// The stream's version when the append was decided; nil when the stream had no events.
    public var actual: UInt64?

    public init(stream: String, expected: ExpectedVersion, actual: UInt64?) {
        self.stream = stream
        self.expected = expected
        self.actual = actual
    }
}
