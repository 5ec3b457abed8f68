public import EventLog
import Events
public import Logging

/// One setting of `tally-server`: its flag, its environment variable and the one rule that
/// checks a value from either, so the two forms can never disagree.
public struct TallySetting: Sendable {
    /// The flag without dashes, e.g. `port` for `--port`.
    public let name: String
    /// The environment variable, e.g. `TALLY_PORT`.
    public let environment: String
    /// What the value is and what it accepts, for `--help` and error messages.
    public let help: String
    /// Sets the value, or throws `Refusal` saying what the setting accepts.
    let apply: @Sendable (inout TallyConfiguration, String) throws(Refusal) -> Void
    /// Secrets are never repeated in a message.
    var echoesValue = true

    /// The flag as typed: `--port`.
    public var flag: String { "--" + name }

    /// `--port / TALLY_PORT`, as messages name a setting.
    var label: String { "\(flag) / \(environment)" }

    /// What a refused value gets: the setting, the value (unless secret) and what it accepts.
    func refused(_ value: String, _ refusal: Refusal) -> ConfigurationError {
        let shown = echoesValue ? " = '\(PostgresURL.redacted(String(value.prefix(200))))'" : " (\(value.utf8.count) bytes)"
        return ConfigurationError(.invalidValue, setting: name, "\(label)\(shown) is not valid: expected \(refusal.expected)")
    }

    struct Refusal: Error {
        var expected: String
        init(_ expected: String) { self.expected = expected }
    }
}

extension TallySetting {
    /// Every setting, in `--help` order.
    public static let all: [TallySetting] = [
        dataDirectory, store, host, port, fsync, repair, streamCache, unlockCost, consistencyWaitMs, commandTimeoutMs,
        healthIntervalS, healthStaleAfterS, idleTimeoutMs, headerTimeoutMs, bodyTimeoutMs, maxConnections, corsOrigins, metricsToken,
        jwtSecret, jwtPublicKey, signingKey, treeHeadIntervalS, logLevel, logFormat,
    ]

    /// The settings `tally-server token` reads.
    public static let signing: [TallySetting] = [jwtSecret, jwtPublicKey]

    public static let dataDirectory = path("data-dir", "TALLY_DATA_DIR",
                                           "Data directory: the embedded log and the views' snapshots.") { $0.dataDirectory = $1 }

    public static let store = TallySetting(
        name: "store", environment: "TALLY_STORE",
        help: "`file` for the embedded log in the data directory (default), or postgres://user@host:port/db for the shared PostgreSQL log."
    ) { (configuration, value) throws(Refusal) in
        if value == "file" {
            configuration.store = .embedded
        } else if PostgresURL.matches(value) {
            configuration.store = .postgres(url: value)
        } else {
            throw Refusal("`file` or a postgres:// URL")
        }
    }

    public static let host = TallySetting(
        name: "host", environment: "TALLY_HOST", help: "Address to listen on (default 127.0.0.1)."
    ) { (configuration, value) throws(Refusal) in
        guard value.utf8.count <= 253, !value.contains(where: { $0.isWhitespace || $0 == "/" }) else {
            throw Refusal("a host name or IP address of at most 253 characters")
        }
        configuration.host = value
    }

    public static let port = integer("port", "TALLY_PORT", "Port to listen on; 0 picks a free one (default 8080).",
                                     0...65_535) { $0.port = $1 }

    public static let fsync = TallySetting(
        name: "fsync", environment: "TALLY_FSYNC",
        help: "When an append is durable: always (default) | interval | interval:MS (1...60000) | never."
    ) { (configuration, value) throws(Refusal) in
        guard let policy = FsyncPolicy(parsing: value) else {
            throw Refusal("always, interval, interval:MS with MS in 1...60000, or never")
        }
        configuration.fsync = policy
    }

