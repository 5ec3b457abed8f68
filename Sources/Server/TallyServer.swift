import API
import ArgumentParser
import Commands
import EventLog
import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus
import Projections
import ServiceLifecycle
import UnixSignals

/// `tally-server`: the HTTP API over the embedded event log. `serve` (the default) runs it;
/// `token` mints a bearer token with the configured secret.
@main
struct TallyServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tally-server",
        abstract: "Tally's event-sourced analytics core: the HTTP API over the event log.",
        subcommands: [Serve.self, Token.self],
        defaultSubcommand: Serve.self
    )
}

/// Settings every subcommand shares: a flag overrides its environment variable.
struct SecretOptions: ParsableArguments {
    @Option(help: "HS256 secret, at least 32 bytes (env TALLY_JWT_SECRET).") var jwtSecret: String?
    @Option(help: "PEM file with an RS256 public key or certificate, verify only (env TALLY_JWT_PUBLIC_KEY).") var jwtPublicKey: String?

    func authority(_ environment: Environment) async throws -> TokenAuthority {
        if let secret = jwtSecret ?? environment["TALLY_JWT_SECRET"] {
            return try await TokenAuthority.hs256(secret: secret)
        }
        if let path = jwtPublicKey ?? environment["TALLY_JWT_PUBLIC_KEY"] {
            guard let pem = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw ValidationError("cannot read the JWT public key file \(path)")
            }
            return try await TokenAuthority.rs256(publicKeyPEM: pem)
        }
        throw ValidationError("set TALLY_JWT_SECRET (HS256, ≥ 32 bytes) or TALLY_JWT_PUBLIC_KEY (RS256 PEM file)")
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the HTTP API until SIGTERM or SIGINT.")

    @Option(help: "Data directory: the embedded log and the views' snapshots (env TALLY_DATA_DIR).") var dataDir: String?
    @Option(help: "postgres://user@host:port/db to use the shared PostgreSQL log instead of the embedded one (env TALLY_STORE).")
    var store: String?
    @Option(help: "Address to listen on (env TALLY_HOST).") var host: String?
    @Option(help: "Port to listen on (env TALLY_PORT).") var port: Int?
    @Option(help: "always | interval | interval:MS | never (env TALLY_FSYNC).") var fsync: String?
    @Option(help: "Credits one unlock costs (env TALLY_UNLOCK_COST).") var unlockCost: Int64?
    @Option(help: "How long Tally-After waits for a view, ms (env TALLY_CONSISTENCY_WAIT_MS).") var consistencyWaitMs: Int?
    @Option(help: "Comma-separated origins allowed by CORS, or * (env TALLY_CORS_ORIGINS).") var corsOrigins: String?
    @Option(help: "Seconds between the server's own health samples (env TALLY_HEALTH_INTERVAL_S).") var healthIntervalS: Int?
    @Option(help: "A command the store has not answered within this many ms is a 503 and a breaker failure (env TALLY_COMMAND_TIMEOUT_MS).")
    var commandTimeoutMs: Int?
    @Option(help: "Bearer token /metrics requires (env TALLY_METRICS_TOKEN); none: open.") var metricsToken: String?
    @Flag(help: "Cut the log at the first damaged batch instead of refusing to start.") var repair = false
    @OptionGroup var secrets: SecretOptions

