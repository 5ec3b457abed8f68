import API
import ArgumentParser
import Foundation
import Hummingbird
import Logging
import Prometheus

/// `tally-server`: the HTTP API over the event log. `serve` (the default) runs it; `token`
/// mints a bearer token with the configured secret. Both only parse: every setting is
/// checked by `TallyConfiguration`, the wiring is `buildApplication` in the API module.
@main
struct TallyServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tally-server",
        abstract: "Tally's event-sourced analytics core: the HTTP API over the event log.",
        subcommands: [Serve.self, Token.self],
        defaultSubcommand: Serve.self
    )
}

/// Every setting as a flag; its environment variable is named in the help. Values stay
/// text here so that a flag and its variable pass the same check.
struct SettingOptions: ParsableArguments {
    @Option(help: help(.dataDirectory)) var dataDir: String?
    @Option(help: help(.store)) var store: String?
    @Option(help: help(.host)) var host: String?
    @Option(help: help(.port)) var port: String?
    @Option(help: help(.fsync)) var fsync: String?
    @Option(help: help(.streamCache)) var streamCache: String?
    @Option(help: help(.unlockCost)) var unlockCost: String?
    @Option(help: help(.consistencyWaitMs)) var consistencyWaitMs: String?
    @Option(help: help(.commandTimeoutMs)) var commandTimeoutMs: String?
    @Option(help: help(.healthIntervalS)) var healthIntervalS: String?
    @Option(help: help(.healthStaleAfterS)) var healthStaleAfterS: String?
    @Option(help: help(.idleTimeoutMs)) var idleTimeoutMs: String?
    @Option(help: help(.headerTimeoutMs)) var headerTimeoutMs: String?
    @Option(help: help(.bodyTimeoutMs)) var bodyTimeoutMs: String?
    @Option(help: help(.maxConnections)) var maxConnections: String?
    @Option(help: help(.corsOrigins)) var corsOrigins: String?
    @Option(help: help(.metricsToken)) var metricsToken: String?
    @Option(help: help(.logLevel)) var logLevel: String?
    @Option(help: help(.logFormat)) var logFormat: String?
    @Flag(help: help(.repair)) var repair = false
    @Option(help: help(.signingKey)) var signingKey: String?
    @Option(help: help(.treeHeadIntervalS)) var treeHeadIntervalS: String?
    @OptionGroup var signing: SigningOptions

    var flags: [String: String] {
        var flags = signing.flags
        let values: [(TallySetting, String?)] = [
            (.dataDirectory, dataDir), (.store, store), (.host, host), (.port, port), (.fsync, fsync), (.streamCache, streamCache), (.unlockCost, unlockCost),
            (.consistencyWaitMs, consistencyWaitMs), (.commandTimeoutMs, commandTimeoutMs), (.healthIntervalS, healthIntervalS), (.healthStaleAfterS, healthStaleAfterS),
            (.idleTimeoutMs, idleTimeoutMs), (.headerTimeoutMs, headerTimeoutMs), (.bodyTimeoutMs, bodyTimeoutMs), (.maxConnections, maxConnections),
            (.corsOrigins, corsOrigins), (.metricsToken, metricsToken), (.logLevel, logLevel), (.logFormat, logFormat), (.repair, repair ? "true" : nil),
            (.signingKey, signingKey), (.treeHeadIntervalS, treeHeadIntervalS),
        ]
        for case let (setting, value?) in values { flags[setting.name] = value }
        return flags
    }
}

struct SigningOptions: ParsableArguments {
    @Option(help: help(.jwtSecret)) var jwtSecret: String?
    @Option(help: help(.jwtPublicKey)) var jwtPublicKey: String?

    var flags: [String: String] {
        var flags: [String: String] = [:]
        if let jwtSecret { flags[TallySetting.jwtSecret.name] = jwtSecret }
        if let jwtPublicKey { flags[TallySetting.jwtPublicKey.name] = jwtPublicKey }
        return flags
    }
}

private func help(_ setting: TallySetting) -> ArgumentHelp {
    ArgumentHelp("\(setting.help) (env \(setting.environment))")
}

/// The configuration, or the usage error ArgumentParser prints (exit 64) naming the setting.
private func checkedConfiguration(_ flags: [String: String], settings: [TallySetting]) throws -> TallyConfiguration {
    do {
        return try TallyConfiguration(flags: flags, environment: ProcessInfo.processInfo.environment, settings: settings)
    } catch {
        throw ValidationError(error.message)
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the HTTP API until SIGTERM or SIGINT.")

    @OptionGroup var settings: SettingOptions

    func run() async throws {
        let configuration = try checkedConfiguration(settings.flags, settings: TallySetting.all)
        let format = configuration.logFormat
        LoggingSystem.bootstrap { format.makeHandler(label: $0) }
        var logger = Logger(label: "tally")
        logger.logLevel = configuration.logLevel
        // `/metrics` renders this registry; Tally records into it directly (nothing here
        // records through swift-metrics, so no MetricsSystem is bootstrapped).
        let registry = PrometheusCollectorRegistry()
        let application: any ApplicationProtocol
        do {
            application = try await buildApplication(configuration: configuration, logger: logger, metricsRegistry: registry)
        } catch let error as ConfigurationError {
            throw ValidationError(error.message)
        }
        // Whatever the log sink still holds goes out however the server stops.
        defer { BufferedLogSink.standardError.flush() }
        try await application.runService()
    }
}

struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a bearer token signed with the configured HS256 secret.")

    @Option(help: "user, service, admin or auditor.") var role: String
    @Option(help: "The subject: a user id, a service name.") var subject: String
    @Option(help: "Lifetime in seconds, 1...31536000.") var ttl: Int = 86_400
    @Option(help: "Print this many tokens, one per line, for subjects SUBJECT-0, SUBJECT-1, … (load tests), 1...100000.") var count: Int?
    @OptionGroup var signing: SigningOptions

    func run() async throws {
        guard let role = Role(rawValue: role) else {
            throw ValidationError("--role must be one of \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard (1...31_536_000).contains(ttl) else { throw ValidationError("--ttl must be 1...31536000 seconds, got \(ttl)") }
        let configuration = try checkedConfiguration(signing.flags, settings: TallySetting.signing)
        let authority: TokenAuthority
        do {
            authority = try await configuration.makeAuthority()
        } catch let error as ConfigurationError {
            throw ValidationError(error.message)
        }
        guard let count else {
            print(try await authority.mint(subject: subject, role: role, lifetime: TimeInterval(ttl)))
            return
        }
        guard (1...100_000).contains(count) else { throw ValidationError("--count must be 1...100000, got \(count)") }
        for i in 0..<count {
            print(try await authority.mint(subject: "\(subject)-\(i)", role: role, lifetime: TimeInterval(ttl)))
        }
    }
}
