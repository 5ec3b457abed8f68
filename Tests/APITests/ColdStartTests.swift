import API
import Commands
import Dispatch
import EventLog
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Projections
import Synchronization
import TallyTestSupport
import Testing

/// A server restarted from its snapshots listens and answers while its views are still
/// loading them: the loads run off the cooperative pool, and a view not loaded yet answers
/// as a view not yet built.
@Suite(.timeLimit(.minutes(5))) struct ColdStartTests {
    /// Holds every snapshot load (on its loading thread) until opened. A hold gives up after
    /// `patience` and says so: had a load run on the cooperative pool, the holds would have
    /// blocked the pool's threads, the test itself included, and only the timeout frees them
    /// (a liveness bound, far above any machine's delay, so the suite ends either way).
    final class LoadGate: Sendable {
        private let opened = DispatchSemaphore(value: 0)
        private let state = Mutex<(held: Set<String>, timedOut: Bool)>(([], false))
        let patience: DispatchTimeInterval = .seconds(150)

        func hold(_ name: String) {
            state.withLock { _ = $0.held.insert(name) }
            if opened.wait(timeout: .now() + patience) == .timedOut {
                state.withLock { $0.timedOut = true }
            } else {
                opened.signal()
            }
        }

        func open() { opened.signal() }
        var held: Set<String> { state.withLock { $0.held } }
        var timedOut: Bool { state.withLock { $0.timedOut } }
    }

    /// A log of a grant and an unlock, folded by the views, which wrote their snapshots at stop.
    static func makeSnapshots(store: FileLog, configuration: TallyConfiguration, authority: TokenAuthority, logger: Logger) async throws {
        let components = TallyComponents(store: store, configuration: configuration, authority: authority, logger: logger)
        let hub = components.hub
        let runners = [Task { try? await hub.stats.run() }, Task { try? await hub.unlocked.run() }, Task { try? await hub.metrics.run() }]
        let context = CommandContext(actor: "admin:seed", correlationID: "seed")
        _ = try await components.commands.grantCredits(user: TallyFixture<FileLog>.alice, amount: 5, reason: "seed", context: context)
        _ = try await components.commands.unlock(user: TallyFixture<FileLog>.alice, username: "natgeo", context: context)
        let head = store.currentHead().position
        try await waitUntil("the views folded the seed") {
            hub.stats.current.position == head && hub.unlocked.current.position == head && hub.metrics.current.position == head
        }
        for runner in runners { runner.cancel() }
        for runner in runners { await runner.value }
    }

    @Test func theServerListensAndAnswersWhileItsViewsLoadTheirSnapshots() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var configuration = testConfiguration(directory: directory)
        configuration.snapshots = true
        let store = try FileLog(directory: directory + "/log", options: .init(fsync: .never))
        let authority = try await configuration.makeAuthority()
        var logger = Logger(label: "tally-tests")
        logger.logLevel = .warning
        try await Self.makeSnapshots(store: store, configuration: configuration, authority: authority, logger: logger)
        let snapshots = SnapshotStore(directory: try #require(configuration.snapshotDirectory))
        let names = [SystemStatsProjection.name, UnlockedProfilesProjection.name, MetricsProjection.name]
        #expect(names.allSatisfy { snapshots.existingFile(for: $0) != nil })
        let head = store.currentHead().position

        let gate = LoadGate()
        let components = TallyComponents(store: store, configuration: configuration, authority: authority, logger: logger) { name, event in
            if case .snapshotLoading = event { gate.hold(name) }
        }
        let admin = try await authority.mint(subject: "ops", role: .admin)
        let alice = try await authority.mint(subject: TallyFixture<FileLog>.alice, role: .user)
        defer { gate.open() }
        try await components.makeApplication(services: components.services(closesStore: false)).test(.live) { client in
            try await waitUntil("all three views began loading their snapshots") { gate.held == Set(names) }
            let health = try await send(client, .get, "/api/health", token: nil)
            #expect(health.status == .ok)
            // Not loaded yet: exactly what a view not yet built answers.
            for path in ["/api/v1/system/stats", "/api/v1/creator/unlocked"] {
                let response = try await send(client, .get, path, token: path.hasSuffix("stats") ? admin : alice)
                let problem = try expectProblem(response, .serviceUnavailable, code: "view_not_ready")
                #expect(int(problem, "head") == Int(head) && problem["state"] as? String == "catchingUp", "\(problem)")
            }
            #expect(components.hub.stats.current.position == 0 && components.hub.stats.state == .catchingUp)
            #expect(!gate.timedOut, "a snapshot load held the cooperative pool")

            gate.open()
            try await waitUntil("the views loaded their snapshots and are live") {
                [components.hub.stats.state, components.hub.unlocked.state, components.hub.metrics.state].allSatisfy { $0 == .live }
            }
            let stats = try await send(client, .get, "/api/v1/system/stats", token: admin)
            #expect(stats.status == .ok)
            let body = try expectFreshness(stats)
            let freshness = try #require(body["freshness"] as? [String: Any])
            #expect(int(freshness, "position") == Int(head) && freshness["state"] as? String == "live", "\(freshness)")
            #expect(int(body["unlocks"] as? [String: Any], "total") == 1 && int(body["credits"] as? [String: Any], "granted") == 5, "\(body)")
            let unlocked = try json(try await send(client, .get, "/api/v1/creator/unlocked", token: alice))
            #expect(int(unlocked, "total") == 1, "\(unlocked)")
        }
        #expect(!gate.timedOut)
        try await store.close()
    }
}
