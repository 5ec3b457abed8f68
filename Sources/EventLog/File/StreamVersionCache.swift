/// Stream -> events held by the sealed segments, for streams looked up in their indexes: a
/// bounded cache (CLOCK, an LRU approximation without a linked list), so that a hot stream
/// that is not in the active segment costs one dictionary lookup rather than a filter probe
/// and a block read per sealed segment. Its size is `FileLog.Options.streamCacheCapacity`,
/// never the number of streams ever seen.
struct StreamVersionCache {
    let capacity: Int
    private var slots: [String: Int] = [:]
    private var names: [String] = []
    private var counts: [UInt64] = []
    private var referenced: [Bool] = []
    private var hand = 0

    init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    /// Streams cached now; at most `capacity`.
    var count: Int { slots.count }

    mutating func count(of stream: String) -> UInt64? {
        guard let slot = slots[stream] else { return nil }
        referenced[slot] = true
        return counts[slot]
    }

    mutating func set(_ stream: String, count: UInt64) {
        if let slot = slots[stream] {
            counts[slot] = count
            referenced[slot] = true
            return
        }
        guard capacity > 0 else { return }
        if names.count < capacity {
            slots[stream] = names.count
            names.append(stream)
            counts.append(count)
            referenced.append(false)
            return
        }
        // Second chance: skip (and clear) slots used since the hand last passed them.
        while referenced[hand] {
            referenced[hand] = false
            hand = (hand + 1) % capacity
        }
        slots[names[hand]] = nil
        names[hand] = stream
        counts[hand] = count
        slots[stream] = hand
        hand = (hand + 1) % capacity
    }
}