    func run() async throws {
        let environment = Environment()
        let directory = dataDir ?? environment["TALLY_DATA_DIR"] ?? "./data"
        let fsyncText = fsync ?? environment["TALLY_FSYNC"] ?? "always"
        guard let policy = FsyncPolicy(parsing: fsyncText) else {
            throw ValidationError("fsync policy '\(fsyncText)' is not one of always, interval, interval:MS, never")
        }
        let host = host ?? environment["TALLY_HOST"] ?? "127.0.0.1"
        let port = try port ?? environment.int("TALLY_PORT", in: 0...65_535) ?? 8080
        let cost = try unlockCost ?? environment.int("TALLY_UNLOCK_COST", in: 0...1_000_000_000).map(Int64.init) ?? 1
        let waitMs = try consistencyWaitMs ?? environment.int("TALLY_CONSISTENCY_WAIT_MS", in: 0...60_000) ?? 1_000
        let authority = try await secrets.authority(environment)
        let healthInterval = try healthIntervalS ?? environment.int("TALLY_HEALTH_INTERVAL_S", in: 1...86_400) ?? 30
        let commandTimeout = try commandTimeoutMs ?? environment.int("TALLY_COMMAND_TIMEOUT_MS", in: 10...600_000) ?? 5_000

        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var logger = Logger(label: "tally")
        // debug logs every request with its id; info logs start, state changes, snapshots, failures.
        logger.logLevel = environment["TALLY_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        let settings = Settings(
            directory: directory, host: host, port: port, cost: cost, waitMs: waitMs, healthInterval: healthInterval,
            commandTimeout: commandTimeout, authority: authority, logger: logger,
            corsOrigins: (corsOrigins ?? environment["TALLY_CORS_ORIGINS"] ?? "").split(separator: ",")
                .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty },
            metricsToken: metricsToken ?? environment["TALLY_METRICS_TOKEN"]
        )
        if let url = store ?? environment["TALLY_STORE"], url != "file" {
            guard PostgresURL.matches(url) else {
                throw ValidationError("TALLY_STORE / --store must be a postgres:// URL (or `file` for the embedded log), got \(url)")
            }
            let log = try PostgresLog(url: url, options: .init(fsync: policy))
            let head = try await log.head()
            logger.info("opened the PostgreSQL event log", metadata: [
                "store": "\(log.location)", "fsync": "\(policy)", "head_position": "\(head.position)", "chain_hash": "\(head.chainHashHex)",
            ])
            try await serve(log, settings: settings, closing: EventLogService(logger: logger) { await log.close() })
        } else {
            let log = try FileLog(directory: directory, options: .init(fsync: policy, repair: repair))
            let head = log.currentHead()
            logger.info("opened event log", metadata: [
                "directory": "\(directory)", "fsync": "\(policy)", "head_position": "\(head.position)",
                "chain_hash": "\(head.chainHashHex)", "recovery": "\(log.recovery)",
            ])
            try await serve(log, settings: settings, closing: EventLogService(logger: logger) { try await log.close() })
        }
    }

    struct Settings {
        var directory: String
        var host: String
        var port: Int
        var cost: Int64
        var waitMs: Int
        var healthInterval: Int
        var commandTimeout: Int
        var authority: TokenAuthority
        var logger: Logger
        var corsOrigins: [String]
        var metricsToken: String?
    }

    /// Runs the API over `log` until SIGTERM/SIGINT; the same for both backends.
    private func serve<Store: EventStore>(_ log: Store, settings: Settings, closing: EventLogService) async throws {
        let logger = settings.logger
        let (directory, host, port, cost, waitMs) = (settings.directory, settings.host, settings.port, settings.cost, settings.waitMs)
        let (healthInterval, commandTimeout, authority) = (settings.healthInterval, settings.commandTimeout, settings.authority)
        let hub = ViewHub(store: log, snapshots: SnapshotStore(directory: directory + "/snapshots"),
                          consistencyWait: .milliseconds(waitMs)) { [logger] name, event in
            logger.info("\(event)", metadata: ["projection": "\(name)"])
        }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let origins = settings.corsOrigins
        let api = TallyAPI(hub: hub, commands: CommandService(store: log, unlockCost: cost), authority: authority, corsOrigins: origins,
                           metrics: TallyMetrics(registry: registry, token: settings.metricsToken),
                           breaker: StoreBreaker(commandDeadline: .milliseconds(commandTimeout)))
        let app = Application(
            router: api.makeRouter(),
            configuration: .init(address: .hostname(host, port: port), serverName: "tally"),
            onServerRunning: { [logger] channel in
                logger.notice("tally-server listening", metadata: ["url": "http://\(host):\(channel.localAddress?.port ?? port)"])
            },
            logger: logger
        )
        // Shut down in reverse: stop serving, then the views write their snapshots, then the log closes.
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: closing)]
                    + hub.services.map { .init(service: $0) }
                    + [.init(service: HealthSampler(api: api, dataDirectory: directory, interval: .seconds(healthInterval))),
                       .init(service: app)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        try await group.run()
    }
}

struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a bearer token signed with the configured HS256 secret.")

    @Option(help: "user, service, admin or auditor.") var role: String
    @Option(help: "The subject: a user id, a service name.") var subject: String
    @Option(help: "Lifetime in seconds.") var ttl: Int = 86_400
    @Option(help: "Print this many tokens, one per line, for subjects SUBJECT-0, SUBJECT-1, … (load tests).") var count: Int?
    @OptionGroup var secrets: SecretOptions

    func run() async throws {
        guard let role = Role(rawValue: role) else {
            throw ValidationError("--role must be one of \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let authority = try await secrets.authority(Environment())
        guard let count else {
            print(try await authority.mint(subject: subject, role: role, lifetime: TimeInterval(ttl)))
            return
        }
        guard (1...100_000).contains(count) else { throw ValidationError("--count must be 1...100000") }
        for i in 0..<count {
            print(try await authority.mint(subject: "\(subject)-\(i)", role: role, lifetime: TimeInterval(ttl)))
        }
    }
}

/// Owns the log for the process's lifetime; on graceful shutdown it closes the log.
struct EventLogService: Service {
    let logger: Logger
    let close: @Sendable () async throws -> Void

    func run() async throws {
        try? await gracefulShutdown()
        logger.info("shutting down: closing the event log")
        try await close()
        logger.info("event log closed")
    }
}

/// Environment variables, read once; empty values count as unset.
struct Environment {
    private let values: [String: String]

    init(_ values: [String: String] = ProcessInfo.processInfo.environment) {
        self.values = values
    }

    subscript(_ key: String) -> String? { values[key].flatMap { $0.isEmpty ? nil : $0 } }

    func int(_ key: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let raw = self[key] else { return nil }
        guard let value = Int(raw), range.contains(value) else {
            throw ValidationError("\(key)=\(raw) must be a whole number in \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }
}
