import Commands
import EventLog
import Events
import Foundation
import Hummingbird
import HummingbirdTesting
import Projections
import Synchronization
import Testing
@testable import API

/// A store that can be made slow or failing on its command path (appends, stream reads,
/// head); subscriptions pass through, as they would from a store that is up but slow to write.
final class FaultyStore: EventStore {
    typealias Events = FileLogEvents
    enum Mode: Sendable { case normal, failing, slow(Duration) }

    let base: FileLog
    let mode = Mutex(Mode.normal)

    init(base: FileLog) { self.base = base }

    private func fault() async throws {
        switch mode.withLock({ $0 }) {
        case .normal: return
        case .failing: throw EventLogError(.io, "injected: the disk is gone")
        case .slow(let delay): try? await Task.sleep(for: delay)
        }
    }

    func append(_ appends: [StreamAppend], idempotencyKey: String?) async throws -> AppendResult {
        try await fault()
        return try await base.append(appends, idempotencyKey: idempotencyKey)
    }

    func head() async throws -> LogHead {
        try await fault()
        return try await base.head()
    }

    func read(from position: LogPosition, filter: EventFilter?) -> FileLogEvents { base.read(from: position, filter: filter) }
    func subscribe(from position: LogPosition) -> FileLogEvents { base.subscribe(from: position) }

    func readStream(_ stream: String, fromVersion version: UInt64, limit: Int) async throws -> [RecordedEvent] {
        try await fault()
        return try await base.readStream(stream, fromVersion: version, limit: limit)
    }

    func streamVersion(_ stream: String) async throws -> UInt64? {
        try await fault()
        return try await base.streamVersion(stream)
    }
}

@Suite struct DegradationTests {
    @Test func slowAndFailingStoreOpensTheBreakerReadsKeepAnsweringAndRetriesAreSafe() async throws {
        let directory = FileManager.default.temporaryDirectory.path + "/tally-degrade-\(UUID().uuidString)"
        let log = try FileLog(directory: directory, options: .init(fsync: .never))
        let store = FaultyStore(base: log)
        let hub = ViewHub(store: store, snapshots: nil, consistencyWait: .milliseconds(300))
        let authority = try await TokenAuthority.hs256(secret: OpsFixture.secret)
        // Opens for far longer than the test: it recovers only through the operator's reset,
        // so no step depends on how fast the machine is.
        let breaker = StoreBreaker(failureThreshold: 3, openDuration: .seconds(600), commandDeadline: .milliseconds(200))
        let api = TallyAPI(hub: hub, commands: CommandService(store: store), authority: authority, breaker: breaker)
        let runners = [Task { try await hub.stats.run() }, Task { try await hub.unlocked.run() }, Task { try await hub.metrics.run() }]
        defer {
            for runner in runners { runner.cancel() }
            try? FileManager.default.removeItem(atPath: directory)
        }
        let user: HTTPFields = [.authorization: "Bearer " + (try await authority.mint(subject: "alice", role: .user))]
        let admin: HTTPFields = [.authorization: "Bearer " + (try await authority.mint(subject: "ops", role: .admin))]
        let app = Application(router: api.makeRouter())
        try await app.test(.router) { client in
            try await client.execute(uri: "/api/v1/credits/grant", method: .post, headers: admin,
                                     body: ByteBuffer(string: #"{"user":"alice","amount":10,"reason":"t"}"#)) { #expect($0.status == .ok) }
            try await client.execute(uri: "/api/v1/system/stats", method: .get, headers: user.merging([.init("Tally-After")!: "1"])) {
                #expect($0.status == .ok)
            }

            // Slow store: each unlock misses the deadline (503, Retry-After); after three the breaker is open.
            store.mode.withLock { $0 = .slow(.seconds(1)) }
            for i in 0..<3 {
                var headers = user
                headers[.init("Idempotency-Key")!] = "unlock-\(i)"
                try await client.execute(uri: "/api/v1/creator/unlock/creator\(i)", method: .post, headers: headers) { response in
                    #expect(response.status == .serviceUnavailable)
                    #expect(response.headers[.retryAfter] != nil)
                }
            }
            #expect(breaker.current == .open)
            // Failing store: commands are refused at once; reads answer from the last views.
            store.mode.withLock { $0 = .failing }
            try await client.execute(uri: "/api/v1/creator/unlock/other", method: .post, headers: user) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(String(buffer: response.body).contains(#""breaker":"open""#), "refused by the open breaker, not by the store")
            }
            try await client.execute(uri: "/api/v1/system/stats", method: .get, headers: user) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/api/v1/creator/unlocked", method: .get, headers: user) { #expect($0.status == .ok) }

            // Back: the operator half-opens the breaker; client retries with their keys are safe,
            // whether or not the slow appends above have landed by then.
            store.mode.withLock { $0 = .normal }
            try await client.execute(uri: "/api/v1/system/recovery/database", method: .post, headers: admin) { #expect($0.status == .ok) }
            for i in 0..<3 {
                var headers = user
                headers[.init("Idempotency-Key")!] = "unlock-\(i)"
                try await client.execute(uri: "/api/v1/creator/unlock/creator\(i)", method: .post, headers: headers) { #expect($0.status == .ok) }
            }
            #expect(breaker.current == .closed)
        }
        // Each unlock exactly once, however many times it was sent (the slow first attempts land
        // within about a second and are deduplicated by their keys); the breaker's history is in the log.
        var unlocks: [RecordedEvent] = []
        for _ in 0..<100 {
            try await Task.sleep(for: .milliseconds(50))
            unlocks = try await log.readStream("user-alice").filter { $0.type == EventType.profileUnlocked.rawValue }
            if unlocks.count >= 3 { try await Task.sleep(for: .seconds(1)); break }
        }
        unlocks = try await log.readStream("user-alice").filter { $0.type == EventType.profileUnlocked.rawValue }
        #expect(unlocks.count == 3)
        let transitions = try await log.readStream("health-store").compactMap { event -> BreakerState? in
            if case .circuitBreakerChanged(let change)? = event.domainEvent { return change.state }
            return nil
        }
        #expect(transitions == [.open, .halfOpen, .closed])
        try await log.close()
    }
}

extension HTTPFields {
    func merging(_ other: HTTPFields) -> HTTPFields {
        var merged = self
        for field in other { merged[field.name] = field.value }
        return merged
    }
}
