import EventLog
@testable import Events
import Foundation
import Projections
import TallyTestSupport
import Testing

/// The compact folds (interned ids, payload bytes read in place) against the reference
/// folds kept from before (ReferenceFolds.swift: String keys, one DomainEvent per event),
/// on random event sequences with repeated and exotic strings and damaged payloads.
@Suite(.timeLimit(.minutes(5))) struct FoldOracleTests {
    static let seeds: [UInt64] = [3, 11, 99, 2027, 0xC0FFEE, 0xBAD_5EED]

    /// Random events as stored events: `RandomEvents`' cast plus non-ASCII, canonically
    /// equal and invalid-UTF-8 spellings, and now and then a payload cut short, grown or
    /// with a byte changed (which both decoders must skip alike).
    static func events(count: Int, seed: UInt64) -> [RecordedEvent] {
        var rng = SplitMix64(seed: seed ^ 0x5EED)
        let exotic = ["caf\u{E9}", "cafe\u{301}", "\u{212B}ngstr\u{F6}m", "\u{C5}ngstr\u{F6}m", "z\u{FFFD}", "\u{212A}elvin", "Kelvin", "p0123456789abcdef", "deadbeef", "x123456789", "ab12345678cd"]
        var out: [RecordedEvent] = []
        for (index, timed) in RandomEvents.make(count: count, seed: seed).enumerated() {
            var proposed = timed.proposed
            var type = proposed.type
            if var event = timed.event, Int.random(in: 0..<10, using: &rng) == 0 {
                let name = exotic.randomElement(using: &rng)!
                switch event {
                case .profileUnlocked(var e): e.username = name; event = .profileUnlocked(e)
                case .profileRefreshed(var e): e.username = name; e.category = name; event = .profileRefreshed(e)
                case .postAnalysisCompleted(var e): e.username = name; e.postID = name; event = .postAnalysisCompleted(e)
                case .postAnalysisFailed(var e): e.username = name; event = .postAnalysisFailed(e)
                case .creatorSearched(var e): e.username = name; event = .creatorSearched(e)
                default: break
                }
                proposed = event.proposed(actor: "test", recordedAt: timed.at)
                type = proposed.type
            }
            var payload = proposed.payload
            if type == EventType.profileUnlocked.rawValue, Int.random(in: 0..<8, using: &rng) == 0 {
                // Invalid UTF-8 in the username: "z\u{FFFD}" once repaired, like the exotic one.
                payload = [2, UInt8(ascii: "u"), UInt8(ascii: "1"), 2, UInt8(ascii: "z"), Bool.random(using: &rng) ? 0xFF : 0xC3, 2]
            }
            if Int.random(in: 0..<12, using: &rng) == 0, !payload.isEmpty {
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: payload.removeLast(Int.random(in: 1...payload.count, using: &rng))
                case 1: payload.append(UInt8.random(in: 0...255, using: &rng))
                case 2: payload[Int.random(in: 0..<payload.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                default: payload[0] = 0xFF  // an invalid UTF-8 lead byte in most first strings
                }
            }
            out.append(RecordedEvent(position: LogPosition(index + 1), stream: timed.stream, streamVersion: 0, type: type,
                                     schemaVersion: proposed.schemaVersion, recordedAt: proposed.recordedAt ?? timed.at, actor: "test",
                                     correlationID: "", causationID: "", idempotencyKey: nil, payload: payload))
        }
        return out
    }

    /// Folds `events` in random batch sizes, as the log delivers them.
    static func fold<P: Projection>(_: P.Type, _ events: [RecordedEvent], seed: UInt64) -> P {
        var rng = SplitMix64(seed: seed)
        var projection = P()
        var index = 0
        while index < events.count {
            let end = min(events.count, index + Int.random(in: 1...40, using: &rng))
            projection.apply(batch: Array(events[index..<end]))
            index = end
        }
        return projection
    }

    @Test(arguments: seeds) func payloadFieldsAcceptExactlyWhatTheDecoderAccepts(seed: UInt64) {
        for event in Self.events(count: 2_000, seed: seed) {
            let full = event.domainEvent
            let fields = event.withFields { $0 != nil }
            #expect(fields == (full != nil), "position \(event.position), \(event.type)")
        }
    }

    @Test(arguments: seeds) func systemStatsEqualTheReference(seed: UInt64) {
        let events = Self.events(count: 1_500, seed: seed)
        var reference = ReferenceSystemStats()
        for event in events { if let d = event.domainEvent { reference.apply(d, recordedAt: event.recordedAt) } }
        let compact = Self.fold(SystemStatsProjection.self, events, seed: seed)
        #expect(compact.makeView() == reference.makeView(), "seed \(seed)")
        // The DomainEvent path (the API's) gives the same.
        var decoded = SystemStatsProjection()
        for event in events { if let d = event.domainEvent { decoded.apply(d, of: event) } }
        #expect(decoded.makeView() == reference.makeView(), "seed \(seed)")
    }

    @Test(arguments: seeds) func unlockedProfilesEqualTheReference(seed: UInt64) {
        let events = Self.events(count: 1_500, seed: seed)
        var reference = ReferenceUnlockedProfiles()
        var users: Set<String> = ["nobody"], usernames: Set<String> = ["nobody"]
        for event in events {
            guard let d = event.domainEvent else { continue }
            reference.apply(d, position: event.position, recordedAt: event.recordedAt)
            switch d {
            case .profileUnlocked(let e): users.insert(e.user); usernames.insert(e.username)
            case .profileRefreshed(let e): usernames.insert(e.username)
            case .postAnalysisCompleted(let e): usernames.insert(e.username)
            case .postAnalysisFailed(let e): usernames.insert(e.username)
            default: break
            }
        }
        let expected = reference.makeView()
        var decoded = UnlockedProfilesProjection()
        for event in events { if let d = event.domainEvent { decoded.apply(d, of: event) } }
        for view in [Self.fold(UnlockedProfilesProjection.self, events, seed: seed).makeView(), decoded.makeView()] {
            for user in users {
                let page = view.unlocked(user: user, limit: 1_000)
                let want = expected.unlocked(user: user, limit: 1_000)
                #expect(page.profiles.map(ReferenceUnlocked.init) == want.profiles, "seed \(seed), \(user)")
                #expect(page.total == want.total && page.nextCursor == want.nextCursor, "seed \(seed), \(user)")
                // Page by page, following the cursors.
                var cursor: String?
                repeat {
                    let a = view.unlocked(user: user, limit: 2, cursor: cursor)
                    let b = expected.unlocked(user: user, limit: 2, cursor: cursor)
                    #expect(a.profiles.map(ReferenceUnlocked.init) == b.profiles && a.nextCursor == b.nextCursor, "seed \(seed), \(user)")
                    cursor = a.nextCursor
                } while cursor != nil
                for username in usernames {
                    #expect(view.hasUnlocked(user: user, username: username) == expected.hasUnlocked(user: user, username: username))
                }
            }
            for username in usernames {
                #expect(view.profile(username) == expected.profile(username), "seed \(seed), \(username)")
            }
        }
    }

    @Test(arguments: seeds) func metricsFromBytesEqualMetricsFromDomainEvents(seed: UInt64) {
        let events = Self.events(count: 1_500, seed: seed)
        var decoded = MetricsProjection()
        for event in events { if let d = event.domainEvent { decoded.apply(d, of: event) } }
        let compact = Self.fold(MetricsProjection.self, events, seed: seed)
        #expect(MetricsComparison(compact) == MetricsComparison(decoded), "seed \(seed)")
    }

    /// A snapshot taken part-way, loaded, then folded on with the rest equals a fold of
    /// everything, for the two views whose state changed.
    @Test(arguments: seeds) func snapshotPlusTailEqualsTheWholeFold(seed: UInt64) throws {
        let events = Self.events(count: 1_200, seed: seed)
        let cut = Int(seed % 900) + 100
        let directory = try makeTemporaryDirectory("fold-oracle-\(seed)")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = SnapshotStore(directory: directory)

        func resumed<P: Projection>(_: P.Type) throws -> (P, P) {
            let head = Self.fold(P.self, Array(events[..<cut]), seed: seed)
            try store.save(head, position: LogPosition(cut), recordedAt: events[cut - 1].recordedAt)
            let load = store.load(P.self)
            #expect(load.file != nil && load.ignored.isEmpty, "\(load.ignored)")
            var loaded = load.projection
            loaded.apply(batch: Array(events[cut...]))
            return (loaded, Self.fold(P.self, events, seed: seed))
        }
        let (stats, wholeStats) = try resumed(SystemStatsProjection.self)
        #expect(stats.makeView() == wholeStats.makeView())
        let (unlocked, wholeUnlocked) = try resumed(UnlockedProfilesProjection.self)
        #expect(unlocked.makeView() == wholeUnlocked.makeView())
        let (metrics, wholeMetrics) = try resumed(MetricsProjection.self)
        #expect(MetricsComparison(metrics) == MetricsComparison(wholeMetrics))
    }

    /// The quick type lookup finds every catalogue name and nothing else: each name with
    /// any one byte changed, cut or grown is not taken for a type unless it is one.
    @Test func typeLookupFindsExactlyTheCatalogueNames() {
        func lookup(_ bytes: [UInt8]) -> EventType? { bytes.withUnsafeBytes { EventType(bytes: $0) } }
        for type in EventType.allCases {
            let name = Array(type.rawValue.utf8)
            #expect(lookup(name) == type)
            #expect(lookup(Array(name.dropLast())) == nil)
            #expect(lookup(name + [0x73]) == nil)
            for index in name.indices {
                for replacement in [UInt8(ascii: "x"), name[index] ^ 0x20] {
                    var changed = name
                    changed[index] = replacement
                    #expect(lookup(changed) == EventType(rawValue: String(decoding: changed, as: UTF8.self)), "\(changed)")
                }
            }
        }
    }
}
