import EventLog
import Events
import TallyTestSupport
import Testing
@testable import replay

/// Events of every catalogue type, optionals present and absent, at the edges of their
/// ranges, shared by the codec, JSON and import/export suites.
enum CatalogueSamples {
    static let longUser = String(repeating: "u", count: FieldRules.maxUserIDBytes)
    static let longUsername = String(repeating: "a", count: FieldRules.maxUsernameLength)
    static let longID = String(repeating: "9", count: FieldRules.maxPostIDBytes)

    static let events: [DomainEvent] = [
        .creditsGranted(CreditsGranted(user: "42", amount: 1, reason: "")),
        .creditsGranted(CreditsGranted(user: longUser, amount: FieldRules.maxCredits, reason: "welcome bonus — café ☕ \"quoted\" \\ /")),
        .creatorSearched(CreatorSearched(user: "b1c2-uuid", username: "fit.bayann", servedFrom: .cache, durationMs: 0, found: true)),
        .creatorSearched(CreatorSearched(user: "7", username: longUsername, servedFrom: .fresh, durationMs: FieldRules.maxDurationMs, found: false)),
        .profileRefreshed(ProfileRefreshed(username: "_x.y_", followers: 0, following: FieldRules.maxCount, postsCount: 12, verified: true, category: "fitness")),
        .profileRefreshed(ProfileRefreshed(username: "z", followers: FieldRules.maxCount, following: 0, postsCount: 0, verified: false, category: "")),
        .profileUnlocked(ProfileUnlocked(user: "42", username: "fit.bayann", creditsSpent: 0)),
        .profileUnlocked(ProfileUnlocked(user: "42", username: "other_1", creditsSpent: FieldRules.maxCredits)),
        .postAnalysisCompleted(PostAnalysisCompleted(username: "fit.bayann", postID: "p-1", sentiment: -1, language: "en", category: "sport", durationMs: 1_234)),
        .postAnalysisCompleted(PostAnalysisCompleted(username: "fit.bayann", postID: longID, sentiment: 0.1 + 0.2, language: "", category: "", durationMs: 0)),
        .postAnalysisCompleted(PostAnalysisCompleted(username: "q", postID: "p", sentiment: 1, language: "pt-BR", category: "ü", durationMs: 5)),
        .postAnalysisFailed(PostAnalysisFailed(username: "fit.bayann", postID: "p-2", error: "model timeout after 30 s", durationMs: 30_000)),
        .cdnJobQueued(CdnJobQueued(jobID: "7f3a", priority: .critical, kind: "avatar")),
        .cdnJobQueued(CdnJobQueued(jobID: longID, priority: .low, kind: "post-image", username: "fit.bayann")),
        .cdnJobSucceeded(CdnJobSucceeded(jobID: "7f3a", priority: .high, kind: "avatar", durationMs: 80)),
        .cdnJobSucceeded(CdnJobSucceeded(jobID: "7f3b", priority: .medium, kind: "avatar", durationMs: 0, bytes: 1 << 40)),
        .cdnJobFailed(CdnJobFailed(jobID: "7f3c", priority: .low, kind: "avatar", durationMs: 10, error: "404")),
        .cdnJobFailed(CdnJobFailed(jobID: "7f3d", priority: .critical, kind: "k", durationMs: 10, error: "", attempt: 1_000, willRetry: false)),
        .cdnJobFailed(CdnJobFailed(jobID: "7f3e", priority: .high, kind: "k", durationMs: 10, error: "5xx", attempt: 1, willRetry: true)),
        .healthSampled(HealthSampled(component: "database", status: .ok, memoryPct: 0, cpuPct: 100, diskPct: 64.5, latencyMs: 0.001)),
        .healthSampled(HealthSampled(component: "ai-worker", status: .down, memoryPct: 99.99, cpuPct: 0, diskPct: 0, latencyMs: Double(FieldRules.maxDurationMs))),
        .healthSampled(HealthSampled(component: "api", status: .degraded, memoryPct: .leastNonzeroMagnitude, cpuPct: 33.333333333333336, diskPct: 1e-7, latencyMs: 12.5)),
        .circuitBreakerChanged(CircuitBreakerChanged(component: "database", state: .open, reason: "5 failures in 10 s")),
        .circuitBreakerChanged(CircuitBreakerChanged(component: "database", state: .halfOpen, reason: "")),
        .circuitBreakerChanged(CircuitBreakerChanged(component: "database", state: .closed, reason: "probe ok")),
    ]

    /// A stored event holding `event`, as the log would give it back.
    static func recorded(_ event: DomainEvent, position: LogPosition = 1, version: UInt64 = 0, key: String? = nil) -> RecordedEvent {
        RecordedEvent(
            position: position, stream: event.stream, streamVersion: version, type: event.type.rawValue,
            schemaVersion: EventType.currentSchemaVersion, recordedAt: 1_795_615_387_123_456 + Int64(position),
            actor: "user:42", correlationID: "corr-\(position)", causationID: position > 1 ? "cause-\(position - 1)" : "",
            idempotencyKey: key, payload: PayloadCodec.encode(event))
    }
}