    public static let repair = TallySetting(
        name: "repair", environment: "TALLY_REPAIR",
        help: "Cut the log at the first damaged batch instead of refusing to start (true | false, default false)."
    ) { (configuration, value) throws(Refusal) in
        switch value {
        case "true", "1", "yes": configuration.repair = true
        case "false", "0", "no": configuration.repair = false
        default: throw Refusal("true or false")
        }
    }

    public static let streamCache = integer(
        "stream-cache", "TALLY_STREAM_CACHE",
        "Stream versions the embedded log's writer caches in front of its sealed segments' on-disk indexes, about 100 bytes each; 0: none (default 100000).",
        0...100_000_000) { $0.streamCacheCapacity = $1 }

    public static let unlockCost = integer("unlock-cost", "TALLY_UNLOCK_COST", "Credits one profile unlock costs (default 1).",
                                           0...Int(FieldRules.maxCredits)) { $0.unlockCost = Int64($1) }

    public static let consistencyWaitMs = integer(
        "consistency-wait-ms", "TALLY_CONSISTENCY_WAIT_MS", "How long a read with Tally-After waits for its view, ms (default 1000).",
        0...60_000) { $0.consistencyWait = .milliseconds($1) }

    public static let commandTimeoutMs = integer(
        "command-timeout-ms", "TALLY_COMMAND_TIMEOUT_MS",
        "A command the store has not answered within this many ms is a 503 and a breaker failure (default 5000).",
        10...600_000) { $0.commandTimeout = .milliseconds($1) }

    public static let healthIntervalS = integer(
        "health-interval-s", "TALLY_HEALTH_INTERVAL_S",
        "Seconds between the server's own health samples, each an event in the log (default 30).",
        1...86_400) { $0.healthInterval = .seconds($1) }

    public static let healthStaleAfterS = integer(
        "health-stale-after-s", "TALLY_HEALTH_STALE_AFTER_S",
        "Seconds after which a component's last health sample (by its event time, against the request's clock) makes it `stale` instead of ok (default three health intervals, 90).",
        1...604_800) { $0.healthStaleAfter = .seconds($1) }

    public static let idleTimeoutMs = integer(
        "idle-timeout-ms", "TALLY_IDLE_TIMEOUT_MS",
        "An HTTP connection with no request in flight for this many ms is closed (default 60000).",
        10...3_600_000) { $0.idleTimeout = .milliseconds($1) }

    public static let headerTimeoutMs = integer(
        "header-timeout-ms", "TALLY_HEADER_TIMEOUT_MS",
        "A request head not complete this many ms after its first byte closes the connection (default 10000).",
        10...600_000) { $0.headerTimeout = .milliseconds($1) }

    public static let bodyTimeoutMs = integer(
        "body-timeout-ms", "TALLY_BODY_TIMEOUT_MS",
        "A request body not complete this many ms after its head closes the connection (default 30000).",
        10...3_600_000) { $0.bodyTimeout = .milliseconds($1) }

    public static let maxConnections = integer(
        "max-connections", "TALLY_MAX_CONNECTIONS",
        "Open HTTP connections at most; more wait in the listen backlog until one closes (default 4096).",
        1...1_000_000) { $0.maxConnections = $1 }

    public static let corsOrigins = TallySetting(
        name: "cors-origins", environment: "TALLY_CORS_ORIGINS",
        help: "Comma-separated origins CORS allows (http://… or https://…), or * for any; empty: no CORS (default)."
    ) { (configuration, value) throws(Refusal) in
        let origins = value.split(separator: ",").map { String($0).trimmingWhitespace() }.filter { !$0.isEmpty }
        let valid = origins == ["*"] || origins.allSatisfy { origin in
            (origin.hasPrefix("http://") || origin.hasPrefix("https://")) && origin.utf8.count <= 2_048
                && !origin.contains(where: { $0.isWhitespace || $0 == "*" })
        }
        guard valid, origins.count <= 100 else {
            throw Refusal("* alone, or up to 100 comma-separated http(s):// origins")
        }
        configuration.corsOrigins = origins
    }

