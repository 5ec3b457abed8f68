public import Commands
public import EventLog
public import Hummingbird
import HummingbirdCore
public import Logging
public import Projections
public import Prometheus
public import ServiceLifecycle

/// The server's parts over one store, wired once: what `tally-server` runs and what the
/// tests drive through the same router. Nothing here reads flags or the environment; that
/// is `TallyConfiguration`'s job.
public struct TallyComponents<Store: EventStore>: Sendable {
    public let configuration: TallyConfiguration
    public let store: Store
    public let hub: ViewHub<Store>
    public let commands: CommandService<Store>
    public let api: TallyAPI<Store>
    let logger: Logger
    /// Counts open HTTP connections and holds new ones back past the limit.
    public let connections: ConnectionLimit

    /// Wires views, commands, breaker, metrics and routes over `store`. `/metrics` renders
    /// `metricsRegistry`: the one the process bootstrapped swift-metrics with, if any.
    /// `onRunnerEvent` hears each view's runner events after they are logged (tests).
    public init(store: Store, configuration: TallyConfiguration, authority: TokenAuthority, logger: Logger,
                metricsRegistry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(),
                onRunnerEvent: (@Sendable (String, ProjectionRunnerEvent) -> Void)? = nil) {
        self.configuration = configuration
        self.store = store
        self.logger = logger
        connections = ConnectionLimit(maximum: configuration.maxConnections)
        hub = ViewHub(store: store, snapshots: configuration.snapshotDirectory.map(SnapshotStore.init(directory:)),
                      consistencyWait: configuration.consistencyWait,
                      runnerOptions: ProjectionRunnerOptions(checkpointEveryEvents: configuration.checkpointEveryEvents)) { [logger] name, event in
            logger.info("\(event)", metadata: ["projection": "\(name)"])
            onRunnerEvent?(name, event)
        }
        commands = CommandService(store: store, unlockCost: configuration.unlockCost)
        api = TallyAPI(hub: hub, commands: commands, authority: authority, corsOrigins: configuration.corsOrigins,
                       metrics: TallyMetrics(registry: metricsRegistry, token: configuration.metricsToken),
                       breaker: StoreBreaker(failureThreshold: configuration.breakerFailureThreshold,
                                             openDuration: configuration.breakerOpenDuration,
                                             commandDeadline: configuration.commandTimeout),
                       healthStaleAfter: configuration.effectiveHealthStaleAfter, clock: configuration.wallClock,
                       live: LiveFeed(maximum: configuration.maxLiveStreams))
    }

    /// The long-running parts besides the HTTP server, in start order. A service group stops
    /// them in reverse after the server: the health sampler, then the views (each writes
    /// its snapshot), then, when `closesStore`, the store, and last the log flusher, so the
    /// lines about all of that reach standard error.
    public func services(closesStore: Bool) -> [any Service] {
        var services: [any Service] = [LogFlushService()]
        if closesStore { services.append(StoreCloser(store: store, logger: logger)) }
        services += hub.services
        // The live stream's publisher: stopped before the views, it ends every stream.
        services.append(api.livePublisher)
        if configuration.samplesHealth {
            services.append(HealthSampler(api: api, dataDirectory: configuration.dataDirectory, interval: configuration.healthInterval))
        }
        // The tree index follows the head for the audit routes (at the signed heads' interval).
        services.append(TreeIndexFollower(api: api, interval: configuration.treeHeadInterval, logger: logger))
        if let key = configuration.signingKey {
            services.append(TreeHeadPublisher(api: api, key: key, path: configuration.dataDirectory + "/" + TreeHeadPublisher<Store>.fileName,
                                              interval: configuration.treeHeadInterval, logger: logger))
        }
        return services
    }

