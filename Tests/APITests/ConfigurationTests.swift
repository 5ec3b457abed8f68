import API
import EventLog
import Foundation
import Logging
import TallyTestSupport
import Testing

/// Every setting has one rule, and its flag and its environment variable pass the same one.
@Suite struct ConfigurationTests {
    /// Values each setting must refuse, whichever way it is given.
    static let refused: [(TallySetting, [String])] = [
        (.dataDirectory, [String(repeating: "d", count: 4_097), "a\u{0}b"]),
        (.store, ["mysql://x", "postgres:/nope", "files"]),
        (.host, ["has space", "a/b", String(repeating: "h", count: 254)]),
        (.port, ["-1", "65536", "70000", "80a", "", " 80", "8080.0"]),
        (.fsync, ["sometimes", "interval:0", "interval:60001", "interval:-5", "ALWAYS"]),
        (.repair, ["maybe", "2"]),
        (.streamCache, ["-1", "100000001", "lots"]),
        (.unlockCost, ["-1", "1000000001", "1e3", "one"]),
        (.consistencyWaitMs, ["-1", "60001"]),
        (.commandTimeoutMs, ["9", "600001", "0"]),
        (.healthIntervalS, ["0", "-3", "86401"]),
        (.healthStaleAfterS, ["0", "604801", "1.5", "soon"]),
        (.idleTimeoutMs, ["9", "3600001", "-1", "1s"]),
        (.headerTimeoutMs, ["9", "600001", "ten"]),
        (.bodyTimeoutMs, ["9", "3600001", "2.5"]),
        (.maxConnections, ["0", "1000001", "-5", "many"]),
        (.corsOrigins, ["localhost:3000", "*,https://a.example", "https://a.example/*", "ftp://x"]),
        (.metricsToken, ["has space", String(repeating: "t", count: 4_097)]),
        (.jwtSecret, ["short", String(repeating: "s", count: 31), String(repeating: "s", count: 31) + " "]),
        (.jwtPublicKey, [String(repeating: "k", count: 4_097)]),
        (.signingKey, [String(repeating: "k", count: 4_097)]),
        (.treeHeadIntervalS, ["0", "-1", "86401", "1m"]),
        (.logLevel, ["loud", "INFO"]),
        (.logFormat, ["JSON", "yaml", "text "]),
    ]

    @Test func everySettingHasRefusedValues() {
        #expect(Set(Self.refused.map(\.0.name)) == Set(TallySetting.all.map(\.name)))
        #expect(Set(TallySetting.all.map(\.environment)).count == TallySetting.all.count)
    }

    @Test(arguments: Self.refused.flatMap { setting, values in values.map { (setting, $0) } })
    func aBadValueIsRefusedAsAFlagAndAsAnEnvironmentVariable(_ setting: TallySetting, _ value: String) {
        for source in ["flag", "environment"] {
            let flags = source == "flag" ? [setting.name: value] : [:]
            let environment = source == "environment" ? [setting.environment: value] : [:]
            // An empty environment variable counts as unset, so it is not refused.
            if source == "environment" && value.isEmpty { continue }
            do {
                _ = try TallyConfiguration(flags: flags, environment: environment)
                Issue.record("\(setting.flag) = '\(value)' from the \(source) was accepted")
            } catch {
                #expect(error.code == .invalidValue)
                #expect(error.setting == setting.name)
                #expect(error.message.contains(setting.flag) && error.message.contains(setting.environment), "\(error.message)")
            }
        }
    }

