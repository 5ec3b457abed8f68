import EventLog

/// The compact binary payload of each catalogue type (schema 1), in the log's byte
/// conventions: strings and byte runs as varint length + bytes, integers as zigzag varints,
/// numbers as IEEE-754 doubles (8 bytes, little-endian), booleans as one byte 0/1,
/// vocabularies as their case index, optionals as a presence byte then the value. Fields
/// in declaration order; docs/log-format.md lists them. No JSON on the hot path.
public enum PayloadCodec {
    public static func encode(_ event: DomainEvent) -> [UInt8] {
        var w = ByteWriter(capacity: 64)
        switch event {
        case .creditsGranted(let e):
            w.writeLengthPrefixed(e.user)
            w.writeZigZag(e.amount)
            w.writeLengthPrefixed(e.reason)
        case .creatorSearched(let e):
            w.writeLengthPrefixed(e.user)
            w.writeLengthPrefixed(e.username)
            w.writeCase(e.servedFrom)
            w.writeZigZag(Int64(e.durationMs))
            w.writeBool(e.found)
        case .profileRefreshed(let e):
            w.writeLengthPrefixed(e.username)
            w.writeZigZag(e.followers)
            w.writeZigZag(e.following)
            w.writeZigZag(e.postsCount)
            w.writeBool(e.verified)
            w.writeLengthPrefixed(e.category)
        case .profileUnlocked(let e):
            w.writeLengthPrefixed(e.user)
            w.writeLengthPrefixed(e.username)
            w.writeZigZag(e.creditsSpent)
        case .postAnalysisCompleted(let e):
            w.writeLengthPrefixed(e.username)
            w.writeLengthPrefixed(e.postID)
            w.writeDouble(e.sentiment)
            w.writeLengthPrefixed(e.language)
            w.writeLengthPrefixed(e.category)
            w.writeZigZag(Int64(e.durationMs))
        case .postAnalysisFailed(let e):
            w.writeLengthPrefixed(e.username)
            w.writeLengthPrefixed(e.postID)
            w.writeLengthPrefixed(e.error)
            w.writeZigZag(Int64(e.durationMs))
        case .cdnJobQueued(let e):
            w.writeLengthPrefixed(e.jobID)
            w.writeCase(e.priority)
            w.writeLengthPrefixed(e.kind)
            w.writeOptional(e.username) { $0.writeLengthPrefixed($1) }
        case .cdnJobSucceeded(let e):
            w.writeLengthPrefixed(e.jobID)
            w.writeCase(e.priority)
            w.writeLengthPrefixed(e.kind)
            w.writeZigZag(Int64(e.durationMs))
            w.writeOptional(e.bytes) { $0.writeZigZag($1) }
        case .cdnJobFailed(let e):
            w.writeLengthPrefixed(e.jobID)
            w.writeCase(e.priority)
            w.writeLengthPrefixed(e.kind)
            w.writeZigZag(Int64(e.durationMs))
            w.writeLengthPrefixed(e.error)
            w.writeOptional(e.attempt) { $0.writeZigZag(Int64($1)) }
            w.writeOptional(e.willRetry) { $0.writeBool($1) }
        case .healthSampled(let e):
            w.writeLengthPrefixed(e.component)
            w.writeCase(e.status)
            w.writeDouble(e.memoryPct)
            w.writeDouble(e.cpuPct)
            w.writeDouble(e.diskPct)
            w.writeDouble(e.latencyMs)
        case .circuitBreakerChanged(let e):
            w.writeLengthPrefixed(e.component)
            w.writeCase(e.state)
            w.writeLengthPrefixed(e.reason)
        }
        return w.bytes
    }

    /// Decodes a payload of `type` written at `schemaVersion`. Checks every length against
    /// its bound and the bytes that remain, and that nothing trails; throws `DomainError`
    /// (`malformed_payload`, `unsupported_version`), never traps.
    public static func decode(_ type: EventType, schemaVersion: UInt16, from bytes: UnsafeRawBufferPointer) throws -> DomainEvent {
        guard schemaVersion == EventType.currentSchemaVersion else {
            // Upcasters from older versions go here, one per (type, version), when a schema changes.
            throw DomainError(.unsupportedVersion, "\(type.rawValue) schema \(schemaVersion) is not readable by this build (it reads \(EventType.currentSchemaVersion)); upgrade Tally")
        }
        var r = ByteReader(bytes)
        do {
            let event = try decodeV1(type, &r)
            guard r.remaining == 0 else {
                throw DomainError(.malformedPayload, "\(type.rawValue) payload has \(r.remaining) bytes after its last field")
            }
            return event
        } catch let error as DomainError {
            throw error
        } catch {
            throw DomainError(.malformedPayload, "\(type.rawValue) payload does not decode: \(error)")
        }
    }

