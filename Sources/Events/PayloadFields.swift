public import EventLog

/// The fields the views fold, read in place from a payload (schema 1): strings stay byte
/// slices of the batch buffer, so folding builds no `DomainEvent` and no `String` per
/// event. The slices are valid only inside the `RecordedEvent.withPayload` call that
/// produced them.
///
/// Accepts exactly what `PayloadCodec.decode` accepts: every field is read and checked
/// with the same bounds (lengths, case indexes, booleans, finite numbers, presence bytes,
/// no trailing bytes), so an event the full decoder calls malformed is nil here too, and
/// the views skip the same events either way. Health and breaker events are rare and
/// their folds keep strings; they come decoded.
public enum PayloadFields {
    case creditsGranted(user: UnsafeRawBufferPointer, amount: Int64, reason: UnsafeRawBufferPointer)
    case creatorSearched(username: UnsafeRawBufferPointer, servedFrom: ServedFrom, durationMs: Int)
    case profileRefreshed(username: UnsafeRawBufferPointer, followers: Int64, following: Int64, postsCount: Int64,
                          verified: Bool, category: UnsafeRawBufferPointer)
    case profileUnlocked(user: UnsafeRawBufferPointer, username: UnsafeRawBufferPointer, creditsSpent: Int64)
    case postAnalysisCompleted(username: UnsafeRawBufferPointer, postID: UnsafeRawBufferPointer, durationMs: Int)
    case postAnalysisFailed(username: UnsafeRawBufferPointer, postID: UnsafeRawBufferPointer, durationMs: Int)
    case cdnJobQueued(priority: CdnPriority, username: UnsafeRawBufferPointer?)
    case cdnJobSucceeded(priority: CdnPriority, durationMs: Int)
    case cdnJobFailed(priority: CdnPriority, durationMs: Int)
    /// HealthSampled and CircuitBreakerChanged, fully decoded.
    case decoded(DomainEvent)

    /// The fields of `event`'s payload; nil where `event.domainEvent` is nil (unknown type,
    /// another schema version, malformed payload). Call it inside `withPayload`'s closure
    /// only through `RecordedEvent.withFields`.
    public static func read(_ type: EventType, schemaVersion: UInt16, from bytes: UnsafeRawBufferPointer) -> PayloadFields? {
        guard schemaVersion == EventType.currentSchemaVersion else { return nil }
        if type == .healthSampled || type == .circuitBreakerChanged {
            return (try? PayloadCodec.decode(type, schemaVersion: schemaVersion, from: bytes)).map(PayloadFields.decoded)
        }
        var r = ByteReader(bytes)
        guard let fields = try? readV1(type, &r), r.remaining == 0 else { return nil }
        return fields
    }