    /// The Hummingbird application: the router, listening where the configuration says,
    /// running `services` in its service group; `onListening` hears the bound port. Each
    /// connection is closed after the idle timeout with no request in flight (Hummingbird's
    /// own), or when a request's head or body misses its deadline (`ConnectionGuard`); past
    /// `maxConnections` open ones, new connections wait in the listen backlog.
    public func makeApplication(
        services: [any Service],
        onListening: @escaping @Sendable (_ port: Int?) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let (headerTimeout, bodyTimeout, logger) = (configuration.headerTimeout, configuration.bodyTimeout, logger)
        let http1 = HTTP1Channel.Configuration(
            additionalChannelHandlers: [ConnectionGuardHandler(headerTimeout: headerTimeout, bodyTimeout: bodyTimeout, logger: logger)],
            idleTimeout: .nanoseconds(ConnectionGuard.nanoseconds(configuration.idleTimeout)),
            httpDecoderConfiguration: .init(maxHeaderFieldSize: TallyHTTPLimits.maxHeaderBytes, maxHeaderListSize: TallyHTTPLimits.maxHeaderBytes)
        )
        return Application(
            router: api.makeRouter(),
            server: .http1(configuration: http1),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "tally",
                                 availableConnectionsDelegate: connections),
            services: services,
            onServerRunning: { channel in await onListening(channel.localAddress?.port) },
            logger: logger
        )
    }
}

/// Opens the store the configuration names and builds the application over it: the one
/// composition root `tally-server` runs. Run it with `runService()`: SIGTERM or SIGINT stop
/// serving, write the views' snapshots, then close the log.
public func buildApplication(
    configuration: TallyConfiguration, logger: Logger, metricsRegistry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()
) async throws -> any ApplicationProtocol {
    let authority = try await configuration.makeAuthority()
    switch configuration.store {
    case .postgres(let url):
        let log = try PostgresLog(url: url, options: .init(fsync: configuration.fsync))
        let head = try await log.head()
        logger.info("opened the PostgreSQL event log", metadata: [
            "store": "\(log.location)", "fsync": "\(configuration.fsync)", "head_position": "\(head.position)",
            "chain_hash": "\(head.chainHashHex)",
        ])
        return buildApplication(store: log, configuration: configuration, authority: authority, logger: logger,
                                metricsRegistry: metricsRegistry)
    case .embedded:
        let options = FileLog.Options(fsync: configuration.fsync, repair: configuration.repair,
                                     streamCacheCapacity: configuration.streamCacheCapacity) { [logger] failure in
            // The writer goes on in the full segment and tries again at the next batch;
            // `tally_log_seal_failures_total` counts these.
            logger.error("could not seal the active segment; will retry at the next batch", metadata: ["error": "\(failure)"])
        }
        let log = try FileLog(directory: configuration.dataDirectory, options: options)
        let head = log.currentHead()
        logger.info("opened event log", metadata: [
            "directory": "\(configuration.dataDirectory)", "fsync": "\(configuration.fsync)", "head_position": "\(head.position)",
            "chain_hash": "\(head.chainHashHex)", "recovery": "\(log.recovery)",
        ])
        return buildApplication(store: log, configuration: configuration, authority: authority, logger: logger,
                                metricsRegistry: metricsRegistry)
    }
}

/// The application over an open store; it closes the store once the server and the views
/// have stopped, unless `closesStore` is false (the caller closes it).
public func buildApplication<Store: EventStore>(
    store: Store, configuration: TallyConfiguration, authority: TokenAuthority, logger: Logger,
    metricsRegistry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(),
    closesStore: Bool = true
) -> some ApplicationProtocol {
    let components = TallyComponents(store: store, configuration: configuration, authority: authority, logger: logger,
                                     metricsRegistry: metricsRegistry)
    let (host, port) = (configuration.host, configuration.port)
    return components.makeApplication(services: components.services(closesStore: closesStore)) { [logger] bound in
        logger.notice("tally-server listening", metadata: ["url": "http://\(host):\(bound ?? port)"])
    }
}

/// Owns the store for the process's lifetime; on graceful shutdown it closes it.
struct StoreCloser<Store: EventStore>: Service {
    let store: Store
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        logger.info("shutting down: closing the event log")
        try await store.close()
        logger.info("event log closed")
    }
}
