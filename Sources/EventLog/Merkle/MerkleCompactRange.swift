/// The state of an append-only RFC 9162 tree from leaf 0: the roots of the perfect subtrees
/// that the size decomposes into (one per set bit, largest first), O(log n) hashes. Appending
/// a leaf merges equal-sized neighbours; the root folds them from the right.
public struct MerkleCompactRange: Hashable, Sendable {
    public private(set) var size: UInt64
    /// Perfect subtree roots, largest (leftmost) first; `hashes.count == size.nonzeroBitCount`.
    public private(set) var hashes: [MerkleHash]

    public init() {
        size = 0
        hashes = []
    }

    /// A range from stored parts; nil unless there is one hash per set bit of `size`.
    public init?(size: UInt64, hashes: [MerkleHash]) {
        guard hashes.count == size.nonzeroBitCount else { return nil }
        self.size = size
        self.hashes = hashes
    }

    public mutating func append(_ leaf: MerkleHash) {
        var hash = leaf
        var bit: UInt64 = 1
        while size & bit != 0 {
            hash = MerkleHash.node(hashes.removeLast(), hash)
            bit <<= 1
        }
        hashes.append(hash)
        size += 1
    }

    /// The tree head of the leaves appended so far (RFC 9162 MTH; SHA-256("") when empty).
    public var root: MerkleHash {
        guard var root = hashes.last else { return .emptyTree }
        for hash in hashes.dropLast().reversed() { root = MerkleHash.node(hash, root) }
        return root
    }

    /// The (level, index) of each perfect subtree in `hashes`, in the same order: level is the
    /// subtree's height (it covers 2^level leaves), index its position among subtrees of that height.
    public var nodeAddresses: [(level: Int, index: UInt64)] {
        var out: [(Int, UInt64)] = []
        var start: UInt64 = 0
        for level in (0..<64).reversed() where size & (UInt64(1) << level) != 0 {
            out.append((level, start >> level))
            start += UInt64(1) << level
        }
        return out
    }
}
