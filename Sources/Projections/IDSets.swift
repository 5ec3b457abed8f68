/// A set of dense ids as bits, with its count.
struct IDBitSet: Sendable, Hashable {
    private var words: [UInt64] = []
    private(set) var count = 0

    init() {}

    /// True when `id` was not in the set.
    @inline(__always) @discardableResult
    mutating func insert(_ id: UInt32) -> Bool {
        let word = Int(id >> 6), bit = UInt64(1) << UInt64(id & 63)
        if word >= words.count { words.append(contentsOf: repeatElement(0, count: max(word + 1 - words.count, words.count))) }
        guard words[word] & bit == 0 else { return false }
        words[word] |= bit
        count += 1
        return true
    }

    func contains(_ id: UInt32) -> Bool {
        let word = Int(id >> 6)
        return word < words.count && words[word] & (UInt64(1) << UInt64(id & 63)) != 0
    }

    /// The members in increasing order.
    func forEach(_ body: (UInt32) throws -> Void) rethrows {
        for (index, word) in words.enumerated() where word != 0 {
            var rest = word
            while rest != 0 {
                try body(UInt32(index * 64 + rest.trailingZeroBitCount))
                rest &= rest - 1
            }
        }
    }

    static func == (lhs: Self, rhs: Self) -> Bool {
        guard lhs.count == rhs.count else { return false }
        let n = max(lhs.words.count, rhs.words.count)
        for i in 0..<n where (i < lhs.words.count ? lhs.words[i] : 0) != (i < rhs.words.count ? rhs.words[i] : 0) { return false }
        return true
    }

    func hash(into hasher: inout Hasher) { hasher.combine(count) }
}

/// A set of (id, id) pairs: open addressing over the pair packed in 64 bits, at most 3/4
/// full (as Swift's own `Dictionary`): eight slots share a cache line, so a longer probe
/// costs little, and half full, 603 k unlocked pairs took 16.8 MB where 8.4 MB do.
struct IDPairSet: Sendable {
    private static let empty = UInt64.max
    private var slots = [UInt64](repeating: IDPairSet.empty, count: 64)
    private(set) var count = 0

    init() {}

    init(minimumCapacity: Int) {
        var capacity = 64
        while minimumCapacity * 4 > capacity * 3 { capacity *= 2 }
        slots = [UInt64](repeating: Self.empty, count: capacity)
    }

    /// The set of `keys` (each `a << 32 | b`), for loading a snapshot: the keys are grouped
    /// by a run of 65536 home slots (512 KiB) and inserted in that order, so the inserts walk
    /// the slots once instead of missing the cache at random. `duplicate` is a key that
    /// appears twice, if one does (the set then holds the keys before it).
    static func loading(_ keys: [UInt64]) -> (set: IDPairSet, duplicate: UInt64?) {
        var set = IDPairSet(minimumCapacity: keys.count)
        let mask = set.slots.count - 1
        let shift = 16
        let groups = max(1, set.slots.count >> shift)
        var starts = [Int](repeating: 0, count: groups + 1)
        for key in keys { starts[(index(key, mask) >> shift) + 1] += 1 }
        for group in 0..<groups { starts[group + 1] += starts[group] }
        var ordered = [UInt64](repeating: 0, count: keys.count)
        for key in keys {
            let group = index(key, mask) >> shift
            ordered[starts[group]] = key
            starts[group] += 1
        }
        for key in ordered where !set.insert(UInt32(truncatingIfNeeded: key >> 32), UInt32(truncatingIfNeeded: key)) {
            return (set, key)
        }
        return (set, nil)
    }

    /// True when the pair was not in the set.
    @inline(__always) @discardableResult
    mutating func insert(_ a: UInt32, _ b: UInt32) -> Bool {
        let key = UInt64(a) << 32 | UInt64(b)
        let mask = slots.count - 1
        var index = Self.index(key, mask)
        while true {
            let slot = slots[index]
            if slot == key { return false }
            if slot == Self.empty { break }
            index = (index + 1) & mask
        }
        slots[index] = key
        count += 1
        if count * 4 > slots.count * 3 { grow() }
        return true
    }

    func contains(_ a: UInt32, _ b: UInt32) -> Bool {
        let key = UInt64(a) << 32 | UInt64(b)
        let mask = slots.count - 1
        var index = Self.index(key, mask)
        while true {
            let slot = slots[index]
            if slot == key { return true }
            if slot == Self.empty { return false }
            index = (index + 1) & mask
        }
    }

    /// The pairs in slot order (not meaningful; snapshots sort them).
    func forEach(_ body: (UInt32, UInt32) throws -> Void) rethrows {
        for slot in slots where slot != Self.empty { try body(UInt32(slot >> 32), UInt32(truncatingIfNeeded: slot)) }
    }

    @inline(__always)
    private static func index(_ key: UInt64, _ mask: Int) -> Int {
        var h = key ^ (key >> 33)
        h &*= 0xFF51_AFD7_ED55_8CCD
        h ^= h >> 33
        h &*= 0xC4CE_B9FE_1A85_EC53
        h ^= h >> 33
        return Int(truncatingIfNeeded: h) & mask
    }

    private mutating func grow() {
        let old = slots
        slots = [UInt64](repeating: Self.empty, count: old.count * 2)
        count = 0
        for slot in old where slot != Self.empty { insert(UInt32(slot >> 32), UInt32(truncatingIfNeeded: slot)) }
    }
}

extension IDPairSet: Equatable {
    static func == (lhs: Self, rhs: Self) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var same = true
        lhs.forEach { a, b in if same && !rhs.contains(a, b) { same = false } }
        return same
    }
}
