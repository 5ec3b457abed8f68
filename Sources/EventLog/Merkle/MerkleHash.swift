import Crypto

/// A SHA-256 value in an RFC 9162 §2.1 Merkle tree: a leaf hash, a node hash or a root.
/// Kept as four words so that comparing and storing hashes never allocates.
public struct MerkleHash: Hashable, Sendable, CustomStringConvertible {
    var w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64

    /// SHA-256 of the empty string: RFC 9162's root of the empty tree.
    public static let emptyTree = MerkleHash(sha256Of: UnsafeRawBufferPointer(start: nil, count: 0))

    init(w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64) {
        self.w0 = w0; self.w1 = w1; self.w2 = w2; self.w3 = w3
    }

    /// The hash from its 32 bytes; nil for any other length.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 32 else { return nil }
        var value = MerkleHash(w0: 0, w1: 0, w2: 0, w3: 0)
        withUnsafeMutableBytes(of: &value) { raw in
            for (i, byte) in bytes.enumerated() { raw[i] = byte }
        }
        self = value
    }

    /// The hash from 64 hex digits (either case); nil for anything else.
    public init?(hex: String) {
        guard let bytes = parseChainHash(hex: hex) else { return nil }
        self.init(bytes: bytes)
    }

    init(digest: SHA256.Digest) {
        var value = MerkleHash(w0: 0, w1: 0, w2: 0, w3: 0)
        withUnsafeMutableBytes(of: &value) { out in
            digest.withUnsafeBytes { out.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0.prefix(32))) }
        }
        self = value
    }

    init(sha256Of bytes: UnsafeRawBufferPointer) {
        var hasher = SHA256()
        hasher.update(bufferPointer: bytes)
        self.init(digest: hasher.finalize())
    }

    /// RFC 9162 §2.1.1: the hash of a leaf, SHA-256(0x00 ‖ bytes).
    public static func leaf(_ bytes: UnsafeRawBufferPointer) -> MerkleHash {
        var hasher = SHA256()
        withUnsafeBytes(of: UInt8(0)) { hasher.update(bufferPointer: $0) }
        hasher.update(bufferPointer: bytes)
        return MerkleHash(digest: hasher.finalize())
    }

    public static func leaf(_ bytes: [UInt8]) -> MerkleHash {
        bytes.withUnsafeBytes { leaf($0) }
    }

    /// RFC 9162 §2.1.1: the hash of an interior node, SHA-256(0x01 ‖ left ‖ right).
    public static func node(_ left: MerkleHash, _ right: MerkleHash) -> MerkleHash {
        withUnsafeTemporaryAllocation(byteCount: 65, alignment: 8) { buffer in
            buffer[0] = 1
            withUnsafeBytes(of: left) { UnsafeMutableRawBufferPointer(rebasing: buffer[1..<33]).copyMemory(from: $0) }
            withUnsafeBytes(of: right) { UnsafeMutableRawBufferPointer(rebasing: buffer[33..<65]).copyMemory(from: $0) }
            return MerkleHash(sha256Of: UnsafeRawBufferPointer(buffer))
        }
    }

    public var bytes: [UInt8] { withUnsafeBytes(of: self) { Array($0) } }
    public var hex: String { hexString(bytes) }
    public var description: String { hex }
}