extension SplitMix64 {
    mutating func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8.random(in: 0...255, using: &self) } }
}

/// The binary payload codec: every type round-trips, malformed bytes throw (never trap),
/// newer versions and unknown types stay opaque, and validation refuses bad fields by name.
@Suite struct EventCodecTests {
    static func decode(_ type: EventType, _ bytes: [UInt8], schema: UInt16 = EventType.currentSchemaVersion) throws -> DomainEvent {
        try bytes.withUnsafeBytes { try PayloadCodec.decode(type, schemaVersion: schema, from: $0) }
    }

    @Test func samplesCoverEveryType() {
        #expect(Set(CatalogueSamples.events.map(\.type)) == Set(EventType.allCases))
    }

    @Test(arguments: CatalogueSamples.events)
    func everyEventRoundTrips(_ event: DomainEvent) throws {
        let valid = try event.validated()
        #expect(valid == event, "samples are already normalised")
        let bytes = PayloadCodec.encode(event)
        #expect(try Self.decode(event.type, bytes) == event)
        let proposed = event.proposed(actor: "a", correlationID: "c", causationID: "d", recordedAt: 7)
        #expect(proposed.type == event.type.rawValue && proposed.schemaVersion == EventType.currentSchemaVersion)
        #expect(proposed.payload == bytes && proposed.recordedAt == 7 && proposed.actor == "a")
        let stored = CatalogueSamples.recorded(event)
        #expect(stored.domainEvent == event)
        #expect(stored.decoded() == .known(event))
        #expect(event.stream == "\(event.type.category)-\(event.streamID)")
    }

    @Test(arguments: CatalogueSamples.events)
    func truncatedAndTrailingBytesThrow(_ event: DomainEvent) {
        let bytes = PayloadCodec.encode(event)
        for length in 0..<bytes.count {
            #expect(throws: DomainError.self, "prefix of \(length) bytes") { try Self.decode(event.type, Array(bytes[..<length])) }
        }
        for extra in [[0], [1, 2, 3]] as [[UInt8]] {
            let error = #expect(throws: DomainError.self) { try Self.decode(event.type, bytes + extra) }
            #expect(error?.code == .malformedPayload)
        }
    }

    @Test func randomBytesNeverTrap() {
        var rng = SplitMix64(seed: 0xC0DEC)
        var decoded = 0
        for round in 0..<30_000 {
            let type = EventType.allCases[round % EventType.allCases.count]
            var bytes = rng.bytes(Int.random(in: 0...48, using: &rng))
            if round % 3 == 0, let sample = CatalogueSamples.events.first(where: { $0.type == type }) {
                // Mutations of a valid payload reach deeper than pure noise.
                bytes = PayloadCodec.encode(sample)
                let i = Int.random(in: 0..<bytes.count, using: &rng)
                bytes[i] = UInt8.random(in: 0...255, using: &rng)
            }
            do {
                _ = try Self.decode(type, bytes)
                decoded += 1
            } catch let error as DomainError {
                #expect([.malformedPayload, .invalidField].contains(error.code), "\(error)")
            } catch {
                Issue.record("not a DomainError: \(error)")
            }
        }
        #expect(decoded > 0 && decoded < 30_000)
    }

    @Test func newerSchemaUnknownTypeAndBadBytesStayOpaque() throws {
        let event = CatalogueSamples.events[0]
        let payload = PayloadCodec.encode(event)
        func stored(type: String, schema: UInt16, payload: [UInt8]) -> RecordedEvent {
            RecordedEvent(position: 9, stream: "user-42", streamVersion: 0, type: type, schemaVersion: schema, recordedAt: 0,
                          actor: "", correlationID: "", causationID: "", idempotencyKey: nil, payload: payload)
        }
        let cases: [(RecordedEvent, DomainError.Code)] = [
            (stored(type: "CreditsGranted", schema: 2, payload: payload), .unsupportedVersion),
            (stored(type: "CreditsGranted", schema: 900, payload: [1, 2, 3]), .unsupportedVersion),
            (stored(type: "LoyaltyPointsGranted", schema: 1, payload: payload), .unknownType),
            (stored(type: "CreditsGranted", schema: 1, payload: [0xFF, 0xFF]), .malformedPayload),
        ]
        for (recorded, code) in cases {
            #expect(recorded.domainEvent == nil)
            guard case .opaque(let opaque) = recorded.decoded() else {
                Issue.record("\(recorded) decoded as known")
                continue
            }
            #expect(opaque.reason.code == code, "\(opaque.reason)")
            #expect(opaque.type == recorded.type && opaque.schemaVersion == recorded.schemaVersion && opaque.payload == recorded.payload)
        }
    }

    // MARK: - Validation

    static func invalidField(_ event: DomainEvent) -> String? {
        do {
            _ = try event.validated()
            return nil
        } catch let error as DomainError {
            #expect(error.code == .invalidField)
            #expect(error.field.map { error.message.contains($0) } ?? false, "\(error)")
            return error.field
        } catch {
            Issue.record("not a DomainError: \(error)")
            return nil
        }
    }

