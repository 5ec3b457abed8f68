public import API
public import Commands
public import EventLog
import Foundation
public import Hummingbird
public import HummingbirdTesting
import Logging
public import Projections

/// One server's parts, built by the composition root over a store in a fresh directory,
/// with a token for each role: the fixture every API test starts from.
public struct TallyFixture<Store: EventStore>: Sendable {
    public static var secret: String { "tally-tests-secret-0123456789abcdef-not-for-production" }
    /// Subjects of the user tokens.
    public static var alice: String { "alice" }
    public static var bob: String { "bob" }

    /// Holds the store's files (`directory/log` for the default file log).
    public let directory: String
    public let components: TallyComponents<Store>
    public let authority: TokenAuthority
    public let aliceToken: String
    public let bobToken: String
    public let serviceToken: String
    public let adminToken: String
    public let auditorToken: String

    public var store: Store { components.store }
    public var hub: ViewHub<Store> { components.hub }
    public var api: TallyAPI<Store> { components.api }
    public var commands: CommandService<Store> { components.commands }
    public var configuration: TallyConfiguration { components.configuration }

    /// A token for any subject and role.
    public func token(_ role: Role, _ subject: String) async throws -> String {
        try await authority.mint(subject: subject, role: role)
    }

    /// The application over the fixture's router, listening on a free loopback port when
    /// run live; the fixture runs the views itself, so the application's one service is the
    /// live stream's publisher.
    public func makeApplication() -> some ApplicationProtocol {
        components.makeApplication(services: [api.livePublisher])
    }

    /// Starts the three projection runners; cancel the returned tasks to stop them.
    public func startRunners() -> [Task<Void, Never>] {
        let hub = self.hub
        return [Task { try? await hub.stats.run() }, Task { try? await hub.unlocked.run() }, Task { try? await hub.metrics.run() }]
    }
}

extension TallyFixture where Store == FileLog {
    public var log: FileLog { store }
    public var head: LogPosition { store.currentHead().position }
}

/// The test defaults: a loopback server on a free port, no snapshots, no health samples in
/// the log (tests count events), a short consistency wait, and a command deadline long
/// enough that a loaded machine never turns a slow command into a 503 (the tests about
/// deadlines set their own).
public func testConfiguration(directory: String) -> TallyConfiguration {
    var configuration = TallyConfiguration()
    configuration.dataDirectory = directory
    configuration.host = "127.0.0.1"
    configuration.port = 0
    configuration.fsync = .never
    configuration.snapshots = false
    configuration.samplesHealth = false
    configuration.consistencyWait = .milliseconds(200)
    configuration.commandTimeout = .seconds(120)
    configuration.jwtSecret = TallyFixture<FileLog>.secret
    return configuration
}

/// Runs `body` with a fixture over the store `makeStore` opens in a fresh directory, the
/// projection runners started unless `startRunners` is false; afterwards stops them, closes
/// the store and removes the directory, whether `body` throws or not.
public func withTallyFixture<Store: EventStore, T>(
    label: String = #function,
    startRunners: Bool = true,
    configure: (inout TallyConfiguration) -> Void = { _ in },
    store makeStore: (_ directory: String) async throws -> Store,
    _ body: (TallyFixture<Store>) async throws -> T
) async throws -> T {
    let directory = try makeTemporaryDirectory(label)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    var configuration = testConfiguration(directory: directory)
    configure(&configuration)
    let store = try await makeStore(directory)
    let authority = try await configuration.makeAuthority()
    var logger = Logger(label: "tally-tests")
    logger.logLevel = .warning
    let fixture = TallyFixture(
        directory: directory,
        components: TallyComponents(store: store, configuration: configuration, authority: authority, logger: logger),
        authority: authority,
        aliceToken: try await authority.mint(subject: TallyFixture<Store>.alice, role: .user),
        bobToken: try await authority.mint(subject: TallyFixture<Store>.bob, role: .user),
        serviceToken: try await authority.mint(subject: "scraper-1", role: .service),
        adminToken: try await authority.mint(subject: "ops", role: .admin),
        auditorToken: try await authority.mint(subject: "audit", role: .auditor)
    )
    let runners = startRunners ? fixture.startRunners() : []
    if startRunners {
        // A test starts once the views have made their first pass over the (usually empty)
        // log, so a busy test process cannot hand its first request a view never built. A
        // store that is down or held back leaves them catching up: after 10 s the test
        // starts anyway, and sees what such a store gives.
        let hub = fixture.hub
        _ = await eventually(timeout: .seconds(10)) {
            hub.stats.state != .catchingUp && hub.unlocked.state != .catchingUp && hub.metrics.state != .catchingUp
        }
    }
    func stop() async {
        for runner in runners { runner.cancel() }
        for runner in runners { await runner.value }
        try? await store.close()
    }
    do {
        let result = try await body(fixture)
        await stop()
        return result
    } catch {
        await stop()
        throw error
    }
}

/// A fixture over a file log in `directory/log`.
public func withTallyFixture<T>(
    label: String = #function,
    startRunners: Bool = true,
    configure: (inout TallyConfiguration) -> Void = { _ in },
    _ body: (TallyFixture<FileLog>) async throws -> T
) async throws -> T {
    try await withTallyFixture(label: label, startRunners: startRunners, configure: configure,
                               store: { try FileLog(directory: $0 + "/log", options: .init(fsync: .never)) }, body)
}

/// A file-log fixture driven through the real router (`.router`) or a live socket (`.live`).
public func withAPI(
    _ setup: TestingSetup = .router,
    consistencyWait: Duration = .milliseconds(200),
    startRunners: Bool = true,
    label: String = #function,
    configure: (inout TallyConfiguration) -> Void = { _ in },
    _ body: @Sendable (TallyFixture<FileLog>, any TestClientProtocol) async throws -> Void
) async throws {
    try await withTallyFixture(label: label, startRunners: startRunners, configure: { configuration in
        configuration.consistencyWait = consistencyWait
        configure(&configuration)
    }) { fixture in
        try await fixture.makeApplication().test(setup) { client in try await body(fixture, client) }
    }
}

/// The fixture over the default file log, as most API tests use it.
public typealias APIFixture = TallyFixture<FileLog>
