/// One user's unlocks, oldest first, in chunks of 256. The view is published after every
/// batch while the fold keeps appending, and a flat array shared with the published view was
/// copied whole by the next append: a cost per batch that grew with the user's history. Now
/// an append after a publish copies the last chunk and the list of the others. The first
/// chunk is held inline, so a user with few unlocks costs one allocation, as an array did.
struct UnlockList: RandomAccessCollection, Sendable, Hashable {
    typealias Element = UnlockedProfilesView.Unlock

    private static let shift = 8
    private static let chunkSize = 1 << shift
    private static let mask = chunkSize - 1

    private var first = ContiguousArray<Element>()
    /// Full chunks after the first, then the one being filled.
    private var rest: [ContiguousArray<Element>] = []
    private(set) var count = 0

    init() {}

    var startIndex: Int { 0 }
    var endIndex: Int { count }

    /// An index outside the list traps in the chunk arrays' own bounds checks: every chunk
    /// holds exactly its unlocks.
    subscript(index: Int) -> Element {
        index < Self.chunkSize ? first[index] : rest[(index &>> Self.shift) - 1][index & Self.mask]
    }

    mutating func append(_ element: Element) {
        if count < Self.chunkSize {
            first.append(element)
        } else {
            if count & Self.mask == 0 { rest.append(ContiguousArray()) }
            rest[rest.count - 1].append(element)
        }
        count += 1
    }

    mutating func reserveCapacity(_ capacity: Int) {
        first.reserveCapacity(Swift.min(capacity, Self.chunkSize))
    }
}
