#if canImport(Glibc)
import Glibc
#endif

/// The Merkle tree of a log, kept beside it so that the root at any size and any proof cost
/// O(log n) stored hashes plus the leaves of at most two chunks, whatever the history.
///
/// Leaves are grouped in chunks of 2^`chunkLevel` (256) events. The storage holds every node
/// at or above chunk level, in Merkle-mountain-range order over the chunks (each chunk's hash,
/// then the parents it completes), so a perfect subtree of at least a chunk is one stored
/// hash. Below chunk level the leaf hashes are recomputed from the chunk's events (one read of
/// the batches that hold them) rather than stored: storing them would cost 32 bytes per event
/// (more than the 23 an event takes on disk); recomputing costs 256 leaf hashes per chunk.
///
/// The index is derived data and never trusted: it is built from the log's events
/// (`catchUp`), never written on the append path; a node that fails its checksum, a chunk
/// whose events no longer hash to its stored node, or stored chunks past the log's head are
/// dropped with everything after them and rebuilt from the events (`repairs` says so).
public actor MerkleTreeIndex {
    public static let chunkLevel = 8
    static let chunkSize = UInt64(1) << chunkLevel
    /// Nodes written (and compared, in `audit`) per storage call.
    static let block = 8192

    public let storage: any MerkleNodeStorage
    /// Complete chunks whose nodes are stored.
    public private(set) var chunks: UInt64 = 0
    /// Roots of the perfect subtrees of the stored chunks (the mountains' peaks), to append.
    private var peaks = MerkleCompactRange()
    private var leafCache: [(chunk: UInt64, leaves: [MerkleHash])] = []
    /// What was found damaged or stale and rebuilt, oldest first (for reports and tests).
    public private(set) var repairs: [String] = []
    /// One operation at a time. Each awaits the log or the storage part-way, and the actor
    /// lets another call in meanwhile: two builds from the same `chunks` stored chunks twice and
    /// answered roots from half-written nodes (the server's follower and its proof requests
    /// share one index).
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    public init(storage: any MerkleNodeStorage) async throws {
        self.storage = storage
        var count = try await storage.count()
        if Self.chunks(forNodeCount: count) == nil {
            let valid = Self.nodeCount(chunks: Self.chunks(fittingIn: count))
            repairs.append("the index held \(count) nodes, which ends no chunk; cut to \(valid)")
            try await storage.truncate(toCount: valid)
            count = valid
        }
        try await loadPeaks()
    }

    /// Reads the peaks of the stored chunks; a damaged peak cuts the storage before it.
    private func loadPeaks() async throws {
        while true {
            let count = try await storage.count()
            let stored = Self.chunks(fittingIn: count)
            var peakIndices: [UInt64] = []
            var start: UInt64 = 0
            for level in (0..<64).reversed() where stored & (UInt64(1) << level) != 0 {
                peakIndices.append(Self.nodeIndex(level: level, index: start >> level))
                start += UInt64(1) << level
            }
            do {
                let hashes = try await storage.read(peakIndices)
                peaks = MerkleCompactRange(size: stored, hashes: hashes)!
                chunks = stored
                return
            } catch let damage as MerkleNodeDamage {
                try await cut(at: damage)
            }
        }
    }

    /// Drops the node `damage` names and every node after it (the chunks they cover are
    /// rebuilt from the events by the next `catchUp`).
    private func cut(at damage: MerkleNodeDamage) async throws {
        let keep = Self.chunks(fittingIn: damage.node)
        repairs.append("\(damage); rebuilt from chunk \(keep) (position \(keep * Self.chunkSize + 1)) on")
        try await storage.truncate(toCount: Self.nodeCount(chunks: keep))
        leafCache.removeAll()
        try await loadPeaks()
    }

    // MARK: Node numbering

    /// Where node (level above chunk level, index) sits in the storage: the MMR position of
    /// the node, whose last chunk is `(index + 1) << level − 1`.
    static func nodeIndex(level: Int, index: UInt64) -> UInt64 {
        let lastChunk = (index + 1) << level - 1
        return 2 * lastChunk - UInt64(lastChunk.nonzeroBitCount) + UInt64(level)
    }

    static func nodeCount(chunks: UInt64) -> UInt64 { 2 * chunks - UInt64(chunks.nonzeroBitCount) }

    /// The most chunks whose nodes fit in `count` stored hashes.
    static func chunks(fittingIn count: UInt64) -> UInt64 {
        // nodeCount is increasing in the chunk count: the last c with nodeCount(c) ≤ count.
        var lo: UInt64 = 0, hi = count  // nodeCount(c) ≥ c
        while lo < hi {
            let mid = lo + (hi - lo + 1) / 2
            if nodeCount(chunks: mid) <= count { lo = mid } else { hi = mid - 1 }
        }
        return lo
    }

    /// The number of chunks whose nodes fill exactly `count` stored hashes, or nil.
    static func chunks(forNodeCount count: UInt64) -> UInt64? {
        let c = chunks(fittingIn: count)
        return nodeCount(chunks: c) == count ? c : nil
    }

    static func previousValidCount(below count: UInt64) -> UInt64 {
        count == 0 ? 0 : nodeCount(chunks: chunks(fittingIn: count - 1))
    }

    private func exclusively<Result>(_ body: () async throws -> Result) async throws -> Result {
        while busy { await withCheckedContinuation { waiting.append($0) } }
        busy = true
        defer {
            busy = false
            if !waiting.isEmpty { waiting.removeFirst().resume() }
        }
        return try await body()
    }

    // MARK: Building

    /// Checks the stored part against a log whose head is `head`: chunks past the head (a log
    /// cut shorter by a repair) are dropped, and the last stored chunk is hashed again from its
    /// events; when it differs the whole index is compared with the events (`audit`).
    public func reconcile<Store: EventStore>(_ store: Store, head: LogPosition) async throws {
        try await exclusively { try await reconciling(store, head: head) }
    }

    private func reconciling<Store: EventStore>(_ store: Store, head: LogPosition) async throws {
        if chunks > head / Self.chunkSize {
            let keep = head / Self.chunkSize
            repairs.append("the index held \(chunks) chunks but the log ends at position \(head); cut to \(keep)")
            try await storage.truncate(toCount: Self.nodeCount(chunks: keep))
            leafCache.removeAll()
            try await loadPeaks()
        }
        guard chunks > 0 else { return }
        let last = chunks - 1
        let leaves = try await chunkLeaves(last, limit: chunks * Self.chunkSize, store: store)
        let stored = try await storedChunk(last)
        if stored != Self.fold(leaves[...]) { _ = try await auditing(store, head: head, progress: nil) }
    }

    private func storedChunk(_ chunk: UInt64) async throws -> MerkleHash? {
        do {
            return try await storage.read([Self.nodeIndex(level: 0, index: chunk)])[0]
        } catch is MerkleNodeDamage {
            return nil
        }
    }

    /// Stores the chunks completed by the events up to `head` that are not stored yet,
    /// reading them from `store`. Returns the number of chunks stored after it. `lanes`:
    /// tasks hashing chunks at once (a server's background catch-up takes one, so requests
    /// keep the other core).
    @discardableResult
    public func catchUp<Store: EventStore>(_ store: Store, head: LogPosition, lanes: Int = MerkleTreeIndex.lanes) async throws -> UInt64 {
        try await exclusively { try await catchingUp(store, head: head, lanes: lanes) }
    }

    @discardableResult
    private func catchingUp<Store: EventStore>(_ store: Store, head: LogPosition, lanes: Int = MerkleTreeIndex.lanes) async throws -> UInt64 {
        let target = head / Self.chunkSize
        guard target > chunks else { return chunks }
        try await build(store, fromChunk: chunks, toChunk: target, compare: false, lanes: lanes, progress: nil)
        return chunks
    }

    /// Hashes every event up to `head` again and compares each stored node with it; from the
    /// first that differs (or is damaged, or missing) on, the storage is rewritten from the
    /// events. Returns the tree head of the first `head` events, computed from the events alone.
    @discardableResult
    public func audit<Store: EventStore>(
        _ store: Store, head: LogPosition, progress: ((LogPosition) -> Void)? = nil
    ) async throws -> MerkleHash {
        try await exclusively { try await auditing(store, head: head, progress: progress) }
    }

    private func auditing<Store: EventStore>(
        _ store: Store, head: LogPosition, progress: ((LogPosition) -> Void)?
    ) async throws -> MerkleHash {
        peaks = MerkleCompactRange()
        let stored = chunks
        chunks = 0
        leafCache.removeAll()
        let tree = try await build(store, fromChunk: 0, toChunk: head / Self.chunkSize, compare: true, progress: progress, through: head)
        if chunks < stored {
            repairs.append("the index held \(stored) chunks, the log's events fill \(chunks); cut")
            try await storage.truncate(toCount: Self.nodeCount(chunks: chunks))
        }
        return tree?.root ?? .emptyTree
    }

    /// Reads events from chunk `first`, appending each completed chunk's nodes (comparing them
    /// with what is stored when `compare`) up to chunk `target`; with `through`, also returns
    /// the compact range of every leaf up to that position.
    ///
    /// Chunks are independent below chunk level, so their roots are hashed by `lanes` tasks at
    /// once, each reading its own stretch of the log; the nodes above (one per chunk) are
    /// appended here in order. The whole-log range is the stored peaks plus the leaves after
    /// the last whole chunk: no interior node is hashed twice.
    @discardableResult
    private func build<Store: EventStore>(
        _ store: Store, fromChunk first: UInt64, toChunk target: UInt64, compare: Bool, lanes: Int = MerkleTreeIndex.lanes,
        progress: ((LogPosition) -> Void)?, through: LogPosition? = nil
    ) async throws -> MerkleCompactRange? {
        precondition(through == nil || first == 0, "a whole-log range starts at chunk 0")
        var run = BuildRun(pendingFrom: chunks, built: chunks, rewriting: !compare)
        var next = first
        let lanes = max(1, lanes)
        while next < target {
            let window = min(target - next, UInt64(lanes) * Self.laneChunks)
            let roots = try await Self.hashChunks(next..<next + window, lanes: window >= UInt64(lanes) * 64 ? lanes : 1, store: store)
            for root in roots {
                appendChunk(root, into: &run.pending)
                run.built += 1
                if run.pending.count >= Self.block { try await flush(&run) }
            }
            next += window
            progress?(next * Self.chunkSize)
        }
        try await flush(&run)
        guard let through else { return nil }
        var whole = MerkleCompactRange(size: peaks.size << Self.chunkLevel, hashes: peaks.hashes)!
        let tail = target * Self.chunkSize
        if through > tail {
            for leaf in try await Self.leafHashes(from: tail + 1, through: through, store: store) { whole.append(leaf) }
            progress?(through)
        }
        return whole
    }

    /// Chunks one lane hashes per round: 1 M events, so a round's stragglers wait little.
    static let laneChunks: UInt64 = 4096
    /// Lanes: one per core, at most two (the log reads and decodes in the same lane).
    public static let lanes = min(2, max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))))

    /// The roots of the chunks in `range`, hashed from their events by `lanes` concurrent
    /// tasks, in chunk order.
    nonisolated static func hashChunks<Store: EventStore>(_ range: Range<UInt64>, lanes: Int, store: Store) async throws -> [MerkleHash] {
        guard lanes > 1 else { return try await hashChunks(range, store: store) }
        let per = (UInt64(range.count) + UInt64(lanes) - 1) / UInt64(lanes)
        let parts = stride(from: range.lowerBound, to: range.upperBound, by: Int(per)).map { $0..<min($0 + per, range.upperBound) }
        return try await withThrowingTaskGroup(of: (Int, [MerkleHash]).self) { group in
            for (i, part) in parts.enumerated() {
                group.addTask { (i, try await hashChunks(part, store: store)) }
            }
            var results = [[MerkleHash]](repeating: [], count: parts.count)
            for try await (i, roots) in group { results[i] = roots }
            return results.flatMap { $0 }
        }
    }

    /// The roots of the chunks in `range`, from one read of the log.
    nonisolated static func hashChunks<Store: EventStore>(_ range: Range<UInt64>, store: Store) async throws -> [MerkleHash] {
        var roots: [MerkleHash] = []
        roots.reserveCapacity(range.count)
        var chunk = MerkleCompactRange()
        try await eachLeaf(from: range.lowerBound * chunkSize + 1, through: range.upperBound * chunkSize, store: store) { leaf in
            chunk.append(leaf)
            if chunk.size == chunkSize {
                roots.append(chunk.root)
                chunk = MerkleCompactRange()
            }
        }
        return roots
    }

    nonisolated static func leafHashes<Store: EventStore>(from first: LogPosition, through last: LogPosition, store: Store) async throws -> [MerkleHash] {
        var leaves: [MerkleHash] = []
        try await eachLeaf(from: first, through: last, store: store) { leaves.append($0) }
        return leaves
    }

    /// Hashes the events `first…last` in order; the log must hold every one of them.
    nonisolated static func eachLeaf<Store: EventStore>(
        from first: LogPosition, through last: LogPosition, store: Store, _ body: (MerkleHash) -> Void
    ) async throws {
        guard last >= first else { return }
        var expected = first
        var scratch: [UInt8] = []
        reading: for try await batch in store.read(from: first).batches {
            for event in batch where event.position >= expected {
                guard event.position == expected else {
                    throw EventLogError(.corrupted, "the log returned position \(event.position) where \(expected) was due")
                }
                body(CanonicalEvent.leafHash(of: event, scratch: &scratch))
                expected += 1
                if expected > last { break reading }
            }
        }
        guard expected > last else {
            throw EventLogError(.corrupted, "the log ended at position \(expected - 1), before position \(last) it reported")
        }
    }

    /// Nodes computed by `build` and not yet stored, from chunk `pendingFrom`; `rewriting`
    /// once they are written rather than compared with what is stored.
    private struct BuildRun {
        var pending: [MerkleHash] = []
        var pendingFrom: UInt64
        var built: UInt64
        var rewriting: Bool
    }

    private func flush(_ run: inout BuildRun) async throws {
        guard !run.pending.isEmpty else { return }
        let start = Self.nodeCount(chunks: run.pendingFrom)
        if !run.rewriting {
            let count = try await storage.count()
            var same = count >= start + UInt64(run.pending.count)
            if same {
                do {
                    same = try await storage.read(Array(start..<start + UInt64(run.pending.count))) == run.pending
                } catch is MerkleNodeDamage {
                    same = false
                }
            }
            if !same {
                run.rewriting = true
                if count > start {
                    repairs.append("tree nodes from \(start) (chunk \(run.pendingFrom), position \(run.pendingFrom * Self.chunkSize + 1)) differ from the events; rebuilt")
                }
                try await storage.truncate(toCount: start)
            }
        }
        if run.rewriting { try await storage.append(run.pending) }
        run.pending.removeAll(keepingCapacity: true)
        chunks = run.built
        run.pendingFrom = run.built
    }

    /// Appends a chunk's hash and every parent it completes, bottom up: MMR order.
    private func appendChunk(_ hash: MerkleHash, into pending: inout [MerkleHash]) {
        var hash = hash
        pending.append(hash)
        var stack = peaks.hashes
        var size = peaks.size
        while size & 1 == 1 {
            hash = MerkleHash.node(stack.removeLast(), hash)
            pending.append(hash)
            size >>= 1
        }
        stack.append(hash)
        peaks = MerkleCompactRange(size: peaks.size + 1, hashes: stack)!
    }

    // MARK: Queries

    /// The tree head of the first `size` events (RFC 9162 MTH).
    public func root<Store: EventStore>(size: UInt64, store: Store) async throws -> MerkleHash {
        guard size > 0 else { return .emptyTree }
        return try await withSubtrees(size: size, store: store) { try MerkleProof.rangeRoot(0, size, $0) }
    }

    /// The audit path of leaf `index` (position − 1) in the tree of the first `size` events.
    public func inclusionProof<Store: EventStore>(index: UInt64, size: UInt64, store: Store) async throws -> [MerkleHash] {
        guard index < size else { throw EventLogError(.invalidInput, "leaf \(index) is not in a tree of \(size) events") }
        return try await withSubtrees(size: size, store: store) { try MerkleProof.inclusion(index: index, size: size, $0) }
    }

    /// The consistency proof from the tree of `from` events to the tree of `to` events.
    public func consistencyProof<Store: EventStore>(from: UInt64, to: UInt64, store: Store) async throws -> [MerkleHash] {
        guard from > 0, from <= to else { throw EventLogError(.invalidInput, "a consistency proof needs 0 < from ≤ to (from \(from), to \(to))") }
        return try await withSubtrees(size: to, store: store) { try MerkleProof.consistency(from: from, to: to, $0) }
    }

    /// Runs `body` with stored and recomputed subtrees; damage found on the way (a node that
    /// fails its checksum, a chunk whose events hash to another node) is cut and rebuilt from
    /// the events, and the query asked again.
    private func withSubtrees<Store: EventStore, Result>(
        size: UInt64, store: Store, _ body: (MerkleProof.PerfectSubtree) throws -> Result
    ) async throws -> Result {
        try await exclusively {
            var attempt = 0
            while true {
                do {
                    try await catchingUp(store, head: size)
                    return try await answer(size: size, store: store, body)
                } catch let damage as MerkleNodeDamage where attempt < 3 {
                    attempt += 1
                    try await cut(at: damage)
                }
            }
        }
    }

    /// Runs `body` twice: once to learn which subtrees it needs (stored nodes and chunks whose
    /// leaves must be recomputed), then, with those fetched in one storage read and one log read
    /// per chunk, for real. `body` must ask for the same subtrees whatever hashes it gets, as
    /// RFC 9162's algorithms do. Each chunk whose leaves are read is checked against its stored
    /// node (when it has one), so a stale index cannot pass a recomputed leaf.
    private func answer<Store: EventStore, Result>(
        size: UInt64, store: Store, _ body: (MerkleProof.PerfectSubtree) throws -> Result
    ) async throws -> Result {
        let level = Self.chunkLevel
        var nodeIndices: Set<UInt64> = []
        var leafChunks: Set<UInt64> = []
        _ = try body { l, index in
            if l >= level { nodeIndices.insert(Self.nodeIndex(level: l - level, index: index)) } else { leafChunks.insert((index << l) >> level) }
            return .emptyTree
        }
        for chunk in leafChunks where chunk < chunks { nodeIndices.insert(Self.nodeIndex(level: 0, index: chunk)) }
        let ordered = Array(nodeIndices)
        let hashes = try await storage.read(ordered)
        let nodes = Dictionary(uniqueKeysWithValues: zip(ordered, hashes))
        var leaves: [UInt64: [MerkleHash]] = [:]
        for chunk in leafChunks {
            let chunkLeaves = try await chunkLeaves(chunk, limit: size, store: store)
            let node = Self.nodeIndex(level: 0, index: chunk)
            if chunk < chunks, chunkLeaves.count == Int(Self.chunkSize), nodes[node] != Self.fold(chunkLeaves[...]) {
                leafCache.removeAll()
                throw MerkleNodeDamage(node: node, reason: "the events of chunk \(chunk) hash to another node than the one stored")
            }
            leaves[chunk] = chunkLeaves
        }
        return try body { l, index in
            if l >= level {
                guard let hash = nodes[Self.nodeIndex(level: l - level, index: index)] else {
                    throw EventLogError(.corrupted, "tree node (\(l), \(index)) was not fetched")
                }
                return hash
            }
            let chunk = (index << l) >> level
            let start = Int((index << l) - chunk << level)
            guard let chunkLeaves = leaves[chunk], start + (1 << l) <= chunkLeaves.count else {
                throw EventLogError(.corrupted, "the log holds too few events for the tree of \(size)")
            }
            return Self.fold(chunkLeaves[start..<start + (1 << l)])
        }
    }

    /// The root of a power-of-two run of leaves.
    static func fold(_ leaves: ArraySlice<MerkleHash>) -> MerkleHash {
        var layer = Array(leaves)
        while layer.count > 1 {
            layer = stride(from: 0, to: layer.count, by: 2).map { MerkleHash.node(layer[$0], layer[$0 + 1]) }
        }
        return layer[0]
    }

    /// The leaf hashes of one chunk's events, up to position `limit`, read from the log.
    public func chunkLeaves<Store: EventStore>(_ chunk: UInt64, limit: UInt64, store: Store) async throws -> [MerkleHash] {
        let first = chunk << Self.chunkLevel + 1
        let last = min((chunk + 1) << Self.chunkLevel, limit)
        if let hit = leafCache.first(where: { $0.chunk == chunk && $0.leaves.count >= Int(last + 1 - first) }) {
            return Array(hit.leaves.prefix(Int(last + 1 - first)))
        }
        var leaves: [MerkleHash] = []
        var scratch: [UInt8] = []
        reading: for try await batch in store.read(from: first).batches {
            for event in batch where event.position >= first {
                guard event.position == first + UInt64(leaves.count) else {
                    throw EventLogError(.corrupted, "the log returned position \(event.position) where \(first + UInt64(leaves.count)) was due")
                }
                leaves.append(CanonicalEvent.leafHash(of: event, scratch: &scratch))
                if event.position == last { break reading }
            }
        }
        guard leaves.count == Int(last + 1 - first) else {
            throw EventLogError(.invalidInput, "the log ends at position \(first + UInt64(leaves.count) - 1), before \(last)")
        }
        leafCache.removeAll { $0.chunk == chunk }
        leafCache.append((chunk, leaves))
        if leafCache.count > 4 { leafCache.removeFirst() }
        return leaves
    }
}
