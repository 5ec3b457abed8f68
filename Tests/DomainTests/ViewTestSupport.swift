import EventLog
import Events
import Foundation
import Projections
import TallyTestSupport
@testable import replay

/// A log in a fresh temporary directory for the view tests, with helpers to append domain
/// events at chosen event times.
struct ViewFixture {
    let directory: String
    var log: FileLog

    init(_ label: String = #function) throws {
        directory = try makeTemporaryDirectory(label)
        log = try FileLog(directory: directory + "/log", options: .init(fsync: .never))
    }

    var snapshotDirectory: String { directory + "/snapshots" }

    /// Appends each event to its own stream, in order, in appends of up to `chunk` events.
    func append(_ events: [TimedEvent], chunk: Int = 50) async throws {
        var index = 0
        while index < events.count {
            let slice = events[index..<min(events.count, index + chunk)]
            var appends: [StreamAppend] = []
            for timed in slice {
                let proposed = timed.proposed
                if let last = appends.last, last.stream == timed.stream {
                    appends[appends.count - 1].events.append(proposed)
                } else if appends.contains(where: { $0.stream == timed.stream }) {
                    // A stream may appear once per append: start a new append to keep order.
                    _ = try await log.append(appends, idempotencyKey: nil)
                    appends = [StreamAppend(stream: timed.stream, events: [proposed])]
                } else {
                    appends.append(StreamAppend(stream: timed.stream, events: [proposed]))
                }
            }
            if !appends.isEmpty { _ = try await log.append(appends, idempotencyKey: nil) }
            index += chunk
        }
    }

    /// Closes and reopens the log, as a restart does.
    mutating func restart() async throws {
        try await log.close()
        log = try FileLog(directory: directory + "/log", options: .init(fsync: .never))
    }

    func remove() async {
        try? await log.close()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// A domain event (or an opaque one) with the event time it is recorded at.
struct TimedEvent {
    var event: DomainEvent?
    var opaqueType: String?
    var at: Int64

    init(_ event: DomainEvent, at: Int64) {
        self.event = event
        self.at = at
    }

    /// An event this build cannot read: folds must skip it.
    init(opaque type: String, at: Int64) {
        self.opaqueType = type
        self.at = at
    }

    var stream: String { event?.stream ?? "future-x" }

    var proposed: ProposedEvent {
        if let event { return event.proposed(actor: "test", recordedAt: at) }
        return ProposedEvent(type: opaqueType ?? "FutureThing", schemaVersion: 1, recordedAt: at, payload: [1, 2, 3])
    }
}

/// Random but valid event sequences over a small cast, so that users repeat unlocks, posts
/// fail and recover, components change state, times go back now and then, and opaque events
/// (an unknown type, a newer schema) are mixed in.
enum RandomEvents {
    static let start: Int64 = 1_790_000_000_000_000

    static func make(count: Int, seed: UInt64) -> [TimedEvent] {
        var rng = SplitMix64(seed: seed)
        let users = (0..<6).map { "u\($0)" }
        let names = (0..<12).map { "creator.\($0)" }
        let components = ["api", "database", "ai-worker", "cdn"]
        var time = start
        var out: [TimedEvent] = []
        for _ in 0..<count {
            // Mostly forward, sometimes hours at once, sometimes a little back.
            switch Int.random(in: 0..<100, using: &rng) {
            case 0..<80: time += Int64.random(in: 0...30_000_000, using: &rng)
            case 80..<95: time += Int64.random(in: 0...7_200_000_000, using: &rng)
            default: time -= Int64.random(in: 0...600_000_000, using: &rng)
            }
            let user = users.randomElement(using: &rng)!
            let name = names.randomElement(using: &rng)!
            let post = "p\(Int.random(in: 0..<30, using: &rng))"
            let priority = CdnPriority.allCases.randomElement(using: &rng)!
            let component = components.randomElement(using: &rng)!
            let duration = Int.random(in: 0...5_000, using: &rng)
            let event: DomainEvent
            switch Int.random(in: 0..<13, using: &rng) {
            case 0: event = .creditsGranted(.init(user: user, amount: Int64.random(in: 1...5, using: &rng), reason: "promo"))
            case 1: event = .creatorSearched(.init(user: user, username: name, servedFrom: Bool.random(using: &rng) ? .cache : .fresh, durationMs: duration, found: Bool.random(using: &rng)))
            case 2: event = .profileRefreshed(.init(username: name, followers: Int64.random(in: 0...1_000_000, using: &rng), following: 10, postsCount: 5, verified: Bool.random(using: &rng), category: "art"))
            case 3: event = .profileUnlocked(.init(user: user, username: name, creditsSpent: 1))
            case 4, 5: event = .postAnalysisCompleted(.init(username: name, postID: post, sentiment: 0.5, language: "en", category: "art", durationMs: duration))
            case 6: event = .postAnalysisFailed(.init(username: name, postID: post, error: "timeout", durationMs: duration))
            case 7: event = .cdnJobQueued(.init(jobID: "j\(Int.random(in: 0..<50, using: &rng))", priority: priority, kind: "avatar", username: Bool.random(using: &rng) ? name : nil))
            case 8: event = .cdnJobSucceeded(.init(jobID: "j1", priority: priority, kind: "avatar", durationMs: duration, bytes: 1_000))
            case 9: event = .cdnJobFailed(.init(jobID: "j2", priority: priority, kind: "avatar", durationMs: duration, error: "502", attempt: 1, willRetry: true))
            case 10: event = .healthSampled(.init(component: component, status: HealthStatus.allCases.randomElement(using: &rng)!, memoryPct: Double.random(in: 0...100, using: &rng), cpuPct: Double.random(in: 0...100, using: &rng), diskPct: 50, latencyMs: 3))
            case 11: event = .circuitBreakerChanged(.init(component: component, state: BreakerState.allCases.randomElement(using: &rng)!, reason: "test"))
            default:
                out.append(TimedEvent(opaque: Bool.random(using: &rng) ? "FutureThing" : "CreatorSearched", at: time))
                continue
            }
            out.append(TimedEvent(event, at: time))
        }
        return out
    }
}

/// Runs `body` with a fresh fixture that is removed afterwards, pass or fail.
func withViewFixture<T>(_ label: String = #function, _ body: (inout ViewFixture) async throws -> T) async throws -> T {
    var fixture = try ViewFixture(label)
    do {
        let result = try await body(&fixture)
        await fixture.remove()
        return result
    } catch {
        await fixture.remove()
        throw error
    }
}
