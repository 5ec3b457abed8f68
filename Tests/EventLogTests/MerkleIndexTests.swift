import TallyTestSupport
import Testing
@testable import EventLog

/// The stored tree: roots, inclusion and consistency proofs from `MerkleTreeIndex` equal the
/// tree folded from every event read back, on both backends; the same events appended in other
/// batches (as an import cuts them) or onto PostgreSQL give the same heads; a reopened index
/// answers from what it stored.
@Suite(.timeLimit(.minutes(5))) struct MerkleIndexTests {
    /// Appends `count` events in appends of varying sizes (cut by `seed`), with fixed times,
    /// so that any log given the same count gets the same events whatever the cut.
    static func fill(_ store: any EventStore, count: Int, seed: UInt64) async throws {
        var rng = SplitMix64(seed: seed)
        var written = 0
        while written < count {
            // At most 7 events, so that their streams (m-0…m-6 in turn) are distinct in one append.
            let n = min(count - written, Int(rng.next() % 7) + 1)
            var appends: [StreamAppend] = []
            for i in written..<(written + n) {
                appends.append(StreamAppend(stream: "m-\(i % 7)", events: [event(
                    "Probe", payload: noiseBytes(count: 10 + i % 50, seed: UInt64(i)), recordedAt: Int64(1_000 + i),
                    actor: "actor-\(i % 3)", correlation: "c\(i / 10)"
                )]))
            }
            _ = try await store.append(appends, idempotencyKey: nil)
            written += n
        }
    }

    static func prefixRoots(_ store: any EventStore) async throws -> [MerkleHash] {
        var range = MerkleCompactRange()
        var roots: [MerkleHash] = [.emptyTree]
        for event in try await store.readAll() {
            range.append(CanonicalEvent.leafHash(of: event))
            roots.append(range.root)
        }
        return roots
    }

    @Test(arguments: Backend.allCases) func indexAnswersEqualTheFoldedTree(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            try await Self.fill(store, count: 1_700, seed: 1)
            let roots = try await Self.prefixRoots(store)
            let leaves = try await store.readAll().map { CanonicalEvent.leafHash(of: $0) }
            let index = try await MerkleTreeIndex.open(for: store)
            let size = UInt64(leaves.count)
            var rng = SplitMix64(seed: 2)
            for n in [1, 2, 255, 256, 257, 511, 512, 513, 1024, 1025, 1699, 1700] + (0..<10).map({ _ in Int(rng.next() % 1700) + 1 }) {
                #expect(try await index.root(size: UInt64(n), store: store) == roots[n], "root of \(n)")
            }
            #expect(await index.chunks == 1700 / 256)
            for _ in 0..<60 {
                let n = rng.next() % size + 1
                let m = rng.next() % n
                let path = try await index.inclusionProof(index: m, size: n, store: store)
                #expect(MerkleProof.verifyInclusion(index: m, size: n, leaf: leaves[Int(m)], path: path, root: roots[Int(n)]), "inclusion \(m) in \(n)")
                let from = rng.next() % n + 1
                let proof = try await index.consistencyProof(from: from, to: n, store: store)
                #expect(MerkleProof.verifyConsistency(from: from, to: n, fromRoot: roots[Int(from)], toRoot: roots[Int(n)], proof: proof), "consistency \(from) → \(n)")
            }
            // A second index over the same storage reads the chunks stored by the first.
            let reopened = try await MerkleTreeIndex.open(for: store)
            #expect(await reopened.chunks == 1700 / 256)
            #expect(try await reopened.root(size: size, store: store) == roots.last)
            // More events: the index catches up from where it stopped.
            try await Self.fill(store, count: 600, seed: 3)
            let grown = try await Self.prefixRoots(store)
            #expect(try await reopened.root(size: UInt64(grown.count - 1), store: store) == grown.last)
            #expect(try await reopened.root(size: 1700, store: store) == roots[1700])
        }
    }

    @Test func sameEventsGiveTheSameHeadOnBothBackendsAndAnyBatching() async throws {
        let file = try await withStore(.file) { store -> MerkleHash in
            try await Self.fill(store, count: 1_300, seed: 10)
            return try await MerkleTreeIndex.open(for: store).root(size: 1_300, store: store)
        }
        let recut = try await withStore(.file) { store -> MerkleHash in
            try await Self.fill(store, count: 1_300, seed: 11)
            return try await MerkleTreeIndex.open(for: store).root(size: 1_300, store: store)
        }
        let postgres = try await withStore(.postgres) { store -> MerkleHash in
            try await Self.fill(store, count: 1_300, seed: 12)
            return try await MerkleTreeIndex.open(for: store).root(size: 1_300, store: store)
        }
        #expect(file == recut)
        #expect(file == postgres)
    }

    @Test func damagedTreeFileIsRebuiltFromTheEvents() async throws {
        try await withTemporaryDirectory { dir in
            let log = try FileLog(directory: dir.path, options: .init(fsync: .never))
            try await Self.fill(log, count: 1_024, seed: 20)
            let roots = try await Self.prefixRoots(log)
            let leaves = try await log.readAll().map { CanonicalEvent.leafHash(of: $0) }
            _ = try await MerkleTreeIndex.open(for: log).root(size: 1_024, store: log)
            let path = dir.path + "/" + MerkleTreeIndex.fileName
            // A torn trailing record is cut on open.
            let file = try SystemFile.open(path, writable: true)
            let size = try file.size()
            try [UInt8](repeating: 7, count: 20).withUnsafeBytes { try file.write([$0], at: size) }
            let again = try await MerkleTreeIndex.open(for: log)
            #expect(await again.chunks == 4)
            #expect(try await again.root(size: 1_024, store: log) == roots[1_024])
            // A flipped byte inside a stored record fails its checksum: that node and every one
            // after it are rebuilt from the events, and the answer is right.
            try [UInt8](repeating: 0xFF, count: 1).withUnsafeBytes { try file.write([$0], at: FileMerkleNodes.headerSize + 3) }
            let damaged = try await MerkleTreeIndex.open(for: log)
            let path300 = try await damaged.inclusionProof(index: 300, size: 1_024, store: log)
            #expect(MerkleProof.verifyInclusion(index: 300, size: 1_024, leaf: leaves[300], path: path300, root: roots[1_024]))
            #expect(await !damaged.repairs.isEmpty)
            #expect(await damaged.chunks == 4)
            // A header of another version (or garbage) starts the file again.
            try [UInt8](repeating: 0, count: 8).withUnsafeBytes { try file.write([$0], at: 0) }
            let restarted = try await MerkleTreeIndex.open(for: log)
            #expect(try await restarted.root(size: 1_000, store: log) == roots[1_000])
            try await log.close()
        }
    }

    /// A node overwritten with a wrong hash under a valid checksum (or an index left from
    /// other events) is never trusted: proofs over a chunk whose leaves are read check it, and
    /// `audit` compares every node with the events and rewrites from the first that differs.
    @Test func staleOrRewrittenNodesAreFoundAndRebuilt() async throws {
        try await withStore(.file) { a in
            try await withStore(.file) { b in
                try await Self.fill(a, count: 2_048, seed: 30)
                try await Self.fill(b, count: 1_300, seed: 31)
                // b holds a's first 1,300 events (the seed cuts only the appends), then others.
                try await Self.fill(b, count: 10, seed: 32)
                let rootsB = try await Self.prefixRoots(b)
                let leavesB = try await b.readAll().map { CanonicalEvent.leafHash(of: $0) }
                let storage = MemoryMerkleNodes()
                let built = try await MerkleTreeIndex(storage: storage)
                try await built.catchUp(a, head: 2_048)
                #expect(storage.count() == MerkleTreeIndex.nodeCount(chunks: 8))
                // Given b, whose head is 1,310: cut to 5 chunks, then the last one is checked.
                let index = try await MerkleTreeIndex(storage: storage)
                try await index.reconcile(b, head: 1_310)
                #expect(await index.chunks == 5)
                #expect(try await index.root(size: 1_310, store: b) == rootsB[1_310])
                #expect(try await index.root(size: 300, store: b) == rootsB[300])
                #expect(await index.repairs.count >= 1)

                // A rewritten high node (valid in storage, wrong in value): audit finds it.
                let top = MerkleTreeIndex.nodeIndex(level: 2, index: 0)  // chunks 0…3
                storage.overwrite(top, with: MerkleHash.leaf([1, 2, 3]))
                let audited = try await MerkleTreeIndex(storage: storage)
                #expect(try await audited.audit(b, head: 1_310) == rootsB[1_310])
                #expect(await audited.repairs.contains { $0.contains("differ from the events") })
                for m in [0, 255, 256, 700, 1_023, 1_024, 1_309] as [UInt64] {
                    let path = try await audited.inclusionProof(index: m, size: 1_310, store: b)
                    #expect(MerkleProof.verifyInclusion(index: m, size: 1_310, leaf: leavesB[Int(m)], path: path, root: rootsB[1_310]))
                }
                // A chunk node overwritten: a proof whose leaves come from that chunk notices.
                storage.overwrite(MerkleTreeIndex.nodeIndex(level: 0, index: 1), with: MerkleHash.leaf([9]))
                let path = try await audited.inclusionProof(index: 300, size: 1_310, store: b)
                #expect(MerkleProof.verifyInclusion(index: 300, size: 1_310, leaf: leavesB[300], path: path, root: rootsB[1_310]))
                #expect(await audited.repairs.contains { $0.contains("chunk 1 hash to another node") })
            }
        }
    }

    /// Random log sizes: every root of a sample and inclusion proofs equal the folded tree.
    @Test func randomLogsAnswerLikeTheFoldedTree() async throws {
        var rng = SplitMix64(seed: 99)
        for round in 0..<3 {
            let count = Int(rng.next() % 3_000) + 1
            try await withStore(.file, "random-\(round)") { store in
                try await Self.fill(store, count: count, seed: 100 + UInt64(round))
                let roots = try await Self.prefixRoots(store)
                let leaves = try await store.readAll().map { CanonicalEvent.leafHash(of: $0) }
                let index = try await MerkleTreeIndex.open(for: store)
                for _ in 0..<40 {
                    let n = rng.next() % UInt64(count) + 1
                    #expect(try await index.root(size: n, store: store) == roots[Int(n)], "root of \(n) in a log of \(count)")
                    let m = rng.next() % n
                    let path = try await index.inclusionProof(index: m, size: n, store: store)
                    #expect(MerkleProof.verifyInclusion(index: m, size: n, leaf: leaves[Int(m)], path: path, root: roots[Int(n)]))
                }
                #expect(try await index.audit(store, head: UInt64(count)) == roots[count])
                #expect(await index.repairs.isEmpty)
            }
        }
    }

    /// Catch-ups, proofs and an audit asked at once (the server's follower and its proof
    /// requests share one index): each chunk is stored once, in order, whatever interleaves.
    @Test func concurrentCatchUpsStoreEachChunkOnce() async throws {
        try await withStore(.file) { store in
            try await Self.fill(store, count: 40 * 256 + 17, seed: 41)
            let roots = try await Self.prefixRoots(store)
            let storage = MemoryMerkleNodes()
            let index = try await MerkleTreeIndex(storage: storage)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0..<6 {
                    group.addTask { try await index.catchUp(store, head: UInt64(20 * 256 + i * 700)) }
                    group.addTask {
                        let size = UInt64(256 * (10 + i * 5) + i)
                        let root = try await index.root(size: size, store: store)
                        #expect(root == roots[Int(size)])
                    }
                }
                group.addTask {
                    let root = try await index.audit(store, head: UInt64(40 * 256 + 17))
                    #expect(root == roots[40 * 256 + 17])
                }
                try await group.waitForAll()
            }
            #expect(storage.count() == MerkleTreeIndex.nodeCount(chunks: 40))
            #expect(await index.chunks == 40)
            let fresh = try await MerkleTreeIndex(storage: storage)
            #expect(try await fresh.audit(store, head: UInt64(40 * 256 + 17)) == roots[40 * 256 + 17])
            let repairs = await fresh.repairs
            #expect(repairs.isEmpty, "\(repairs)")
        }
    }

    /// Chunk roots hashed by several lanes, each reading its own stretch, are the roots one
    /// reader folds; a build long enough to take two lanes stores the same tree.
    @Test func chunkRootsFromSeveralLanesEqualOneReadersFold() async throws {
        try await withStore(.file) { store in
            let count = 130 * 256 + 77
            try await Self.fill(store, count: count, seed: 51)
            let leaves = try await store.readAll().map { CanonicalEvent.leafHash(of: $0) }
            let folded = (0..<130).map { MerkleTreeIndex.fold(leaves[$0 * 256..<($0 + 1) * 256]) }
            for lanes in [1, 2, 3] {
                #expect(try await MerkleTreeIndex.hashChunks(0..<130, lanes: lanes, store: store) == folded, "\(lanes) lanes")
                #expect(try await MerkleTreeIndex.hashChunks(7..<12, lanes: lanes, store: store) == Array(folded[7..<12]), "\(lanes) lanes")
            }
            var whole = MerkleCompactRange()
            for leaf in leaves { whole.append(leaf) }
            let storage = MemoryMerkleNodes()
            let index = try await MerkleTreeIndex(storage: storage)
            #expect(try await index.audit(store, head: UInt64(count)) == whole.root)
            #expect(storage.count() == MerkleTreeIndex.nodeCount(chunks: 130))
            let oneLane = MemoryMerkleNodes()
            for chunks in stride(from: 10, through: 130, by: 10) as StrideThrough<UInt64> {
                // The storage one reader's catch-ups leave, ten chunks at a time.
                try await MerkleTreeIndex(storage: oneLane).catchUp(store, head: chunks * 256)
            }
            #expect(try oneLane.read(Array(0..<oneLane.count())) == storage.read(Array(0..<storage.count())))
            // A log shorter than asked is an error, not a short answer.
            await #expect(throws: EventLogError.self) { try await MerkleTreeIndex.hashChunks(128..<131, lanes: 2, store: store) }
        }
    }

    @Test func nodeCountArithmetic() {
        for c in 0..<2_000 as Range<UInt64> {
            let n = MerkleTreeIndex.nodeCount(chunks: c)
            #expect(MerkleTreeIndex.chunks(forNodeCount: n) == c)
            #expect(MerkleTreeIndex.chunks(fittingIn: n) == c)
            if c > 0 { #expect(MerkleTreeIndex.chunks(fittingIn: n - 1) == c - 1) }
        }
    }
}