    private static func readV1(_ type: EventType, _ r: inout ByteReader) throws -> PayloadFields {
        let user = FieldRules.maxUserIDBytes
        let name = FieldRules.maxUsernameLength
        let id = FieldRules.maxPostIDBytes
        let label = FieldRules.maxLabelBytes
        let text = FieldRules.maxTextBytes
        switch type {
        case .creditsGranted:
            let grantee = try r.readLengthPrefixed("user", max: user)
            let amount = try r.readZigZag("amount")
            let reason = try r.readLengthPrefixed("reason", max: label * 4)
            return .creditsGranted(user: grantee, amount: amount, reason: reason)
        case .creatorSearched:
            _ = try r.readLengthPrefixed("user", max: user)
            let username = try r.readLengthPrefixed("username", max: name)
            let servedFrom: ServedFrom = try r.readIndex("served_from", 2) == 0 ? .cache : .fresh
            let duration = try r.readInt("duration_ms")
            _ = try r.readBool("found")
            return .creatorSearched(username: username, servedFrom: servedFrom, durationMs: duration)
        case .profileRefreshed:
            let username = try r.readLengthPrefixed("username", max: name)
            let followers = try r.readZigZag("followers")
            let following = try r.readZigZag("following")
            let postsCount = try r.readZigZag("posts_count")
            let verified = try r.readBool("verified")
            let category = try r.readLengthPrefixed("category", max: label)
            return .profileRefreshed(username: username, followers: followers, following: following, postsCount: postsCount,
                                     verified: verified, category: category)
        case .profileUnlocked:
            let userID = try r.readLengthPrefixed("user", max: user)
            let username = try r.readLengthPrefixed("username", max: name)
            return .profileUnlocked(user: userID, username: username, creditsSpent: try r.readZigZag("credits_spent"))
        case .postAnalysisCompleted:
            let username = try r.readLengthPrefixed("username", max: name)
            let post = try r.readLengthPrefixed("post_id", max: id)
            _ = try r.readDouble("sentiment")
            _ = try r.readLengthPrefixed("language", max: 16)
            _ = try r.readLengthPrefixed("category", max: label)
            return .postAnalysisCompleted(username: username, postID: post, durationMs: try r.readInt("duration_ms"))
        case .postAnalysisFailed:
            let username = try r.readLengthPrefixed("username", max: name)
            let post = try r.readLengthPrefixed("post_id", max: id)
            _ = try r.readLengthPrefixed("error", max: text)
            return .postAnalysisFailed(username: username, postID: post, durationMs: try r.readInt("duration_ms"))
        case .cdnJobQueued:
            _ = try r.readLengthPrefixed("job_id", max: id)
            let priority = try r.readPriority()
            _ = try r.readLengthPrefixed("kind", max: label)
            var username: UnsafeRawBufferPointer?
            if try r.readPresence("username") { username = try r.readLengthPrefixed("username", max: name) }
            return .cdnJobQueued(priority: priority, username: username)
        case .cdnJobSucceeded:
            _ = try r.readLengthPrefixed("job_id", max: id)
            let priority = try r.readPriority()
            _ = try r.readLengthPrefixed("kind", max: label)
            let duration = try r.readInt("duration_ms")
            if try r.readPresence("bytes") { _ = try r.readZigZag("bytes") }
            return .cdnJobSucceeded(priority: priority, durationMs: duration)
        case .cdnJobFailed:
            _ = try r.readLengthPrefixed("job_id", max: id)
            let priority = try r.readPriority()
            _ = try r.readLengthPrefixed("kind", max: label)
            let duration = try r.readInt("duration_ms")
            _ = try r.readLengthPrefixed("error", max: text)
            if try r.readPresence("attempt") { _ = try r.readZigZag("attempt") }
            if try r.readPresence("will_retry") { _ = try r.readBool("will_retry") }
            return .cdnJobFailed(priority: priority, durationMs: duration)
        case .healthSampled, .circuitBreakerChanged:
            throw DomainError(.malformedPayload, "\(type.rawValue) is decoded whole")
        }
    }
}

extension RecordedEvent {
    /// The payload's fold fields, handed to `body` while the batch's bytes are borrowed;
    /// `body` gets nil for an event the views skip (see `PayloadFields.read`).
    @inlinable
    public func withFields<Result>(_ body: (PayloadFields?) throws -> Result) rethrows -> Result {
        guard let type = withTypeBytes(EventType.init(bytes:)) else { return try body(nil) }
        return try withPayload { try body(PayloadFields.read(type, schemaVersion: schemaVersion, from: $0)) }
    }
}

/// What a fold reads of an event besides its payload: two integers, so a fold over a batch
/// copies no `RecordedEvent` (a copy retains the batch's shared storage, and lanes folding
/// one batch on two cores would contend on its reference count).
public struct EventStamp: Sendable, Hashable {
    public var position: LogPosition
    /// µs since 1970 UTC.
    public var recordedAt: Int64

    @inlinable
    public init(position: LogPosition, recordedAt: Int64) {
        self.position = position
        self.recordedAt = recordedAt
    }
}

extension RecordedEvent {
    @inlinable
    public var stamp: EventStamp { EventStamp(position: position, recordedAt: recordedAt) }
}

