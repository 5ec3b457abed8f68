import Synchronization

extension FileLog {
    /// What the open log holds in memory per stream or idempotency key: the figures that must
    /// stay bounded however many streams the log and its active segment hold (the tail after
    /// the last checkpoint record, the written-but-unpublished batches, the stream cache),
    /// and how many checkpoint records the active segment is looked up through.
    struct HeldCounts: Sendable, Equatable {
        var tailStreams: Int
        var tailKeys: Int
        var unsyncedStreams: Int
        var unsyncedKeys: Int
        var cachedStreams: Int
        var records: Int
    }

    var heldCounts: HeldCounts { core.state.withLock { $0.heldCounts } }
}