    public static let metricsToken = secret("metrics-token", "TALLY_METRICS_TOKEN",
                                            "Bearer token /metrics requires; unset: /metrics is open.", minimumBytes: 1) {
        $0.metricsToken = $1
    }

    public static let jwtSecret = secret("jwt-secret", "TALLY_JWT_SECRET", "HS256 secret for bearer tokens, at least 32 bytes.",
                                         minimumBytes: 32) { $0.jwtSecret = $1 }

    public static let jwtPublicKey = path("jwt-public-key", "TALLY_JWT_PUBLIC_KEY",
                                          "PEM file with an RS256 public key or certificate (verify only).") { $0.jwtPublicKeyPath = $1 }

    public static let signingKey = path("signing-key", "TALLY_SIGNING_KEY",
                                        "File with the Ed25519 key that signs tree heads (64 hex digits; `replay keygen` writes one); unset: no signed heads.") {
        $0.signingKeyPath = $1
    }

    public static let treeHeadIntervalS = integer(
        "tree-head-interval-s", "TALLY_TREE_HEAD_INTERVAL_S",
        "Seconds between the signed tree heads the server appends to DATA_DIR/tree-heads.jsonl (with a signing key), and between the tree index's catch-ups to the head (default 60).",
        1...86_400) { $0.treeHeadInterval = .seconds($1) }

    public static let logLevel = TallySetting(
        name: "log-level", environment: "TALLY_LOG_LEVEL",
        help: "trace | debug (every request) | info (default) | notice | warning | error | critical."
    ) { (configuration, value) throws(Refusal) in
        guard let level = Logger.Level(rawValue: value) else {
            throw Refusal("trace, debug, info, notice, warning, error or critical")
        }
        configuration.logLevel = level
    }

    public static let logFormat = TallySetting(
        name: "log-format", environment: "TALLY_LOG_FORMAT",
        help: "text (swift-log's default, the default) | json (one object per line) | logfmt (key=value per line)."
    ) { (configuration, value) throws(Refusal) in
        guard let format = LogFormat(rawValue: value) else { throw Refusal("text, json or logfmt") }
        configuration.logFormat = format
    }

    // MARK: - Kinds of setting

    static func integer(_ name: String, _ environment: String, _ help: String, _ range: ClosedRange<Int>,
                        _ set: @escaping @Sendable (inout TallyConfiguration, Int) -> Void) -> TallySetting {
        let help = help + " Allowed: \(range.lowerBound)...\(range.upperBound)."
        return TallySetting(name: name, environment: environment, help: help) { (configuration, value) throws(Refusal) in
            guard let number = Int(value), range.contains(number) else {
                throw Refusal("a whole number in \(range.lowerBound)...\(range.upperBound)")
            }
            set(&configuration, number)
        }
    }

    static func path(_ name: String, _ environment: String, _ help: String,
                     _ set: @escaping @Sendable (inout TallyConfiguration, String) -> Void) -> TallySetting {
        TallySetting(name: name, environment: environment, help: help) { (configuration, value) throws(Refusal) in
            guard value.utf8.count <= 4_096, !value.utf8.contains(0) else { throw Refusal("a path of at most 4096 bytes") }
            set(&configuration, value)
        }
    }

    /// A secret is never echoed in a message.
    static func secret(_ name: String, _ environment: String, _ help: String, minimumBytes: Int,
                       _ set: @escaping @Sendable (inout TallyConfiguration, String) -> Void) -> TallySetting {
        TallySetting(name: name, environment: environment, help: help, apply: { (configuration, value) throws(Refusal) in
            let bytes = value.utf8.count
            guard bytes >= minimumBytes, bytes <= 4_096, value.allSatisfy({ $0.isASCII && !$0.isWhitespace && $0 != "\0" }) else {
                throw Refusal("\(minimumBytes)...4096 printable ASCII bytes without spaces")
            }
            set(&configuration, value)
        }, echoesValue: false)
    }
}

extension String {
    func trimmingWhitespace() -> String {
        String(drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}
