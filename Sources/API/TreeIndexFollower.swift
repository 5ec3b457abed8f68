public import EventLog
public import Logging
public import ServiceLifecycle

/// Keeps the log's Merkle tree index caught up with the head, so that an auditor's proof
/// never hashes history while the request waits: at start it stores what is missing (a log
/// whose index was never built is hashed once, here, in the background, on one core: 8.6 s for 10 M
/// events), then it follows the head every `interval`. A failure is logged and tried again
/// at the next interval; the proof routes still catch up on their own.
public struct TreeIndexFollower<Store: EventStore>: Service {
    let api: TallyAPI<Store>
    let interval: Duration
    let logger: Logger

    public init(api: TallyAPI<Store>, interval: Duration, logger: Logger) {
        self.api = api
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        while true {
            await follow()
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                return
            }
        }
    }

    /// Stores the index's chunks up to the head; returns how many are stored (nil on failure).
    @discardableResult
    func follow() async -> UInt64? {
        do {
            let head = try await api.hub.store.head().position
            let index = try await api.tree.index(for: api.hub.store)
            // One lane: the index is built beside the requests, not instead of them.
            return try await index.catchUp(api.hub.store, head: head, lanes: 1)
        } catch {
            logger.warning("cannot bring the tree index up to the log's head", metadata: ["error": "\(error)"])
            return nil
        }
    }
}
