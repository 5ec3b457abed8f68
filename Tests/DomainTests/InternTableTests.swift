import EventLog
import Testing
@testable import Projections

/// The interning table keeps 4 bytes a string besides its bytes: a string's length is where
/// the next one starts, or its chunk's end. These tests aim at the edges of that: strings
/// that end a chunk (empty ones too), the longest strings, growth through many sizes, and a
/// copy whose last chunk the original keeps filling.
@Suite(.timeLimit(.minutes(2))) struct InternTableTests {
    /// Lengths that fill 64 KiB chunks to their last byte and leave gaps, with empty strings
    /// before and after each chunk change: `byteCount` bytes of strings, each distinct.
    static func chunkEdgeStrings(byteCount: Int) -> [String] {
        var rng = SplitMix64(seed: 23)
        var strings: [String] = [""]
        var bytes = 0, i = 0
        while bytes < byteCount {
            let length: Int
            switch i % 7 {
            case 0: length = InternTable.maximumLength
            case 1: length = 0
            case 2: length = Int.random(in: 1...9, using: &rng)
            default: length = Int.random(in: 10...3_000, using: &rng)
            }
            // Distinct by a numbered prefix; an empty length becomes the shortest numbered name.
            let name = String(i, radix: 36) + "."
            let filler = String(repeating: "x", count: max(0, length - name.utf8.count))
            strings.append(length == 0 ? name : name + filler)
            bytes += strings.last!.utf8.count
            i += 1
        }
        return strings
    }

    @Test func everyStringKeepsItsBytesAcrossChunkEnds() throws {
        let strings = Self.chunkEdgeStrings(byteCount: 3 * InternTable.arenaChunk + 12_345)
        var table = InternTable()
        for (id, string) in strings.enumerated() { #expect(table.intern(string) == UInt32(id)) }
        #expect(table.count == strings.count)
        for (id, string) in strings.enumerated() {
            #expect(table.string(UInt32(id)) == string, "id \(id)")
            #expect(table.lookup(string) == UInt32(id))
            // A one-byte-longer or -shorter spelling is another string.
            #expect(table.lookup(string + "y") == nil)
        }
        for (id, string) in strings.enumerated() { #expect(table.intern(string) == UInt32(id), "interned again") }
        #expect(table.count == strings.count)
        let loaded = try SnapshotLoadingTests.decodeTable { table.write(to: &$0, section: 7) }
        #expect(loaded == table)
        for (id, string) in strings.enumerated() { #expect(loaded.string(UInt32(id)) == string) }
    }

    /// The exact chunk edges: strings that leave the chunk 1 byte short, then one that does
    /// not fit, then an empty string at the next chunk's start.
    @Test func aChunkFilledToItsLastByteAndAnEmptyStringAfterIt() {
        var table = InternTable()
        var expected: [String] = []
        func add(_ string: String) {
            #expect(table.intern(string) == UInt32(expected.count))
            expected.append(string)
        }
        // 16 strings of 4,095 bytes: 65,520 bytes; then 15 bytes leave 1 byte free.
        for i in 0..<16 { add(String(format16: i) + String(repeating: "a", count: 4_095 - 16)) }
        add("fifteen-bytes-!")
        add("")  // fits in the last free byte's place: offset 65,535, length 0
        add("b")  // does not fit (65,535 + 1): starts the next chunk
        #expect(table.intern("") == 17, "already interned: the same id")
        add("c")
        for (id, string) in expected.enumerated() { #expect(table.string(UInt32(id)) == string, "id \(id)") }
    }

    @Test func growthThroughManySizesMatchesADictionary() {
        var rng = SplitMix64(seed: 31)
        var table = InternTable()
        var reference: [String: UInt32] = [:]
        for _ in 0..<150_000 {
            let string = "p" + String(UInt64.random(in: 0..<90_000, using: &rng), radix: 16)
            let id = reference[string] ?? UInt32(reference.count)
            reference[string] = id
            #expect(table.intern(string) == id)
        }
        #expect(table.count == reference.count)
        #expect(reference.allSatisfy { table.lookup($0.key) == $0.value && table.string($0.value) == $0.key })
        #expect(table.lookup("q0") == nil)
    }

    /// A published copy keeps its strings, the last one's length included, while the
    /// original appends into the chunk they share.
    @Test func aCopyKeepsItsLastStringWhileTheOriginalGrows() {
        var table = InternTable()
        for i in 0..<1_000 { _ = table.intern("user-\(i)") }
        let copy = table
        for i in 0..<5_000 { _ = table.intern("later-\(i)") }
        #expect(copy.count == 1_000 && table.count == 6_000)
        #expect(copy.string(999) == "user-999" && table.string(999) == "user-999")
        #expect(copy.lookup("later-0") == nil && table.lookup("later-0") == 1_000)
        #expect((0..<1_000).allSatisfy { copy.string(UInt32($0)) == "user-\($0)" })
    }
}

extension String {
    /// `i` as 16 characters, zero-padded.
    fileprivate init(format16 i: Int) {
        let digits = String(i)
        self = String(repeating: "0", count: 16 - digits.count) + digits
    }
}
