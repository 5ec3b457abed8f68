/// RFC 9162 §2.1.3 and §2.1.4: inclusion and consistency proofs, generated from a source of
/// perfect-subtree hashes and verified with the RFC's algorithms.
///
/// Every hash a proof needs is the root of a range `[start, end)` in which every left part is
/// a perfect, aligned subtree; so a store only has to answer `perfect(level, index)`, the root
/// of leaves `index·2^level ..< (index+1)·2^level`, and everything else is folded here.
public enum MerkleProof {
    /// The root of a perfect aligned subtree: leaves `index << level ..< (index + 1) << level`.
    public typealias PerfectSubtree = (_ level: Int, _ index: UInt64) throws -> MerkleHash

    /// MTH(D[start:end]) for a range whose start is aligned to its largest power-of-two part,
    /// as every range in RFC 9162's recursion is.
    public static func rangeRoot(_ start: UInt64, _ end: UInt64, _ perfect: PerfectSubtree) throws -> MerkleHash {
        precondition(start < end)
        var parts: [MerkleHash] = []
        var at = start
        while at < end {
            var level = 63 - (end - at).leadingZeroBitCount
            while level > 0 && at & ((UInt64(1) << level) - 1) != 0 { level -= 1 }
            parts.append(try perfect(level, at >> level))
            at += UInt64(1) << level
        }
        var root = parts.removeLast()
        for part in parts.reversed() { root = MerkleHash.node(part, root) }
        return root
    }

    /// The largest power of two strictly below `n` (n ≥ 2).
    static func split(_ n: UInt64) -> UInt64 { UInt64(1) << (63 - (n - 1).leadingZeroBitCount) }

    /// RFC 9162 §2.1.3.1 PATH(m, D[n]): the audit path of leaf `index` (0-based) in the tree
    /// of the first `size` leaves, bottom up.
    public static func inclusion(index: UInt64, size: UInt64, _ perfect: PerfectSubtree) throws -> [MerkleHash] {
        precondition(index < size)
        var path: [MerkleHash] = []
        try inclusion(index, 0, size, perfect, &path)
        return path
    }

    private static func inclusion(_ m: UInt64, _ lo: UInt64, _ hi: UInt64, _ perfect: PerfectSubtree, _ path: inout [MerkleHash]) throws {
        let n = hi - lo
        guard n > 1 else { return }
        let k = split(n)
        if m - lo < k {
            try inclusion(m, lo, lo + k, perfect, &path)
            path.append(try rangeRoot(lo + k, hi, perfect))
        } else {
            try inclusion(m, lo + k, hi, perfect, &path)
            path.append(try rangeRoot(lo, lo + k, perfect))
        }
    }

    /// RFC 9162 §2.1.4.1 PROOF(m, D[n]): the consistency proof from the tree of `from` leaves
    /// to the tree of `to` leaves (0 < from ≤ to; empty when equal).
    public static func consistency(from: UInt64, to: UInt64, _ perfect: PerfectSubtree) throws -> [MerkleHash] {
        precondition(from > 0 && from <= to)
        var proof: [MerkleHash] = []
        if from < to { try subproof(from, 0, to, true, perfect, &proof) }
        return proof
    }

    private static func subproof(_ m: UInt64, _ lo: UInt64, _ hi: UInt64, _ complete: Bool, _ perfect: PerfectSubtree, _ proof: inout [MerkleHash]) throws {
        let n = hi - lo
        if m == n {
            if !complete { proof.append(try rangeRoot(lo, hi, perfect)) }
            return
        }
        let k = split(n)
        if m <= k {
            try subproof(m, lo, lo + k, complete, perfect, &proof)
            proof.append(try rangeRoot(lo + k, hi, perfect))
        } else {
            try subproof(m - k, lo + k, hi, false, perfect, &proof)
            proof.append(try rangeRoot(lo, lo + k, perfect))
        }
    }

    /// RFC 9162 §2.1.3.2: the root that `path` leads to from `leaf` at `index` in a tree of
    /// `size`, or nil when the path has the wrong length for that index and size.
    public static func rootFromInclusion(index: UInt64, size: UInt64, leaf: MerkleHash, path: [MerkleHash]) -> MerkleHash? {
        guard index < size else { return nil }
        var fn = index
        var sn = size - 1
        var r = leaf
        for p in path {
            guard sn != 0 else { return nil }
            if fn & 1 == 1 || fn == sn {
                r = MerkleHash.node(p, r)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 {
                        fn >>= 1
                        sn >>= 1
                    }
                }
            } else {
                r = MerkleHash.node(r, p)
            }
            fn >>= 1
            sn >>= 1
        }
        guard sn == 0 else { return nil }
        return r
    }

    /// True when `path` proves `leaf` at `index` in the tree of `size` whose head is `root`.
    public static func verifyInclusion(index: UInt64, size: UInt64, leaf: MerkleHash, path: [MerkleHash], root: MerkleHash) -> Bool {
        rootFromInclusion(index: index, size: size, leaf: leaf, path: path) == root
    }

    /// RFC 9162 §2.1.4.2: true when `proof` shows that the tree of `from` leaves with head
    /// `fromRoot` is a prefix of the tree of `to` leaves with head `toRoot`.
    public static func verifyConsistency(from: UInt64, to: UInt64, fromRoot: MerkleHash, toRoot: MerkleHash, proof: [MerkleHash]) -> Bool {
        guard from > 0, from <= to else { return false }
        if from == to { return proof.isEmpty && fromRoot == toRoot }
        guard !proof.isEmpty else { return false }
        var path = proof
        // Step 2: when `from` is a power of two, the first tree's root is the proof's first node.
        if from & (from - 1) == 0 { path.insert(fromRoot, at: 0) }
        guard !path.isEmpty else { return false }
        var fn = from - 1
        var sn = to - 1
        while fn & 1 == 1 {
            fn >>= 1
            sn >>= 1
        }
        var fr = path[0]
        var sr = path[0]
        for c in path.dropFirst() {
            guard sn != 0 else { return false }
            if fn & 1 == 1 || fn == sn {
                fr = MerkleHash.node(c, fr)
                sr = MerkleHash.node(c, sr)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 {
                        fn >>= 1
                        sn >>= 1
                    }
                }
            } else {
                sr = MerkleHash.node(sr, c)
            }
            fn >>= 1
            sn >>= 1
        }
        return fr == fromRoot && sr == toRoot && sn == 0
    }
}
