/// An array in fixed chunks of 256 elements. Copying it (publishing a view) shares every
/// chunk; a write after a copy duplicates one chunk, not the column. So a view can be
/// published after every batch while the fold keeps writing, without a persistent map's
/// hashing on every event.
struct ChunkedColumn<Element: Sendable>: Sendable {
    static var chunkShift: Int { 8 }
    static var chunkMask: Int { (1 << chunkShift) - 1 }

    private var chunks: [ContiguousArray<Element>] = []
    private(set) var count = 0

    init() {}

    init(repeating value: Element, count: Int) {
        var left = count
        while left > 0 {
            let n = min(left, 1 << Self.chunkShift)
            chunks.append(ContiguousArray(repeating: value, count: n))
            left -= n
        }
        self.count = count
    }

    var isEmpty: Bool { count == 0 }

    subscript(index: Int) -> Element {
        @inline(__always) get { chunks[index &>> Self.chunkShift][index & Self.chunkMask] }
        @inline(__always) _modify { yield &chunks[index &>> Self.chunkShift][index & Self.chunkMask] }
    }

    mutating func append(_ element: Element) {
        if count & Self.chunkMask == 0 {
            var chunk = ContiguousArray<Element>()
            chunk.reserveCapacity(1 << Self.chunkShift)
            chunks.append(chunk)
        }
        chunks[chunks.count - 1].append(element)
        count += 1
    }

    /// Appends `value` until the column holds `newCount` elements.
    mutating func grow(to newCount: Int, with value: Element) {
        while count < newCount { append(value) }
    }

    func forEach(_ body: (Element) throws -> Void) rethrows {
        for chunk in chunks { for element in chunk { try body(element) } }
    }
}

extension ChunkedColumn: Equatable where Element: Equatable {
    static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.count == rhs.count && lhs.chunks == rhs.chunks
    }
}
