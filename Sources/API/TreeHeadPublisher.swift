public import EventLog
import Events
public import Logging
public import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// Appends a signed tree head of the log to `DATA_DIR/tree-heads.jsonl` every interval while
/// the head moves (and once at start), one JSON line each (docs/log-format.md, "Signed tree
/// heads"), synced before the next: a file an auditor collects and checks with
/// `replay verify --public-key K --heads FILE`. A failure is logged and retried next time.
public struct TreeHeadPublisher<Store: EventStore>: Service {
    public static var fileName: String { "tree-heads.jsonl" }
    let api: TallyAPI<Store>
    let key: TreeHeadSigningKey
    let path: String
    let interval: Duration
    let logger: Logger

    public init(api: TallyAPI<Store>, key: TreeHeadSigningKey, path: String, interval: Duration, logger: Logger) {
        self.api = api
        self.key = key
        self.path = path
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        var signed: UInt64?
        while true {
            signed = await publish(after: signed)
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                return
            }
        }
    }

    /// Signs the head unless it is still `after`; returns the size signed last.
    func publish(after signed: UInt64?) async -> UInt64? {
        do {
            let head = try await api.hub.store.head().position
            if let signed, signed == head { return signed }
            let tree = try await api.treeHead(size: head)
            let sth = try key.sign(size: tree.size, root: tree.root, timestampMs: api.clock.microseconds() / 1_000)
            try Self.append(JSONValue.object(TreeProofs.object(sth)).serialized() + "\n", to: path)
            return head
        } catch {
            logger.warning("cannot write a signed tree head", metadata: ["path": "\(path)", "error": "\(error)"])
            return signed
        }
    }

    static func append(_ line: String, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw EventLogError(.io, "cannot open \(path): errno \(errno)") }
        defer { close(fd) }
        var bytes = Array(line.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw EventLogError(.io, "cannot write \(path): errno \(errno)") }
            offset += n
        }
        guard fdatasync(fd) == 0 else { throw EventLogError(.io, "cannot sync \(path): errno \(errno)") }
    }
}
