@testable import Projections
import Testing

/// A user's unlocks are kept in chunks so that a published view shares them; these check that
/// the chunks are invisible: every index across their boundaries, copies independent.
@Suite("Unlock list")
struct UnlockListTests {
    private static func unlock(_ i: Int) -> UnlockedProfilesView.Unlock {
        .init(username: UInt32(i), unlockedAt: Int64(i) * 10, creditsSpent: 1, position: UInt64(i) * 3 + 1)
    }

    @Test("every index reads back across chunk boundaries", arguments: [0, 1, 255, 256, 257, 511, 512, 600, 2_000])
    func everyIndex(count: Int) {
        var list = UnlockList()
        for i in 0..<count { list.append(Self.unlock(i)) }
        #expect(list.count == count)
        #expect(list.map(\.username) == (0..<count).map { UInt32($0) })
        #expect(Array(list.reversed()).map(\.username) == (0..<count).reversed().map { UInt32($0) })
        if count > 10 {
            #expect(list[3..<count].map(\.position).first == 10)
            // Positions ascend, so the boundary search finds the first at or past a position.
            #expect(list.partitioningIndex { $0.position >= UInt64(count - 5) * 3 + 1 } == count - 5)
        }
    }

    @Test("a copy taken before an append keeps its unlocks; equal lists are equal whatever their history")
    func copiesAreIndependent() {
        var list = UnlockList()
        for i in 0..<300 { list.append(Self.unlock(i)) }
        let published = list
        list.append(Self.unlock(300))
        #expect(published.count == 300 && list.count == 301)
        #expect(published.last?.username == 299 && list.last?.username == 300)
        #expect(published != list)

        var again = published
        again.append(Self.unlock(300))
        #expect(again == list)
        #expect(again.hashValue == list.hashValue)
    }
}
