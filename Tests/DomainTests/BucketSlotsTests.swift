@testable import Projections
import Testing

/// The metrics rings keep their slots in chunks so that a published copy shares them; these
/// check that the chunking is invisible: every slot addressable, copies independent.
@Suite("Bucket slots")
struct BucketSlotsTests {
    @Test("every slot of a ring whose size is not a multiple of the chunk reads and writes", arguments: [1, 63, 64, 65, 100, 720, 1440])
    func everySlot(count: Int) {
        var slots = BucketSlots(count: count)
        #expect(slots.count == count)
        #expect(slots.allSatisfy { $0 == nil })
        for slot in 0..<count { slots[slot] = MetricsBucket(start: Int64(slot) * 7) }
        #expect(slots.map { $0?.start } == (0..<count).map { Int64($0) * 7 })
        slots[count - 1]!.unlocks += 3
        #expect(slots[count - 1]?.unlocks == 3)
        #expect(slots.compactMap { $0 }.count == count)
    }

    @Test("a copy taken before a count keeps its buckets; equal rings hash alike")
    func copiesAreIndependent() {
        var ring = BucketRing(width: 60, count: 1440)
        for minute in 0..<200 { ring.update(at: Int64(minute) * 60 + 5) { $0.searches += 1 } }
        let published = ring
        #expect(published == ring)
        #expect(published.hashValue == ring.hashValue)

        ring.update(at: 199 * 60) { $0.searches += 1 }
        ring.update(at: 10_000 * 60) { $0.unlocks += 1 }
        #expect(published != ring)
        #expect(published.window(last: 1440).count == 200)
        #expect(published.window(last: 1440).allSatisfy { $0.searches == 1 && $0.unlocks == 0 })
        #expect(ring.window(last: 1).map(\.unlocks) == [1])

        var again = published
        again.update(at: 199 * 60) { $0.searches += 1 }
        again.update(at: 10_000 * 60) { $0.unlocks += 1 }
        #expect(again == ring)
        #expect(again.hashValue == ring.hashValue)
    }
}