    private static func decodeV1(_ type: EventType, _ r: inout ByteReader) throws -> DomainEvent {
        let user = FieldRules.maxUserIDBytes
        let name = FieldRules.maxUsernameLength
        let id = FieldRules.maxPostIDBytes
        let label = FieldRules.maxLabelBytes
        let text = FieldRules.maxTextBytes
        switch type {
        case .creditsGranted:
            return .creditsGranted(CreditsGranted(
                user: try r.readString("user", max: user), amount: try r.readZigZag("amount"),
                reason: try r.readString("reason", max: label * 4)))
        case .creatorSearched:
            return .creatorSearched(CreatorSearched(
                user: try r.readString("user", max: user), username: try r.readString("username", max: name),
                servedFrom: try r.readCase("served_from"), durationMs: try r.readInt("duration_ms"), found: try r.readBool("found")))
        case .profileRefreshed:
            return .profileRefreshed(ProfileRefreshed(
                username: try r.readString("username", max: name), followers: try r.readZigZag("followers"),
                following: try r.readZigZag("following"), postsCount: try r.readZigZag("posts_count"),
                verified: try r.readBool("verified"), category: try r.readString("category", max: label)))
        case .profileUnlocked:
            return .profileUnlocked(ProfileUnlocked(
                user: try r.readString("user", max: user), username: try r.readString("username", max: name),
                creditsSpent: try r.readZigZag("credits_spent")))
        case .postAnalysisCompleted:
            return .postAnalysisCompleted(PostAnalysisCompleted(
                username: try r.readString("username", max: name), postID: try r.readString("post_id", max: id),
                sentiment: try r.readDouble("sentiment"), language: try r.readString("language", max: 16),
                category: try r.readString("category", max: label), durationMs: try r.readInt("duration_ms")))
        case .postAnalysisFailed:
            return .postAnalysisFailed(PostAnalysisFailed(
                username: try r.readString("username", max: name), postID: try r.readString("post_id", max: id),
                error: try r.readString("error", max: text), durationMs: try r.readInt("duration_ms")))
        case .cdnJobQueued:
            return .cdnJobQueued(CdnJobQueued(
                jobID: try r.readString("job_id", max: id), priority: try r.readCase("priority"),
                kind: try r.readString("kind", max: label),
                username: try r.readOptional("username") { try $0.readString("username", max: name) }))
        case .cdnJobSucceeded:
            return .cdnJobSucceeded(CdnJobSucceeded(
                jobID: try r.readString("job_id", max: id), priority: try r.readCase("priority"),
                kind: try r.readString("kind", max: label), durationMs: try r.readInt("duration_ms"),
                bytes: try r.readOptional("bytes") { try $0.readZigZag("bytes") }))
        case .cdnJobFailed:
            return .cdnJobFailed(CdnJobFailed(
                jobID: try r.readString("job_id", max: id), priority: try r.readCase("priority"),
                kind: try r.readString("kind", max: label), durationMs: try r.readInt("duration_ms"),
                error: try r.readString("error", max: text),
                attempt: try r.readOptional("attempt") { try $0.readInt("attempt") },
                willRetry: try r.readOptional("will_retry") { try $0.readBool("will_retry") }))
        case .healthSampled:
            return .healthSampled(HealthSampled(
                component: try r.readString("component", max: FieldRules.maxComponentBytes), status: try r.readCase("status"),
                memoryPct: try r.readDouble("memory_pct"), cpuPct: try r.readDouble("cpu_pct"),
                diskPct: try r.readDouble("disk_pct"), latencyMs: try r.readDouble("latency_ms")))
        case .circuitBreakerChanged:
            return .circuitBreakerChanged(CircuitBreakerChanged(
                component: try r.readString("component", max: FieldRules.maxComponentBytes), state: try r.readCase("state"),
                reason: try r.readString("reason", max: text)))
        }
    }
}

extension ByteWriter {
    mutating func writeBool(_ value: Bool) { writeUInt8(value ? 1 : 0) }
    mutating func writeDouble(_ value: Double) { writeLE(value.bitPattern) }
    mutating func writeCase<T: CaseIterable & Equatable>(_ value: T) where T.AllCases == [T] {
        writeUInt8(UInt8(T.allCases.firstIndex(of: value)!))
    }
    mutating func writeOptional<T>(_ value: T?, _ write: (inout ByteWriter, T) -> Void) {
        if let value {
            writeUInt8(1)
            write(&self, value)
        } else {
            writeUInt8(0)
        }
    }
}

extension ByteReader {
    mutating func readBool(_ what: StaticString) throws -> Bool {
        switch try readUInt8(what) {
        case 0: return false
        case 1: return true
        case let other: throw DomainError(.malformedPayload, "\(what) is \(other), not a boolean 0/1")
        }
    }

    mutating func readDouble(_ what: StaticString) throws -> Double {
        let value = Double(bitPattern: try readLE(UInt64.self, what))
        guard value.isFinite else { throw DomainError(.malformedPayload, "\(what) is not a finite number") }
        return value
    }

    /// An integer field that the Swift API holds as `Int` (durations, attempts).
    mutating func readInt(_ what: StaticString) throws -> Int {
        Int(try readZigZag(what))
    }

    mutating func readCase<T: CaseIterable>(_ what: StaticString) throws -> T where T.AllCases == [T] {
        let index = Int(try readUInt8(what))
        guard index < T.allCases.count else {
            throw DomainError(.malformedPayload, "\(what) has case index \(index); this build knows \(T.allCases.count)")
        }
        return T.allCases[index]
    }

    mutating func readOptional<T>(_ what: StaticString, _ read: (inout ByteReader) throws -> T) throws -> T? {
        switch try readUInt8(what) {
        case 0: return nil
        case 1: return try read(&self)
        case let other: throw DomainError(.malformedPayload, "\(what) has presence byte \(other), not 0/1")
        }
    }
}
