import ArgumentParser
import EventLog
import Logging
import ServiceLifecycle
import UnixSignals

#if canImport(Glibc)
import Glibc
#endif

/// `tally-server`: opens the embedded event log and keeps it open as a service until
/// SIGTERM or SIGINT, then closes it cleanly (pending appends drain, the segment is synced).
/// The HTTP API is not part of this build yet; nothing listens on a port.
@main
struct TallyServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tally-server",
        abstract: "Tally's event-sourced analytics core."
    )

    @Option(help: "Data directory of the embedded log (env TALLY_DATA_DIR).")
    var dataDir: String?

    @Option(help: "always | interval | interval:MS | never (env TALLY_FSYNC).")
    var fsync: String?

    @Flag(help: "Cut the log at the first damaged batch instead of refusing to start.")
    var repair = false

    func run() async throws {
        let environment = Environment()
        let directory = dataDir ?? environment["TALLY_DATA_DIR"] ?? "./data"
        let fsyncText = fsync ?? environment["TALLY_FSYNC"] ?? "always"
        guard let policy = FsyncPolicy(parsing: fsyncText) else {
            throw ValidationError("fsync policy '\(fsyncText)' is not one of always, interval, interval:MS, never")
        }
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var logger = Logger(label: "tally")
        logger.logLevel = .info

        let log = try FileLog(directory: directory, options: .init(fsync: policy, repair: repair))
        let head = log.currentHead()
        logger.info("opened event log", metadata: [
            "directory": "\(directory)", "fsync": "\(policy)", "head_position": "\(head.position)",
            "chain_hash": "\(head.chainHashHex)", "recovery": "\(log.recovery)",
        ])
        logger.notice("the HTTP API is not built yet: tally-server holds the log open until SIGTERM/SIGINT")

        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: EventLogService(log: log, logger: logger))],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        try await group.run()
    }
}

/// Owns the log for the process's lifetime; on graceful shutdown it closes the log.
struct EventLogService: Service {
    let log: FileLog
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        logger.info("shutting down: closing the event log")
        try await log.close()
        logger.info("event log closed", metadata: ["head_position": "\(log.currentHead().position)"])
    }
}

/// Environment variables, read once.
struct Environment {
    private let values: [String: String]

    init() {
        var values: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let eq = text.firstIndex(of: "=") {
                values[String(text[..<eq])] = String(text[text.index(after: eq)...])
            }
            pointer += 1
        }
        self.values = values
    }

    subscript(_ key: String) -> String? { values[key].flatMap { $0.isEmpty ? nil : $0 } }
}
