import Commands
import EventLog
import Foundation
import Projections
import Testing
@testable import API

/// A log, views (runners running), commands and the API for the operations tests.
struct OpsFixture {
    let directory: String
    let log: FileLog
    let hub: ViewHub<FileLog>
    let api: TallyAPI<FileLog>
    let runners: [Task<Void, any Error>]

    static let secret = "ops-test-secret-0123456789abcdef0123456789"

    func token(_ role: Role, _ subject: String) async throws -> String {
        try await api.authority.mint(subject: subject, role: role)
    }
}

func withOpsFixture(_ body: (OpsFixture) async throws -> Void) async throws {
    let directory = FileManager.default.temporaryDirectory.path + "/tally-ops-\(UUID().uuidString)"
    let log = try FileLog(directory: directory + "/log", options: .init(fsync: .never))
    let hub = ViewHub(store: log, snapshots: nil, consistencyWait: .milliseconds(300))
    let api = TallyAPI(hub: hub, commands: CommandService(store: log), authority: try await TokenAuthority.hs256(secret: OpsFixture.secret),
                       breaker: StoreBreaker(failureThreshold: 3, openDuration: .seconds(30)))
    let runners = [
        Task { try await hub.stats.run() }, Task { try await hub.unlocked.run() }, Task { try await hub.metrics.run() },
    ]
    let fixture = OpsFixture(directory: directory, log: log, hub: hub, api: api, runners: runners)
    func cleanUp() async {
        for runner in runners { runner.cancel() }
        for runner in runners { _ = try? await runner.value }
        try? await log.close()
        try? FileManager.default.removeItem(atPath: directory)
    }
    do {
        try await body(fixture)
    } catch {
        await cleanUp()
        throw error
    }
    await cleanUp()
}