extension Array where Element == RecordedEvent {
    /// Each event's fold fields and stamp in order (`RecordedEvent.withFields`), skipping
    /// the events the views skip; the events are read in place, never copied.
    @inlinable
    public func forEachFields(_ body: (PayloadFields, EventStamp) throws -> Void) rethrows {
        try withUnsafeBufferPointer { events in
            for index in events.indices {
                let stamp = EventStamp(position: events[index].position, recordedAt: events[index].recordedAt)
                try events[index].withFields { fields in
                    if let fields { try body(fields, stamp) }
                }
            }
        }
    }
}

extension ByteReader {
    /// A vocabulary case index below `count`, as `readCase` checks it, without building
    /// `allCases`.
    mutating func readIndex(_ what: StaticString, _ count: UInt8) throws -> UInt8 {
        let index = try readUInt8(what)
        guard index < count else {
            throw DomainError(.malformedPayload, "\(what) has case index \(index); this build knows \(count)")
        }
        return index
    }

    mutating func readPriority() throws -> CdnPriority {
        switch try readIndex("priority", 4) {
        case 0: .critical
        case 1: .high
        case 2: .medium
        default: .low
        }
    }

    mutating func readPresence(_ what: StaticString) throws -> Bool {
        switch try readUInt8(what) {
        case 0: return false
        case 1: return true
        case let other: throw DomainError(.malformedPayload, "\(what) has presence byte \(other), not 0/1")
        }
    }
}

extension EventType {
    private static let nameBytes: [[UInt8]] = allCases.map { Array($0.rawValue.utf8) }

    /// The type named by `bytes`, found by length and one or two bytes, then compared whole;
    /// nil for a name this build does not know. What `init?(of:)` finds, in fewer compares.
    @usableFromInline
    init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= 12 else { return nil }
        let candidate: EventType
        switch (bytes.count, bytes[0]) {
        case (12, UInt8(ascii: "C")): candidate = bytes[6] == UInt8(ascii: "Q") ? .cdnJobQueued : .cdnJobFailed
        case (13, UInt8(ascii: "H")): candidate = .healthSampled
        case (14, UInt8(ascii: "C")): candidate = .creditsGranted
        case (15, UInt8(ascii: "C")): candidate = bytes[1] == UInt8(ascii: "r") ? .creatorSearched : .cdnJobSucceeded
        case (15, UInt8(ascii: "P")): candidate = .profileUnlocked
        case (16, UInt8(ascii: "P")): candidate = .profileRefreshed
        case (18, UInt8(ascii: "P")): candidate = .postAnalysisFailed
        case (21, UInt8(ascii: "P")): candidate = .postAnalysisCompleted
        case (21, UInt8(ascii: "C")): candidate = .circuitBreakerChanged
        default: return nil
        }
        guard Self.nameBytes[candidate.ordinal].withUnsafeBytes({ Self.sameBytes($0, bytes) }) else { return nil }
        self = candidate
    }

    /// Equal byte strings, compared 8 bytes at a time (names are 12...21 bytes; the generic
    /// `elementsEqual` steps an iterator per byte).
    @usableFromInline
    static func sameBytes(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        let n = a.count
        guard b.count == n else { return false }
        var i = 0
        while i + 8 <= n {
            guard a.loadUnaligned(fromByteOffset: i, as: UInt64.self) == b.loadUnaligned(fromByteOffset: i, as: UInt64.self) else { return false }
            i += 8
        }
        while i < n {
            guard a[i] == b[i] else { return false }
            i += 1
        }
        return true
    }

    var ordinal: Int {
        switch self {
        case .creditsGranted: 0
        case .creatorSearched: 1
        case .profileRefreshed: 2
        case .profileUnlocked: 3
        case .postAnalysisCompleted: 4
        case .postAnalysisFailed: 5
        case .cdnJobQueued: 6
        case .cdnJobSucceeded: 7
        case .cdnJobFailed: 8
        case .healthSampled: 9
        case .circuitBreakerChanged: 10
        }
    }
}