    @Test func rangeErrorsNameTheAllowedRange() throws {
        let error = try #require(throws: ConfigurationError.self) {
            try TallyConfiguration(flags: ["port": "70000"], environment: [:])
        }
        #expect(error.message.contains("0...65535"), "\(error.message)")
        let env = try #require(throws: ConfigurationError.self) {
            try TallyConfiguration(flags: [:], environment: ["TALLY_HEALTH_INTERVAL_S": "0"])
        }
        #expect(env.message.contains("1...86400"), "\(env.message)")
    }

    @Test func secretsAreNeverEchoed() throws {
        let secret = "tooShortButSecret"
        let error = try #require(throws: ConfigurationError.self) {
            try TallyConfiguration(flags: [:], environment: ["TALLY_JWT_SECRET": secret])
        }
        #expect(!error.message.contains(secret))
    }

    @Test func defaultsFlagsOverEnvironmentAndAcceptedValues() throws {
        let defaults = try TallyConfiguration(flags: [:], environment: [:])
        #expect(defaults.port == 8080 && defaults.host == "127.0.0.1" && defaults.dataDirectory == "./data")
        #expect(defaults.fsync == .always && defaults.unlockCost == 1 && defaults.store == .embedded)
        #expect(defaults.healthInterval == .seconds(30) && defaults.commandTimeout == .seconds(5))
        #expect(defaults.consistencyWait == .seconds(1) && defaults.corsOrigins.isEmpty && defaults.metricsToken == nil)
        #expect(defaults.streamCacheCapacity == 100_000)
        #expect(try TallyConfiguration(flags: ["stream-cache": "0"], environment: [:]).streamCacheCapacity == 0)

        let environment = ["TALLY_PORT": "9000", "TALLY_UNLOCK_COST": "3", "TALLY_FSYNC": "interval:25", "TALLY_HOST": "",
                           "TALLY_CORS_ORIGINS": "http://localhost:3000, https://app.example", "TALLY_STORE": "file",
                           "TALLY_LOG_LEVEL": "debug", "TALLY_REPAIR": "true", "TALLY_LOG_FORMAT": "logfmt"]
        let configuration = try TallyConfiguration(flags: ["port": "0", "unlock-cost": "0"], environment: environment)
        #expect(configuration.port == 0, "the flag wins")
        #expect(configuration.unlockCost == 0)
        #expect(configuration.host == "127.0.0.1", "an empty variable counts as unset")
        #expect(configuration.fsync == .interval(milliseconds: 25))
        #expect(configuration.corsOrigins == ["http://localhost:3000", "https://app.example"])
        #expect(configuration.logLevel == .debug && configuration.repair)
        #expect(configuration.logFormat == .logfmt)
        #expect(try TallyConfiguration(flags: [:], environment: [:]).logFormat == .text)
        #expect(try TallyConfiguration(flags: ["log-format": "json"], environment: [:]).logFormat == .json)
        #expect(try TallyConfiguration(flags: ["cors-origins": "*"], environment: [:]).corsOrigins == ["*"])
        #expect(try TallyConfiguration(flags: ["store": "postgres://tally@127.0.0.1:5432/tally"], environment: [:]).store
            == .postgres(url: "postgres://tally@127.0.0.1:5432/tally"))
        #expect(try TallyConfiguration(flags: ["unlock-cost": "1000000000"], environment: [:]).unlockCost == 1_000_000_000)
    }

    @Test func unknownAndConflictingSettingsAreRefused() throws {
        let unknown = try #require(throws: ConfigurationError.self) {
            try TallyConfiguration(flags: ["prot": "80"], environment: [:])
        }
        #expect(unknown.setting == "prot")
        let both = try #require(throws: ConfigurationError.self) {
            try TallyConfiguration(flags: ["jwt-secret": String(repeating: "s", count: 32)], environment: ["TALLY_JWT_PUBLIC_KEY": "/k.pem"])
        }
        #expect(both.code == .conflictingSettings)
        // `token` reads only the signing settings: a bad port in the environment does not stop it.
        let signing = try TallyConfiguration(flags: [:], environment: ["TALLY_PORT": "x", "TALLY_JWT_SECRET": String(repeating: "s", count: 32)],
                                             settings: TallySetting.signing)
        #expect(signing.jwtSecret != nil)
    }

    @Test func theHealthStalenessBoundDefaultsToThreeIntervalsAndMayNotBeShorterThanOne() throws {
        #expect(try TallyConfiguration(flags: [:], environment: [:]).effectiveHealthStaleAfter == .seconds(90))
        #expect(try TallyConfiguration(flags: ["health-interval-s": "10"], environment: [:]).effectiveHealthStaleAfter == .seconds(30))
        let set = try TallyConfiguration(flags: [:], environment: ["TALLY_HEALTH_STALE_AFTER_S": "600"])
        #expect(set.healthStaleAfter == .seconds(600) && set.effectiveHealthStaleAfter == .seconds(600))
        #expect(try TallyConfiguration(flags: ["health-stale-after-s": "30"], environment: [:]).effectiveHealthStaleAfter == .seconds(30))
        let short = try #require(throws: ConfigurationError.self) {
            try TallyConfiguration(flags: ["health-stale-after-s": "29"], environment: [:])
        }
        #expect(short.code == .conflictingSettings && short.message.contains("--health-interval-s"), "\(short.message)")
    }

    @Test func noSecretAndAnUnreadableKeyFileAreClearErrors() async throws {
        let none = try TallyConfiguration(flags: [:], environment: [:])
        await #expect(throws: ConfigurationError.self) { try await none.makeAuthority() }
        let missing = try TallyConfiguration(flags: ["jwt-public-key": "/nonexistent/key.pem"], environment: [:])
        do {
            _ = try await missing.makeAuthority()
            Issue.record("an unreadable key file was accepted")
        } catch let error as ConfigurationError {
            #expect(error.code == .unreadableFile && error.message.contains("/nonexistent/key.pem"))
        }
    }
}

/// The real binary refuses what the configuration refuses, with the setting named and exit
/// status 64, instead of crashing or wrapping the value.
@Suite(.timeLimit(.minutes(5))) struct ServerConfigurationTests {
    @Test(arguments: [
        (["--unlock-cost=-1"], [String: String](), "--unlock-cost"),
        (["--port", "70000"], [:], "--port"),
        (["--health-interval-s", "0"], [:], "--health-interval-s"),
        ([], ["TALLY_HEALTH_INTERVAL_S": "0"], "TALLY_HEALTH_INTERVAL_S"),
        (["--fsync", "sometimes"], [:], "--fsync"),
    ])
    func badSettingsExitWithAUsageError(_ arguments: [String], _ environment: [String: String], _ named: String) async throws {
        try await withTemporaryDirectory("config") { directory in
            let directory = directory.path
            let env = ["TALLY_JWT_SECRET": APIFixture.secret, "PATH": "/usr/bin:/bin"].merging(environment) { $1 }
            let result = try await runProcess(try builtProduct("tally-server"), ["serve", "--data-dir", directory] + arguments, environment: env)
            #expect(result.status == 64, "exit \(result.status): \(result.stderr)")
            #expect(result.stderr.contains(named), "\(result.stderr)")
            #expect(!result.stderr.contains("Fatal error") && !result.stderr.contains("backtrace"), "\(result.stderr)")
        }
    }
}
