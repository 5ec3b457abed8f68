/// The per-segment filter of a sealed segment's index: a Bloom filter over the UTF-8 bytes
/// of its stream names (or idempotency keys), so a lookup reads an index block only of the
/// segments that probably hold the name — O(1) files per lookup on average, however many
/// segments the log has. Held in memory for every sealed segment (about 10 bits per name).
struct IndexFilter: Sendable {
    /// The filter's bits, as stored in the index file.
    let bits: [UInt8]
    let hashCount: Int

    /// Bits per name and hashes: about 1 % false positives.
    static let bitsPerEntry = 10
    static let defaultHashCount = 7

    init(bits: [UInt8], hashCount: Int) {
        self.bits = bits
        self.hashCount = hashCount
    }

    /// A filter holding `names`, sized for their count.
    init<Names: Sequence>(names: Names, count: Int) where Names.Element == String {
        var builder = Builder(expected: count)
        for name in names { builder.insert(name.utf8) }
        self = builder.filter
    }

    /// Sets a filter's bits one name at a time, for a writer that streams its names (a
    /// seal merging checkpoint records): sized for `expected` names, an upper bound.
    struct Builder {
        private var bits: [UInt8]

        init(expected: Int) {
            let byteCount = expected <= 0 ? 0 : max(8, (expected * IndexFilter.bitsPerEntry + 7) / 8)
            bits = [UInt8](repeating: 0, count: byteCount)
        }

        mutating func insert<Bytes: Sequence>(_ name: Bytes) where Bytes.Element == UInt8 {
            guard !bits.isEmpty else { return }
            let m = UInt64(bits.count) * 8
            let (h1, h2) = IndexFilter.hashes(bytes: name)
            for i in 0..<UInt64(IndexFilter.defaultHashCount) {
                let bit = (h1 &+ i &* h2) % m
                bits[Int(bit >> 3)] |= 1 << UInt8(bit & 7)
            }
        }

        var filter: IndexFilter { IndexFilter(bits: bits, hashCount: IndexFilter.defaultHashCount) }
    }

    /// False when `name` is certainly not in the segment.
    func mayContain(_ name: String) -> Bool {
        guard !bits.isEmpty else { return false }
        let m = UInt64(bits.count) * 8
        let (h1, h2) = Self.hashes(name)
        for i in 0..<UInt64(hashCount) {
            let bit = (h1 &+ i &* h2) % m
            if bits[Int(bit >> 3)] & (1 << UInt8(bit & 7)) == 0 { return false }
        }
        return true
    }

    /// Two hashes for double hashing: FNV-1a (64 bit) of the UTF-8 bytes, finalised with
    /// SplitMix64's mixer. Stable across processes and builds (Swift's `Hasher` is seeded
    /// per process, so it cannot describe a file).
    static func hashes(_ name: String) -> (UInt64, UInt64) { hashes(bytes: name.utf8) }

    static func hashes<Bytes: Sequence>(bytes: Bytes) -> (UInt64, UInt64) where Bytes.Element == UInt8 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in bytes {
            h ^= UInt64(byte)
            h = h &* 0x0000_0100_0000_01B3
        }
        h ^= h >> 30
        h = h &* 0xBF58_476D_1CE4_E5B9
        h ^= h >> 27
        h = h &* 0x94D0_49BB_1331_11EB
        h ^= h >> 31
        return (h & 0xFFFF_FFFF, (h >> 32) | 1)
    }
}
