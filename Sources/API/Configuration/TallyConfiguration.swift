public import EventLog
public import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Everything `tally-server` is told, checked. Built from flags and environment variables
/// through `TallySetting.all` — a flag wins over its variable, an empty variable counts as
/// unset, and both forms pass the same check — or set in code by tests.
public struct TallyConfiguration: Sendable {
    public enum StoreLocation: Sendable, Equatable {
        /// The embedded file log in `dataDirectory`.
        case embedded
        /// The shared PostgreSQL log.
        case postgres(url: String)
    }

    public var dataDirectory = "./data"
    public var store = StoreLocation.embedded
    public var host = "127.0.0.1"
    public var port = 8080
    public var fsync = FsyncPolicy.always
    public var repair = false
    /// The embedded log's cache of sealed streams' versions (`FileLog.Options.streamCacheCapacity`).
    public var streamCacheCapacity = 100_000
    public var unlockCost: Int64 = 1
    public var consistencyWait = Duration.seconds(1)
    public var commandTimeout = Duration.seconds(5)
    public var healthInterval = Duration.seconds(30)
    /// The Ed25519 key the server signs tree heads with (`TALLY_SIGNING_KEY`), loaded and
    /// checked when the configuration is read; nil: no signed heads.
    public var signingKey: TreeHeadSigningKey?
    public var signingKeyPath: String?
    /// How often the server appends a signed tree head to `DATA_DIR/tree-heads.jsonl`.
    public var treeHeadInterval = Duration.seconds(60)
    /// A component whose last health sample is older than this is reported `stale`; nil:
    /// three health intervals, so one late or lost sample is not yet news.
    public var healthStaleAfter: Duration?
    /// The clock health samples are aged against at the API edge (tests inject one).
    public var wallClock = WallClock.system
    /// HTTP connections: closed after this long with no request in flight (keep-alive idle).
    public var idleTimeout = Duration.seconds(60)
    /// A request head (request line and headers) must arrive whole within this long of its
    /// first byte, and its body within `bodyTimeout` of the head; else the connection closes.
    public var headerTimeout = Duration.seconds(10)
    public var bodyTimeout = Duration.seconds(30)
    /// Open connections at most; more wait in the listen backlog until one closes.
    public var maxConnections = 4_096
    /// Live streams (`/api/v1/live`) at most; more are refused with 503 `busy`.
    public var maxLiveStreams = LiveFeed.defaultMaximum
    /// Empty: no CORS headers.
    public var corsOrigins: [String] = []
    /// nil: `/metrics` is open.
    public var metricsToken: String?
    public var jwtSecret: String?
    public var jwtPublicKeyPath: String?
    public var logLevel = Logger.Level.info
    /// How `tally-server` writes its log lines (`LogFormat`).
    public var logFormat = LogFormat.text
    /// Breaker: consecutive store failures that open it, and how long it stays open.
    public var breakerFailureThreshold = 5
    public var breakerOpenDuration = Duration.seconds(5)
    /// Snapshots of the views under `dataDirectory/snapshots`; off in tests that want every
    /// start to fold the whole log.
    public var snapshots = true
    /// The server's own health samples; off in tests that count events.
    public var samplesHealth = true
    /// With snapshots on: an as-of checkpoint of system-stats and metrics after this many
    /// events (under `snapshots/checkpoints`, for `replay stats` as of any point).
    public var checkpointEveryEvents: UInt64 = 250_000

    /// The defaults, as documented in `TallySetting.all`.
    public init() {}

    /// Reads `settings` from `flags` (name without dashes → value) and `environment`.
    /// Throws for the first value that fails its setting's check; nothing is half-applied.
    public init(flags: [String: String], environment: [String: String],
                settings: [TallySetting] = TallySetting.all) throws(ConfigurationError) {
        var configuration = TallyConfiguration()
        let known = Set(settings.map(\.name))
        if let unknown = flags.keys.sorted().first(where: { !known.contains($0) }) {
            throw ConfigurationError(.invalidValue, setting: unknown, "--\(unknown) is not a setting of tally-server")
        }
        for setting in settings {
            let value = flags[setting.name] ?? environment[setting.environment].flatMap { $0.isEmpty ? nil : $0 }
            guard let value else { continue }
            do {
                try setting.apply(&configuration, value)
            } catch {
                throw setting.refused(value, error)
            }
        }
        if configuration.jwtSecret != nil, configuration.jwtPublicKeyPath != nil {
            throw ConfigurationError(.conflictingSettings, setting: TallySetting.jwtSecret.name,
                                     "give either \(TallySetting.jwtSecret.label) (HS256) or \(TallySetting.jwtPublicKey.label) (RS256), not both")
        }
        if let path = configuration.signingKeyPath {
            guard let bytes = FileBytes.read(path, limit: 4_096) else {
                throw ConfigurationError(.unreadableFile, setting: TallySetting.signingKey.name,
                                         "cannot read the signing key file \(path) (\(TallySetting.signingKey.label)): check the path and its permissions")
            }
            do {
                configuration.signingKey = try TreeHeadSigningKey(fileContents: bytes)
            } catch {
                throw ConfigurationError(.invalidValue, setting: TallySetting.signingKey.name,
                                         "\(path) (\(TallySetting.signingKey.label)) is not a signing key: \(error)")
            }
        }
        if let staleAfter = configuration.healthStaleAfter, staleAfter < configuration.healthInterval {
            throw ConfigurationError(.conflictingSettings, setting: TallySetting.healthStaleAfterS.name,
                                     "\(TallySetting.healthStaleAfterS.label) is shorter than \(TallySetting.healthIntervalS.label): the server's own samples would always be stale; give at least the interval")
        }
        self = configuration
    }

    /// The staleness bound in force: as set, or three health intervals.
    public var effectiveHealthStaleAfter: Duration { healthStaleAfter ?? healthInterval * 3 }

    /// The data directory's snapshot folder, when snapshots are on.
    public var snapshotDirectory: String? { snapshots ? dataDirectory + "/snapshots" : nil }
}

/// A small file's bytes, or nil when it cannot be read or is larger than `limit`.
enum FileBytes {
    static func read(_ path: String, limit: Int) -> [UInt8]? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes = [UInt8](repeating: 0, count: limit + 1)
        let n = fread(&bytes, 1, bytes.count, file)
        guard n <= limit, ferror(file) == 0 else { return nil }
        return Array(bytes.prefix(n))
    }
}
