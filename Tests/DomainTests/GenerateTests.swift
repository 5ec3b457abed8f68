import ArgumentParser
import EventLog
import Events
import Foundation
import TallyTestSupport
import Testing
@testable import replay

/// `DomainWorkload` and `replay generate`: every event is valid, wallets never go negative
/// and a pair is never unlocked twice, each stream's times never go back, all 11 types
/// appear, health has incidents and breakers move legally, and the same seed writes the
/// same log byte for byte.
@Suite(.timeLimit(.minutes(5))) struct GenerateTests {
    // MARK: - The generator

    @Test(arguments: [1, 42] as [UInt64])
    func everyGeneratedEventValidatesAndRoundTrips(seed: UInt64) throws {
        var workload = DomainWorkload(seed: seed)
        var bad = 0
        for g in workload.nextGenerated(50_000) where bad < 5 {
            let valid = try g.event.validated()
            let decoded = try g.proposed.payload.withUnsafeBytes {
                try PayloadCodec.decode(g.event.type, schemaVersion: EventType.currentSchemaVersion, from: $0)
            }
            let envelopeOK = g.stream == g.event.stream && (g.actor.hasPrefix("user:") || g.actor.hasPrefix("service:"))
                && g.correlationID.utf8.count == 12 && g.correlationID.utf8.allSatisfy { Self.isHexDigit($0) }
            if valid != g.event || decoded != g.event || !envelopeOK {
                bad += 1
                Issue.record("seed \(seed): \(g.event) as \(g.stream) by \(g.actor) [\(g.correlationID)]")
            }
        }
    }

    @Test(arguments: [1, 7, 42] as [UInt64])
    func twentyThousandEventsHoldEveryType(seed: UInt64) {
        var workload = DomainWorkload(seed: seed)
        let types = Set(workload.nextEvents(20_000).map(\.0.type))
        #expect(types == Set(EventType.allCases), "seed \(seed) lacks \(Set(EventType.allCases).subtracting(types))")
    }

    @Test func batchesGroupEachStreamOnceInGeneratedOrderWithinAnHour() throws {
        var flat = DomainWorkload(seed: 9), grouped = DomainWorkload(seed: 9)
        var cut = 0
        for size in [1, 4_999, 20_000, 20_000, 20_000, 20_000] {
            let batch = grouped.nextBatch(size)
            let events = flat.nextGenerated(batch.count)
            #expect(batch.count >= 1 && batch.count <= size && batch.appends.reduce(0) { $0 + $1.events.count } == batch.count)
            // One hour of event time at most: the next event is of a later hour, or the batch is full.
            let hour: Int64 = 3_600_000_000
            #expect(events.allSatisfy { $0.recordedAt / hour == events[0].recordedAt / hour })
            if batch.count < size {
                cut += 1
                var peek = flat
                #expect(peek.nextGenerated(1)[0].recordedAt / hour != events[0].recordedAt / hour)
            }
            #expect(Set(batch.appends.map(\.stream)).count == batch.appends.count, "a stream appears twice in one append")
            #expect(batch.firstRecordedAt == events.first?.recordedAt && batch.lastRecordedAt == events.last?.recordedAt)
            var expected: [String: [ProposedEvent]] = [:]
            for g in events { expected[g.stream, default: []].append(g.proposed) }
            for append in batch.appends {
                #expect(append.events == expected[append.stream], "\(append.stream)")
            }
        }
        #expect(cut >= 1, "80,000 events span hours: some batch ends at an hour")
    }

    @Test func walletsCoverEveryUnlockAndPairsNeverRepeat() {
        var workload = DomainWorkload(seed: 3)
        var check = WalletCheck(cost: 1)
        for (event, _) in workload.nextEvents(150_000) { check.apply(event) }
        #expect(check.violations.isEmpty, "\(check.violations.prefix(5))")
        #expect(check.unlocks > 1_000 && check.grants > 1_000, "unlocks \(check.unlocks), grants \(check.grants)")

        var costly = DomainWorkload(DomainWorkload.Settings(seed: 3, unlockCost: 4))
        var checkCostly = WalletCheck(cost: 4)
        for (event, _) in costly.nextEvents(60_000) { checkCostly.apply(event) }
        #expect(checkCostly.violations.isEmpty, "\(checkCostly.violations.prefix(5))")
        #expect(checkCostly.unlocks > 100)
    }

    @Test func searchesLookLikeTheProduct() {
        var workload = DomainWorkload(seed: 11)
        var searches = 0, cached = 0, found = 0
        var durations: [Int] = []
        for (event, _) in workload.nextEvents(100_000) {
            guard case .creatorSearched(let s) = event else { continue }
            searches += 1
            cached += s.servedFrom == .cache ? 1 : 0
            found += s.found ? 1 : 0
            durations.append(s.durationMs)
        }
        let hit = Double(cached) / Double(searches), foundRatio = Double(found) / Double(searches)
        #expect(searches > 15_000)
        #expect(hit > 0.65 && hit < 0.78, "cache hit ratio \(hit)")
        #expect(foundRatio > 0.86 && foundRatio < 0.94, "found ratio \(foundRatio)")
        durations.sort()
        #expect(durations[durations.count / 2] < 100 && durations[durations.count * 99 / 100] > 1_000, "a fast cached median, a slow fresh tail")
    }

    /// A slow rate makes health most of the events: 150,000 of them span about 9 days.
    @Test func healthSamplesEvery30sWithIncidentsAlertsAndLegalBreakerMoves() {
        var workload = DomainWorkload(DomainWorkload.Settings(seed: 5, eventsPerSecond: 0.18))
        var lastSample: [String: Int64] = [:]
        var breaker: [String: BreakerState] = [:]
        var statuses = Set<HealthStatus>(), states = Set<BreakerState>()
        var high = (memory: 0, cpu: 0, disk: 0)
        var problems: [String] = []
        for (event, at) in workload.nextEvents(150_000) {
            switch event {
            case .healthSampled(let h):
                if let last = lastSample[h.component], at - last != DomainWorkload.healthInterval {
                    problems.append("\(h.component) sampled \(at - last) µs after the previous one")
                }
                lastSample[h.component] = at
                statuses.insert(h.status)
                if h.memoryPct > 65 { high.memory += 1 }
                if h.cpuPct > 75 { high.cpu += 1 }
                if h.diskPct > 85 { high.disk += 1 }
            case .circuitBreakerChanged(let b):
                let from = breaker[b.component] ?? .closed
                let legal: Bool = switch (from, b.state) {
                case (.closed, .open), (.open, .halfOpen), (.halfOpen, .closed), (.halfOpen, .open): true
                default: false
                }
                if !legal { problems.append("\(b.component): \(from) → \(b.state)") }
                breaker[b.component] = b.state
                states.insert(b.state)
            default: break
            }
        }
        #expect(problems.isEmpty, "\(problems.prefix(5))")
        #expect(Set(lastSample.keys) == Set(DomainWorkload.components))
        #expect(statuses == Set(HealthStatus.allCases))
        #expect(states == Set(BreakerState.allCases))
        #expect(high.memory > 0 && high.cpu > 0 && high.disk > 0, "\(high)")
    }

    // MARK: - replay generate

    @Test func sameSeedWritesTheSameLogAndOtherSeedsDiffer() async throws {
        try await Self.withDirectory { root in
            let args = ["--events", "30000", "--batch", "7000"]
            let a = try await Self.generate(root + "/a", args + ["--seed", "7"])
            let b = try await Self.generate(root + "/b", args + ["--seed", "7"])
            _ = try await Self.generate(root + "/c", args + ["--seed", "8"])
            let (headA, headB, headC) = (try Self.head(root + "/a"), try Self.head(root + "/b"), try Self.head(root + "/c"))
            #expect(headA.position == 30_000)
            #expect(DigestFile.render(headA) == DigestFile.render(headB))
            #expect(headC.position == 30_000 && headC.chainHash != headA.chainHash)
            #expect(a["first_recorded_at"] as? String == b["first_recorded_at"] as? String)
            #expect(a["last_recorded_at"] as? String == b["last_recorded_at"] as? String)
            #expect(Self.number(a["events"]) == 30_000 && Self.number(a["seed"]) == 7)
            #expect(Self.number(a["bytes_per_event"]) ?? 0 > 1 && Self.number(a["events_per_second"]) ?? 0 > 0)

            let files = try FileManager.default.contentsOfDirectory(atPath: root + "/a").filter { !$0.hasPrefix(".") && !$0.hasSuffix(".lock") }.sorted()
            #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/b").filter { !$0.hasPrefix(".") && !$0.hasSuffix(".lock") }.sorted() == files)
            for name in files {
                #expect(FileManager.default.contentsEqual(atPath: root + "/a/" + name, andPath: root + "/b/" + name), "\(name) differs")
            }
        }
    }

    @Test func theLogKeepsStreamOrderTimesAndWalletRules() async throws {
        try await Self.withDirectory { root in
            let summary = try await Self.generate(root + "/log", ["--events", "40000", "--batch", "9000", "--seed", "21"])
            let log = try FileLog(directory: root + "/log", options: .init(readOnly: true))
            var last: [String: (version: UInt64, at: Int64)] = [:]
            var check = WalletCheck(cost: 1)
            var problems: [String] = []
            var (minAt, maxAt) = (Int64.max, Int64.min)
            for try await recorded in log.read(from: 1) {
                let stream = recorded.stream
                guard let event = recorded.domainEvent, event.stream == stream else {
                    problems.append("position \(recorded.position): not a valid domain event of \(stream)")
                    continue
                }
                if let previous = last[stream], recorded.recordedAt < previous.at || recorded.streamVersion != previous.version + 1 {
                    problems.append("\(stream) v\(recorded.streamVersion) at \(recorded.recordedAt) after v\(previous.version) at \(previous.at)")
                }
                last[stream] = (recorded.streamVersion, recorded.recordedAt)
                (minAt, maxAt) = (min(minAt, recorded.recordedAt), max(maxAt, recorded.recordedAt))
                check.apply(event)
            }
            #expect(problems.isEmpty, "\(problems.prefix(5))")
            #expect(check.violations.isEmpty, "\(check.violations.prefix(5))")
            #expect(EventTime.iso8601(micros: minAt) == summary["first_recorded_at"] as? String)
            #expect(EventTime.iso8601(micros: maxAt) == summary["last_recorded_at"] as? String)
            #expect(minAt == 1_790_812_800_000_000, "the default start, 2026-10-01T00:00:00Z")
            // About 40,000 / 3.86 s of simulated time (nights are slower).
            let span = Double(maxAt - minAt) / 1e6
            #expect(span > 40_000 / 3.86 * 0.5 && span < 40_000 / 3.86 * 2.5, "span \(span) s")
        }
    }

    @Test func refusesALogThatHoldsEventsAndBadFlags() async throws {
        try await Self.withDirectory { root in
            let path = root + "/log"
            _ = try await Self.generate(path, ["--events", "500"])
            let head = try Self.head(path)
            do {
                _ = try await Self.generate(path, ["--events", "500"])
                Issue.record("generate wrote into a log that held events")
            } catch let exit as ExitCode {
                #expect(exit.rawValue == 2)
            }
            #expect(try Self.head(path) == head)
            for bad in [["--events", "0"], ["--events", "10", "--batch", "0"], ["--events", "10", "--start", "2026-13-01"],
                        ["--events", "10", "--rate", "0"]] {
                #expect(throws: (any Error).self, "\(bad)") { _ = try Generate.parse(["--log", root + "/other"] + bad) }
            }
            let started = try await Self.generate(root + "/start", ["--events", "50", "--start", "2027-01-15T12:00:00+01:00"])
            #expect(started["first_recorded_at"] as? String == "2027-01-15T11:00:00.000000Z")
        }
    }

    @Test func instantsParseAndFormat() {
        #expect(EventTime.parse("2026-10-01T00:00:00Z") == 1_790_812_800_000_000)
        #expect(EventTime.parse("2026-10-01") == 1_790_812_800_000_000)
        #expect(EventTime.parse("2026-10-01T02:30:00.25+02:30") == 1_790_812_800_250_000)
        #expect(EventTime.parse("1969-12-31T23:59:59.5Z") == -500_000)
        #expect(EventTime.iso8601(micros: -500_000) == "1969-12-31T23:59:59.500000Z")
        #expect(EventTime.iso8601(micros: 1_709_210_096_000_007) == "2024-02-29T12:34:56.000007Z")
        for bad in ["", "2026-02-30", "2026-10-01T24:00:00Z", "2026-10-01T00:00:00", "2026-10-01T00:00:00.Z", "x026-10-01"] {
            #expect(EventTime.parse(bad) == nil, "\(bad)")
        }
    }

    // MARK: - Helpers

    /// Folds wallet events in order: every unlock costs `cost`, is paid from what was granted
    /// before it, and names a (user, profile) pair not unlocked before.
    struct WalletCheck {
        let cost: Int64
        var balance: [String: Int64] = [:]
        var pairs = Set<String>()
        var violations: [String] = []
        var unlocks = 0, grants = 0

        mutating func apply(_ event: DomainEvent) {
            switch event {
            case .creditsGranted(let g):
                balance[g.user, default: 0] += g.amount
                grants += 1
            case .profileUnlocked(let u):
                unlocks += 1
                let before = balance[u.user, default: 0]
                if u.creditsSpent != cost || before < cost { violations.append("\(u.user) unlocked \(u.username) for \(u.creditsSpent) with \(before)") }
                if !pairs.insert(u.user + "/" + u.username).inserted { violations.append("\(u.user) unlocked \(u.username) again") }
                balance[u.user] = before - u.creditsSpent
            default: break
            }
        }
    }

    /// Runs `replay generate` in-process; returns its JSON summary.
    static func generate(_ log: String, _ arguments: [String]) async throws -> [String: Any] {
        let summary = try await Generate.parse(["--log", log] + arguments).execute().rendered
        return try #require(try JSONSerialization.jsonObject(with: Data(summary.utf8)) as? [String: Any])
    }

    /// What `replay digest` prints: the head position and chain hash.
    static func head(_ log: String) throws -> LogHead {
        try FileLog(directory: log, options: .init(readOnly: true)).currentHead()
    }

    static func withDirectory(_ body: (String) async throws -> Void) async throws {
        try await withTemporaryDirectory("generate") { try await body($0.path) }
    }

    static func number(_ value: Any?) -> Double? { (value as? NSNumber)?.doubleValue }

    static func isHexDigit(_ byte: UInt8) -> Bool { (0x30...0x39).contains(byte) || (0x61...0x66).contains(byte) }
}