    @Test func usernamesAreNormalisedToLowercase() throws {
        let searched = try DomainEvent.creatorSearched(CreatorSearched(user: "1", username: "Fit.BayANN", servedFrom: .cache, durationMs: 1, found: true)).validated()
        guard case .creatorSearched(let s) = searched else { throw TestFailure("type changed") }
        #expect(s.username == "fit.bayann")
        #expect(searched.stream == "user-1")
        let refreshed = try DomainEvent.profileRefreshed(ProfileRefreshed(username: "ABC_1", followers: 1, following: 1, postsCount: 1, verified: false, category: "")).validated()
        #expect(refreshed.stream == "profile-abc_1")
        let queued = try DomainEvent.cdnJobQueued(CdnJobQueued(jobID: "j", priority: .low, kind: "k", username: "MiXed")).validated()
        guard case .cdnJobQueued(let q) = queued else { throw TestFailure("type changed") }
        #expect(q.username == "mixed")
        #expect(try FieldRules.username(CatalogueSamples.longUsername.uppercased()) == CatalogueSamples.longUsername)
    }

    @Test(arguments: [String(repeating: "a", count: 31), "", "a-b", "a b", "café", "a@b", "x\u{0}", "ＡＢ"])
    func badUsernamesAreRefused(_ name: String) {
        let field = Self.invalidField(.profileUnlocked(ProfileUnlocked(user: "1", username: name, creditsSpent: 1)))
        #expect(field == "username", "\(name)")
    }

    @Test func outOfRangeFieldsAreRefusedByName() {
        let cases: [(DomainEvent, String)] = [
            (.creditsGranted(CreditsGranted(user: "1", amount: 0, reason: "")), "amount"),
            (.creditsGranted(CreditsGranted(user: "1", amount: FieldRules.maxCredits + 1, reason: "")), "amount"),
            (.creditsGranted(CreditsGranted(user: "", amount: 1, reason: "")), "user"),
            (.creditsGranted(CreditsGranted(user: CatalogueSamples.longUser + "u", amount: 1, reason: "")), "user"),
            (.creditsGranted(CreditsGranted(user: "a b", amount: 1, reason: "")), "user"),
            (.creditsGranted(CreditsGranted(user: "1", amount: 1, reason: "line\nbreak")), "reason"),
            (.creatorSearched(CreatorSearched(user: "1", username: "a", servedFrom: .cache, durationMs: -1, found: true)), "duration_ms"),
            (.creatorSearched(CreatorSearched(user: "1", username: "a", servedFrom: .cache, durationMs: FieldRules.maxDurationMs + 1, found: true)), "duration_ms"),
            (.profileRefreshed(ProfileRefreshed(username: "a", followers: -1, following: 0, postsCount: 0, verified: true, category: "")), "followers"),
            (.profileRefreshed(ProfileRefreshed(username: "a", followers: 0, following: 0, postsCount: FieldRules.maxCount + 1, verified: true, category: "")), "posts_count"),
            (.profileUnlocked(ProfileUnlocked(user: "1", username: "a", creditsSpent: -1)), "credits_spent"),
            (.postAnalysisCompleted(PostAnalysisCompleted(username: "a", postID: "p", sentiment: 1.0001, language: "en", category: "", durationMs: 1)), "sentiment"),
            (.postAnalysisCompleted(PostAnalysisCompleted(username: "a", postID: "p", sentiment: .nan, language: "en", category: "", durationMs: 1)), "sentiment"),
            (.postAnalysisCompleted(PostAnalysisCompleted(username: "a", postID: CatalogueSamples.longID + "9", sentiment: 0, language: "en", category: "", durationMs: 1)), "post_id"),
            (.postAnalysisFailed(PostAnalysisFailed(username: "a", postID: "", error: "", durationMs: 1)), "post_id"),
            (.cdnJobQueued(CdnJobQueued(jobID: "j", priority: .low, kind: "")), "kind"),
            (.cdnJobSucceeded(CdnJobSucceeded(jobID: "j", priority: .low, kind: "k", durationMs: 1, bytes: -1)), "bytes"),
            (.cdnJobFailed(CdnJobFailed(jobID: "j", priority: .low, kind: "k", durationMs: 1, error: "", attempt: 0)), "attempt"),
            (.healthSampled(HealthSampled(component: "db", status: .ok, memoryPct: 100.5, cpuPct: 0, diskPct: 0, latencyMs: 0)), "memory_pct"),
            (.healthSampled(HealthSampled(component: "db", status: .ok, memoryPct: 0, cpuPct: -0.1, diskPct: 0, latencyMs: 0)), "cpu_pct"),
            (.healthSampled(HealthSampled(component: "db", status: .ok, memoryPct: 0, cpuPct: 0, diskPct: .infinity, latencyMs: 0)), "disk_pct"),
            (.healthSampled(HealthSampled(component: "db", status: .ok, memoryPct: 0, cpuPct: 0, diskPct: 0, latencyMs: -1)), "latency_ms"),
            (.circuitBreakerChanged(CircuitBreakerChanged(component: "", state: .open, reason: "")), "component"),
        ]
        for (event, field) in cases {
            #expect(Self.invalidField(event) == field, "\(event)")
        }
    }
}
