import Crypto
import Foundation
import Testing
@testable import EventLog

/// RFC 9162 §2.1 Merkle trees: the compact range, proof generation and the RFC's verification
/// algorithms, against a reference written here straight from the RFC's recursive
/// definitions (MTH, PATH, PROOF over an array of leaves, with its own SHA-256 calls and no use
/// of the code under test), against published vectors, and against tampering.
@Suite(.timeLimit(.minutes(5))) struct MerkleTreeTests {
    // MARK: Reference (RFC 9162 §2.1.1, §2.1.3.1, §2.1.4.1), independent of the code under test

    enum Reference {
        static func sha(_ bytes: [UInt8]) -> [UInt8] { Array(SHA256.hash(data: bytes)) }
        static func leaf(_ data: [UInt8]) -> [UInt8] { sha([0] + data) }
        static func node(_ l: [UInt8], _ r: [UInt8]) -> [UInt8] { sha([1] + l + r) }
        static func k(_ n: Int) -> Int {
            var k = 1
            while k << 1 < n { k <<= 1 }
            return k
        }
        /// MTH(D[n]) over leaf hashes.
        static func mth(_ d: ArraySlice<[UInt8]>) -> [UInt8] {
            if d.isEmpty { return sha([]) }
            if d.count == 1 { return d.first! }
            let k = k(d.count)
            return node(mth(d.prefix(k)), mth(d.dropFirst(k)))
        }
        /// PATH(m, D[n]).
        static func path(_ m: Int, _ d: ArraySlice<[UInt8]>) -> [[UInt8]] {
            if d.count <= 1 { return [] }
            let k = k(d.count)
            if m < k { return path(m, d.prefix(k)) + [mth(d.dropFirst(k))] }
            return path(m - k, d.dropFirst(k)) + [mth(d.prefix(k))]
        }
        /// SUBPROOF(m, D[n], b).
        static func subproof(_ m: Int, _ d: ArraySlice<[UInt8]>, _ b: Bool) -> [[UInt8]] {
            if m == d.count { return b ? [] : [mth(d)] }
            let k = k(d.count)
            if m <= k { return subproof(m, d.prefix(k), b) + [mth(d.dropFirst(k))] }
            return subproof(m - k, d.dropFirst(k), false) + [mth(d.prefix(k))]
        }
        /// Verifies an inclusion path by rebuilding the root along PATH's own recursion:
        /// a different algorithm from §2.1.3.2's bit walk, so the two check each other.
        static func rootFromPath(_ m: Int, _ n: Int, _ leaf: [UInt8], _ path: inout [[UInt8]]) -> [UInt8]? {
            if n == 1 { return leaf }
            let k = k(n)
            if m < k {
                guard let left = rootFromPath(m, k, leaf, &path), !path.isEmpty else { return nil }
                return node(left, path.removeFirst())
            }
            guard let right = rootFromPath(m - k, n - k, leaf, &path), !path.isEmpty else { return nil }
            return node(path.removeFirst(), right)
        }
        static func verifyInclusion(_ m: Int, _ n: Int, _ leaf: [UInt8], _ proof: [[UInt8]], _ root: [UInt8]) -> Bool {
            // PATH lists hashes bottom up; the recursion above consumes them bottom up too.
            var path = proof
            guard let r = rootFromPath(m, n, leaf, &path) else { return false }
            return path.isEmpty && r == root
        }
    }

    static func hashes(_ leaves: [[UInt8]]) -> [MerkleHash] { leaves.map { MerkleHash(bytes: $0)! } }

    /// The tree under test, over given leaf hashes, answering perfect subtrees by folding leaves.
    struct Tree {
        /// levels[l][i]: the root of leaves i·2^l ..< (i+1)·2^l, folded once from the leaves.
        var levels: [[MerkleHash]]
        init(leaves: [MerkleHash]) {
            levels = [leaves]
            while levels.last!.count > 1 {
                let below = levels.last!
                levels.append(stride(from: 0, to: below.count - 1, by: 2).map { MerkleHash.node(below[$0], below[$0 + 1]) })
            }
        }
        func perfect(_ level: Int, _ index: UInt64) -> MerkleHash { levels[level][Int(index)] }
    }

    // MARK: Published vectors

    // transparency-dev/merkle v0.0.2 (Apache-2.0), testonly/constants.go: LeafInputs,
    // RootHashes; proof/verify_test.go: inclusionProofs; found with the search tool in a
    // vendored copy of those files. The same roots are RFC 6962's CT test data.
    static let vectorLeaves = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
    static let vectorRoots = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
    /// (leaf index 0-based, tree size, path) from proof/verify_test.go.
    static let vectorPaths: [(UInt64, UInt64, [String])] = [
        (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
        (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
        (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
        (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    ]
    /// (from, to, proof), CT's consistency vectors as in transparency-dev/merkle's tests.
    static let vectorConsistency: [(UInt64, UInt64, [String])] = [
        (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
        (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    ]
    /// compact/range_test.go TestGetRootHashGolden: leaf i's data is its index as u16
    /// little-endian; roots in base64.
    static let goldenRoots: [(Int, String)] = [
        (10, "VjWMPSYNtCuCNlF/RLnQy6HcwSk6CIipfxm+hettA+4="),
        (15, "j4SulYmocFuxdeyp12xXCIgK6PekBcxzAIj4zbQzNEI="),
        (16, "c+4Uc6BCMOZf/v3NZK1kqTUJe+bBoFtOhP+P3SayKRE="),
        (100, "dUh9hYH88p0CMoHkdr1wC2szbhcLAXOejWpINIooKUY="),
    ]

    static func unhex(_ s: String) -> [UInt8] {
        stride(from: 0, to: s.count, by: 2).map { i in
            let a = s.index(s.startIndex, offsetBy: i)
            return UInt8(s[a...s.index(after: a)], radix: 16)!
        }
    }

    @Test func publishedVectors() throws {
        #expect(MerkleHash.emptyTree.hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(MerkleHash.leaf(Array("L123456".utf8)).hex == "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56")
        let leaves = Self.vectorLeaves.map { MerkleHash.leaf(Self.unhex($0)) }
        var range = MerkleCompactRange()
        for (i, leaf) in leaves.enumerated() {
            range.append(leaf)
            #expect(range.root.hex == Self.vectorRoots[i], "root of \(i + 1) leaves")
        }
        let tree = Tree(leaves: leaves)
        for (index, size, expected) in Self.vectorPaths {
            let path = try MerkleProof.inclusion(index: index, size: size, tree.perfect)
            #expect(path.map(\.hex) == expected, "path of \(index) in \(size)")
            let root = MerkleHash(hex: Self.vectorRoots[Int(size) - 1])!
            #expect(MerkleProof.verifyInclusion(index: index, size: size, leaf: leaves[Int(index)], path: path, root: root))
        }
        for (from, to, expected) in Self.vectorConsistency {
            let proof = try MerkleProof.consistency(from: from, to: to, tree.perfect)
            #expect(proof.map(\.hex) == expected, "consistency \(from) → \(to)")
            #expect(MerkleProof.verifyConsistency(
                from: from, to: to, fromRoot: MerkleHash(hex: Self.vectorRoots[Int(from) - 1])!,
                toRoot: MerkleHash(hex: Self.vectorRoots[Int(to) - 1])!, proof: proof))
        }
        for (size, base64) in Self.goldenRoots {
            var golden = MerkleCompactRange()
            for i in 0..<size { golden.append(MerkleHash.leaf([UInt8(i & 0xFF), UInt8(i >> 8)])) }
            #expect(golden.root.bytes == Array(Data(base64Encoded: base64)!), "golden root of \(size)")
        }
    }

    // MARK: Random trees against the reference

    @Test func everyInclusionAndSampledConsistencyMatchTheReference() throws {
        var rng = SplitMix64(seed: 9162)
        var sizes = Array(1...64) + [127, 128, 129, 255, 256, 257, 1000, 1023, 1024, 1025]
        for _ in 0..<6 { sizes.append(Int(rng.next() % 10_000) + 1) }
        sizes.append(10_000)
        for size in sizes {
            let data = (0..<size).map { i in (0..<Int(rng.next() % 40)).map { _ in UInt8(truncatingIfNeeded: rng.next()) } + [UInt8(i & 0xFF)] }
            let refLeaves = data.map(Reference.leaf)
            let leaves = Self.hashes(refLeaves)
            var range = MerkleCompactRange()
            for leaf in leaves { range.append(leaf) }
            let refRoot = Reference.mth(refLeaves[...])
            #expect(range.root.bytes == refRoot, "root of \(size)")
            #expect(range.hashes.count == size.nonzeroBitCount)
            let tree = Tree(leaves: leaves)
            // Every inclusion proof for small trees; for large ones a sample, each still checked
            // by both verifiers (the reference's PATH over 10,000 leaves costs O(n) per proof).
            let indices: [Int] = size <= 1025 ? Array(0..<size) : (0..<200).map { _ in Int(rng.next() % UInt64(size)) } + [0, size - 1]
            for m in indices {
                let path = try MerkleProof.inclusion(index: UInt64(m), size: UInt64(size), tree.perfect)
                if size <= 300 || m % 7 == 0 {
                    #expect(path.map(\.bytes) == Reference.path(m, refLeaves[...]), "path \(m) of \(size)")
                }
                #expect(Reference.verifyInclusion(m, size, refLeaves[m], path.map(\.bytes), refRoot), "reference verifies \(m) of \(size)")
                #expect(MerkleProof.verifyInclusion(index: UInt64(m), size: UInt64(size), leaf: leaves[m], path: path, root: range.root))
            }
            for _ in 0..<(size <= 64 ? size : 20) {
                let from = Int(rng.next() % UInt64(size)) + 1
                let proof = try MerkleProof.consistency(from: UInt64(from), to: UInt64(size), tree.perfect)
                #expect(proof.map(\.bytes) == (from == size ? [] : Reference.subproof(from, refLeaves[...], true)), "consistency \(from) → \(size)")
                let fromRoot = MerkleHash(bytes: Reference.mth(refLeaves.prefix(from)))!
                #expect(MerkleProof.verifyConsistency(from: UInt64(from), to: UInt64(size), fromRoot: fromRoot, toRoot: range.root, proof: proof))
            }
        }
    }

    // MARK: Tampering

    @Test func tamperedProofsAreRefused() throws {
        var rng = SplitMix64(seed: 6962)
        for size in [2, 3, 5, 8, 13, 100, 1000] {
            let leaves = (0..<size).map { MerkleHash.leaf([UInt8($0 & 0xFF), UInt8($0 >> 8)]) }
            var range = MerkleCompactRange()
            for leaf in leaves { range.append(leaf) }
            let root = range.root
            let tree = Tree(leaves: leaves)
            let some = MerkleHash.leaf(Array("some".utf8))
            for _ in 0..<20 {
                let m = Int(rng.next() % UInt64(size))
                let n = UInt64(size)
                let path = try MerkleProof.inclusion(index: UInt64(m), size: n, tree.perfect)
                #expect(MerkleProof.verifyInclusion(index: UInt64(m), size: n, leaf: leaves[m], path: path, root: root))
                var probes: [(UInt64, UInt64, MerkleHash, [MerkleHash], MerkleHash)] = [
                    (UInt64(m) &+ 1, n, leaves[m], path, root), (UInt64(m) ^ 2, n, leaves[m], path, root),
                    (UInt64(m), n * 2, leaves[m], path, root), (UInt64(m), n / 2, leaves[m], path, root),
                    (UInt64(m), n, some, path, root), (UInt64(m), n, leaves[m], path, .emptyTree),
                    (UInt64(m), n, leaves[m], path + [root], root), (UInt64(m), n, leaves[m], [root] + path, root),
                ]
                if m > 0 { probes.append((UInt64(m) - 1, n, leaves[m], path, root)) }
                if !path.isEmpty { probes.append((UInt64(m), n, leaves[m], Array(path.dropLast()), root)) }
                for i in path.indices {
                    var wrong = path
                    var bytes = wrong[i].bytes
                    bytes[Int(rng.next() % 32)] ^= 8
                    wrong[i] = MerkleHash(bytes: bytes)!
                    probes.append((UInt64(m), n, leaves[m], wrong, root))
                }
                for (index, probeSize, leaf, probePath, probeRoot) in probes {
                    #expect(!MerkleProof.verifyInclusion(index: index, size: probeSize, leaf: leaf, path: probePath, root: probeRoot),
                            "tampered inclusion \(index)/\(probeSize) accepted")
                }
                let from = UInt64(rng.next() % UInt64(size - 1)) + 1
                let proof = try MerkleProof.consistency(from: from, to: n, tree.perfect)
                var fromRange = MerkleCompactRange()
                for leaf in leaves.prefix(Int(from)) { fromRange.append(leaf) }
                let fromRoot = fromRange.root
                #expect(MerkleProof.verifyConsistency(from: from, to: n, fromRoot: fromRoot, toRoot: root, proof: proof))
                var bad: [(UInt64, UInt64, MerkleHash, MerkleHash, [MerkleHash])] = [
                    (from, n, some, root, proof), (from, n, fromRoot, some, proof), (from, n * 2, fromRoot, root, proof),
                    (from, n, fromRoot, root, Array(proof.dropLast())), (from, n, fromRoot, root, proof + [some]), (from, n, fromRoot, root, []),
                    (0, n, fromRoot, root, proof), (n + 1, n, fromRoot, root, proof),
                ]
                if from > 1 { bad.append((from - 1, n, fromRoot, root, proof)) }
                for i in proof.indices {
                    var wrong = proof
                    var bytes = wrong[i].bytes
                    bytes[Int(rng.next() % 32)] ^= 1
                    wrong[i] = MerkleHash(bytes: bytes)!
                    bad.append((from, n, fromRoot, root, wrong))
                }
                for (f, t, fr, tr, p) in bad {
                    #expect(!MerkleProof.verifyConsistency(from: f, to: t, fromRoot: fr, toRoot: tr, proof: p), "tampered consistency \(f) → \(t) accepted")
                }
            }
        }
    }

    @Test func canonicalBytesIgnoreBatchingAndChangeWithEveryField() {
        let base = RecordedEvent(
            position: 7, stream: "user-1", streamVersion: 2, type: "CreditsGranted", schemaVersion: 1, recordedAt: 1_700_000_000_000_000,
            actor: "a", correlationID: "c", causationID: "k", idempotencyKey: nil, payload: [1, 2, 3]
        )
        let bytes = CanonicalEvent.bytes(of: base)
        #expect(bytes.count == 1 + 8 + 8 + 2 + 8 + 7 * 4 + 6 + 14 + 1 + 1 + 1 + 0 + 3)
        #expect(bytes.first == 1)
        #expect(CanonicalEvent.leafHash(of: base) == MerkleHash.leaf(bytes))
        let variants = [
            RecordedEvent(position: 8, stream: "user-1", streamVersion: 2, type: "CreditsGranted", schemaVersion: 1, recordedAt: 1_700_000_000_000_000, actor: "a", correlationID: "c", causationID: "k", idempotencyKey: nil, payload: [1, 2, 3]),
            RecordedEvent(position: 7, stream: "user-2", streamVersion: 2, type: "CreditsGranted", schemaVersion: 1, recordedAt: 1_700_000_000_000_000, actor: "a", correlationID: "c", causationID: "k", idempotencyKey: nil, payload: [1, 2, 3]),
            RecordedEvent(position: 7, stream: "user-1", streamVersion: 2, type: "CreditsGranted", schemaVersion: 1, recordedAt: 1_700_000_000_000_001, actor: "a", correlationID: "c", causationID: "k", idempotencyKey: nil, payload: [1, 2, 3]),
            RecordedEvent(position: 7, stream: "user-1", streamVersion: 2, type: "CreditsGranted", schemaVersion: 1, recordedAt: 1_700_000_000_000_000, actor: "", correlationID: "ac", causationID: "k", idempotencyKey: nil, payload: [1, 2, 3]),
            RecordedEvent(position: 7, stream: "user-1", streamVersion: 2, type: "CreditsGranted", schemaVersion: 1, recordedAt: 1_700_000_000_000_000, actor: "a", correlationID: "c", causationID: "k", idempotencyKey: "x", payload: [1, 2, 3]),
            RecordedEvent(position: 7, stream: "user-1", streamVersion: 2, type: "CreditsGranted", schemaVersion: 1, recordedAt: 1_700_000_000_000_000, actor: "a", correlationID: "c", causationID: "k", idempotencyKey: nil, payload: [1, 2, 4]),
        ]
        for variant in variants { #expect(CanonicalEvent.leafHash(of: variant) != CanonicalEvent.leafHash(of: base)) }
    }

    /// The leaf hash laid out in place equals the hash of `bytes(of:)`, on random events of
    /// every field length (empty ones too), with one scratch buffer reused across sizes.
    @Test func leafHashesLaidOutInPlaceEqualTheCanonicalBytesHash() {
        var rng = SplitMix64(seed: 9162)
        func text(_ maximum: Int) -> String {
            String((0..<Int(rng.next() % UInt64(maximum + 1))).map { _ in Character(Unicode.Scalar(UInt8(97 + rng.next() % 26))) })
        }
        var scratch: [UInt8] = []
        for _ in 0..<300 {
            let payload = (0..<Int(rng.next() % 2_000)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let event = RecordedEvent(
                position: rng.next(), stream: text(40), streamVersion: rng.next(), type: text(30),
                schemaVersion: UInt16(truncatingIfNeeded: rng.next()), recordedAt: Int64(bitPattern: rng.next()),
                actor: text(20), correlationID: text(36), causationID: text(36), idempotencyKey: rng.next() % 2 == 0 ? nil : text(60),
                payload: payload
            )
            #expect(CanonicalEvent.leafHash(of: event, scratch: &scratch) == MerkleHash.leaf(CanonicalEvent.bytes(of: event)))
        }
    }
}
