/// What a store's writer has done in this process, in terms every backend shares, so that
/// `/metrics`, the health sampler and `replay bench` read one value whatever the backend.
///
/// A *commit* is one group commit (a `FileLog` batch, a PostgreSQL transaction); a *sync*
/// is what makes commits durable (an fdatasync, a COMMIT round trip). `names` holds the
/// words the backend uses for them, so published figure names stay the ones operators know
/// (`tally_log_batches`, `tally_log_transactions`, `fsync_p99_ms`, `commit_p99_ms`…).
public struct StoreStatistics: Sendable, Hashable {
    /// The backend's words for its commits and syncs.
    public struct Names: Sendable, Hashable {
        /// The backend, as figures label it: `file`, `postgres`.
        public var backend: String
        /// One commit (`batch`, `transaction`) and several (`batches`, `transactions`).
        public var commit: String
        public var commits: String
        /// One durable sync (`fsync`, `commit`).
        public var sync: String

        public init(backend: String, commit: String, commits: String, sync: String) {
            self.backend = backend
            self.commit = commit
            self.commits = commits
            self.sync = sync
        }
    }

    public var names: Names
    /// Group commits written.
    public var commits = 0
    /// Group commits that failed (nothing in them was acknowledged).
    public var failedCommits = 0
    /// Events in the written commits (repeats of an idempotency key not counted).
    public var events = 0
    /// Durable syncs made.
    public var syncs = 0
    /// Durations of the most recent durable syncs, in nanoseconds, oldest first (bounded).
    public var recentSyncNanoseconds: [UInt64] = []
    /// Bytes the log occupies, when the store knows without asking anything slow; nil
    /// otherwise (`EventStore.storedBytes()` always answers).
    public var bytesStored: Int?
    /// Full segments the writer could not seal (it keeps appending to the active one).
    public var sealFailures = 0
    /// The last seal failure's message, for a log line.
    public var lastSealFailure: String?
    /// Connections made after the first (server restarts, network breaks).
    public var reconnects = 0

    public init(names: Names) {
        self.names = names
    }

    /// Events per commit, or nil before the first commit.
    public var eventsPerCommit: Double? {
        commits > 0 ? Double(events) / Double(commits) : nil
    }

    /// The median and 99th percentile of the recent syncs, in nanoseconds (nil when none).
    public var syncMedianAndP99: (median: UInt64, p99: UInt64)? {
        let q = quantiles([0.5, 0.99], of: recentSyncNanoseconds)
        return q.isEmpty ? nil : (q[0], q[1])
    }
}

/// Nearest-rank quantiles of `samples`: for each `q` in 0...1, the smallest sample that at
/// least `q` of all samples are at or below (q = 0 gives the minimum). Every figure the
/// project prints — `/metrics`, `replay bench`, the health sampler — uses this one formula,
/// so they agree on the same data. Empty when `samples` is.
public func quantiles(_ qs: [Double], of samples: [UInt64]) -> [UInt64] {
    guard !samples.isEmpty else { return [] }
    let sorted = samples.sorted()
    return qs.map { q in
        precondition(q >= 0 && q <= 1, "a quantile is in 0...1, got \(q)")
        // The rank ceil(q × n), 1-based; the small slack keeps 0.99 × 100 at rank 99.
        let rank = Int((q * Double(sorted.count) - 1e-9).rounded(.up))
        return sorted[min(sorted.count, max(1, rank)) - 1]
    }
}

/// The nearest-rank `q` quantile of `samples` (see `quantiles(_:of:)`), or nil when empty.
public func quantile(_ q: Double, of samples: [UInt64]) -> UInt64? {
    quantiles([q], of: samples).first
}

/// Keeps the most recent durations for quantiles, in bounded memory.
struct RecentSamples: Sendable, Hashable {
    let capacity: Int
    private var ring: [UInt64] = []
    private var next = 0

    init(capacity: Int) {
        self.capacity = capacity
    }

    mutating func record(_ value: UInt64) {
        if ring.count < capacity {
            ring.append(value)
        } else {
            ring[next] = value
            next = (next + 1) % capacity
        }
    }

    /// Oldest first.
    var values: [UInt64] { Array(ring[next...] + ring[..<next]) }
}

/// A writer's figures as it counts them: the statistics plus its recent sync (fsync or
/// commit) durations in a ring. Both backends' writers keep one behind a lock.
struct WriterCounters: Sendable {
    var statistics: StoreStatistics
    private var recentSyncs: RecentSamples

    init(names: StoreStatistics.Names, samples: Int) {
        statistics = StoreStatistics(names: names)
        recentSyncs = RecentSamples(capacity: samples)
    }

    mutating func recordSync(_ nanoseconds: UInt64) {
        statistics.syncs += 1
        recentSyncs.record(nanoseconds)
    }

    /// The statistics with the recent sync durations, oldest first.
    var snapshot: StoreStatistics {
        var snapshot = statistics
        snapshot.recentSyncNanoseconds = recentSyncs.values
        return snapshot
    }
}
