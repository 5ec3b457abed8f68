/// Dense 32-bit ids for the strings a view keys on (user ids, usernames, post ids): 0, 1,
/// 2 … in first-seen order, so the ids depend only on the events, and a snapshot that
/// writes the strings in id order gives back the same ids. Views key arrays and bit sets
/// on ids and meet the strings again only at the API edge and in `replay` output.
///
/// Lookups hash the payload's bytes in place (a seeded multiply-mix hash, no `String`);
/// equality is Swift's `String` equality: ASCII bytes compare as bytes, and other text
/// goes through `String` once per distinct spelling, so canonically equal spellings (and
/// invalid UTF-8, which `String(decoding:)` repairs) share one id as they shared one key
/// before. The table stores each string's first-seen (repaired) spelling.
///
/// Storage is chunked (`ChunkedColumn`, 64 KiB byte chunks), so a copy shares everything
/// and an insert after a copy duplicates one chunk.
///
/// Besides its bytes, a string costs a 4-byte start and 5.3–10.7 bytes of 4-byte slots (a
/// table is 3/8 to 3/4 full). 8-byte slots, 1/4 to 1/2 full, and 8-byte spans took 24–40
/// (each view holds every post id: 1.87 M of them on the 10 M-event log). BENCHMARKS.md,
/// "Four-byte interning slots and starts", has the figures. A table holds at most
/// 4 GiB of string bytes (65,536 chunks) and so fewer than 2^31 strings: about 250 M post
/// ids, 13 times the 100 M-event log's, and far past the memory a process of ours has.
struct InternTable: Sendable {
    /// 0: empty; else the hash's high bits above `idMask` | (id + 1). Ids stay below 3/4 of
    /// the slot count (the table grows at 3/4 full, as the pair sets do: 16 slots share a
    /// cache line, so longer probes cost little), so id + 1 fits under the mask and the bits
    /// above it filter probes: 10 bits at 2^22 slots, one string compare per 1,024 foreign
    /// slots. Open addressing, linear probing.
    private var slots = ChunkedColumn<UInt32>(repeating: 0, count: 64)
    /// The slot count − 1, a power of two − 1.
    private var slotMask = 63
    private var arena: [ContiguousArray<UInt8>] = []
    /// Per id: where its bytes start, chunk << 16 | offset. Its length is where the next
    /// id's start, or, for the last string of a chunk, the chunk's end.
    private var starts = ChunkedColumn<UInt32>()
    /// Spellings with a byte ≥ 0x80, by their `String` (canonical equality).
    private var nonASCII: [String: UInt32] = [:]
    private let seed: UInt64

    static let arenaChunk = 1 << 16
    /// Chunk numbers fit the start's high 16 bits.
    static let maximumChunks = 1 << 16
    /// Longer strings are not interned (the catalogue's fields are at most 1 KiB).
    static let maximumLength = 4_096

    init() {
        seed = UInt64.random(in: 0...UInt64.max)
    }

    var count: Int { starts.count }

    /// Slot bits that hold id + 1; the bits above hold the hash's.
    @inline(__always) private var idMask: UInt32 { UInt32(truncatingIfNeeded: slotMask) }

    /// A slot's hash bits for `hash`: its high half, above the id's bits.
    @inline(__always) private func tagBits(_ hash: UInt64) -> UInt32 {
        UInt32(truncatingIfNeeded: hash >> 32) & ~idMask
    }

    /// Where `id`'s bytes are.
    @inline(__always)
    private func span(_ id: Int) -> (chunk: Int, offset: Int, length: Int) {
        let start = starts[id]
        let chunk = Int(start >> 16), offset = Int(start & 0xFFFF)
        if id + 1 < starts.count {
            let next = starts[id + 1]
            if Int(next >> 16) == chunk { return (chunk, offset, Int(next & 0xFFFF) - offset) }
        }
        return (chunk, offset, arena[chunk].count - offset)
    }

    // MARK: - Lookups

    /// The id of `bytes`, inserting it when new. `bytes` is at most `maximumLength` long
    /// (payload fields are bounded far below it).
    @inline(__always)
    mutating func intern(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        let probe = probe(bytes)
        if let id = probe.id { return id }
        return insert(bytes, slot: probe.emptySlot, tag: probe.tag)
    }

    /// Open addressing: the id of exactly these bytes, or the empty slot where they would go.
    @inline(__always)
    private func probe(_ bytes: UnsafeRawBufferPointer) -> (id: UInt32?, emptySlot: Int, tag: UInt32) {
        let hash = Self.hash(bytes, seed)
        let tag = tagBits(hash), idMask = idMask
        var index = Int(truncatingIfNeeded: hash) & slotMask
        while true {
            let slot = slots[index]
            if slot == 0 { return (nil, index, tag) }
            if slot & ~idMask == tag, equals(Int(slot & idMask) - 1, bytes) {
                return ((slot & idMask) &- 1, index, tag)
            }
            index = (index + 1) & slotMask
        }
    }

    mutating func intern(_ string: String) -> UInt32 {
        var string = string
        return string.withUTF8 { intern(UnsafeRawBufferPointer($0)) }
    }

    /// The id of `bytes` if the table holds it.
    func lookup(_ bytes: UnsafeRawBufferPointer) -> UInt32? {
        if let id = probe(bytes).id { return id }
        if nonASCII.isEmpty || Self.isASCII(bytes) { return nil }
        let string = String(decoding: bytes, as: UTF8.self)
        if let id = nonASCII[string] { return id }
        return Self.asciiEquivalent(of: string).flatMap { lookup($0) }
    }

    /// The ASCII string canonically equal to `string`, if there is one: only three
    /// characters decompose to ASCII (U+212A KELVIN SIGN, U+037E GREEK QUESTION MARK,
    /// U+1FEF GREEK VARIA), and Swift's own `==` confirms the result.
    static func asciiEquivalent(of string: String) -> String? {
        var scalars = String.UnicodeScalarView()
        for scalar in string.unicodeScalars {
            switch scalar.value {
            case 0..<0x80: scalars.append(scalar)
            case 0x212A: scalars.append("K")
            case 0x037E: scalars.append(";")
            case 0x1FEF: scalars.append("`")
            default: return nil
            }
        }
        let ascii = String(scalars)
        return ascii == string ? ascii : nil
    }

    func lookup(_ string: String) -> UInt32? {
        var string = string
        return string.withUTF8 { lookup(UnsafeRawBufferPointer($0)) }
    }

    /// The string of `id` (an id this table gave out).
    func string(_ id: UInt32) -> String {
        withBytes(id) { String(decoding: $0, as: UTF8.self) }
    }

    func withBytes<Result>(_ id: UInt32, _ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        let (chunk, offset, length) = span(Int(id))
        return try arena[chunk].withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[offset..<offset + length])) }
    }

    // MARK: - Inserting

    private mutating func insert(_ bytes: UnsafeRawBufferPointer, slot: Int, tag: UInt32) -> UInt32 {
        let id: UInt32
        if Self.isASCII(bytes) {
            id = append(bytes)
        } else {
            let string = String(decoding: bytes, as: UTF8.self)
            if let existing = nonASCII[string] { return existing }
            if var ascii = Self.asciiEquivalent(of: string) {
                // Text equal to an ASCII string (a Kelvin sign for K…) shares its id.
                let id = ascii.withUTF8 { intern(UnsafeRawBufferPointer($0)) }
                nonASCII[string] = id
                return id
            }
            var repaired = string
            id = repaired.withUTF8 { append(UnsafeRawBufferPointer($0)) }
            nonASCII[string] = id
            // The slot is keyed by the stored (repaired) spelling; other spellings of the
            // same text find it through `nonASCII`.
            if !repaired.utf8.elementsEqual(bytes) {
                placeSlot(for: id)
                growIfNeeded()
                return id
            }
        }
        slots[slot] = tag | (id + 1)
        growIfNeeded()
        return id
    }

    private mutating func append(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        if arena.isEmpty || arena[arena.count - 1].count + bytes.count >= Self.arenaChunk {
            // 4 GiB of distinct names in one view: memory ran out long before.
            precondition(arena.count < Self.maximumChunks, "an interning table holds at most 4 GiB of strings")
            var chunk = ContiguousArray<UInt8>()
            chunk.reserveCapacity(Self.arenaChunk)
            arena.append(chunk)
        }
        let chunk = arena.count - 1
        let offset = arena[chunk].count
        arena[chunk].append(contentsOf: bytes)
        let id = UInt32(starts.count)
        starts.append(UInt32(chunk) << 16 | UInt32(offset))
        return id
    }

    private mutating func placeSlot(for id: UInt32) {
        let hash = withBytes(id) { Self.hash($0, seed) }
        var index = Int(truncatingIfNeeded: hash) & slotMask
        while slots[index] != 0 { index = (index + 1) & slotMask }
        slots[index] = tagBits(hash) | (id + 1)
    }

    @inline(__always)
    private mutating func growIfNeeded() { reserve(0) }

    /// Room for `count` more strings without rehashing on the way.
    mutating func reserve(_ more: Int) {
        guard resizeSlots(for: count + more) else { return }
        for id in 0..<UInt32(count) { placeSlot(for: id) }
    }

    /// Empty slots for `strings` when the current ones hold fewer than that at 3/4 full (the
    /// one growth rule: ids stay below 3/4 of the slot count). Returns whether it resized.
    @inline(__always)
    private mutating func resizeSlots(for strings: Int) -> Bool {
        var capacity = slotMask + 1
        guard strings * 4 > capacity * 3 else { return false }
        while strings * 4 > capacity * 3 { capacity *= 2 }
        slotMask = capacity - 1
        slots = ChunkedColumn(repeating: 0, count: capacity)
        return true
    }

    @inline(__always)
    private func equals(_ id: Int, _ bytes: UnsafeRawBufferPointer) -> Bool {
        let n = bytes.count
        let (chunk, offset, length) = span(id)
        guard length == n else { return false }
        return arena[chunk].withUnsafeBytes { stored in
            // Word by word: the strings are short, a call to memcmp costs more.
            var i = 0
            while i + 8 <= n {
                guard stored.loadUnaligned(fromByteOffset: offset + i, as: UInt64.self)
                    == bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self) else { return false }
                i += 8
            }
            while i < n {
                guard stored[offset + i] == bytes[i] else { return false }
                i += 1
            }
            return true
        }
    }

    @inline(__always)
    static func isASCII(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var any: UInt8 = 0
        for byte in bytes { any |= byte }
        return any < 0x80
    }

    /// A seeded multiply-mix hash over 8-byte words (the strings are short).
    @inline(__always)
    static func hash(_ bytes: UnsafeRawBufferPointer, _ seed: UInt64) -> UInt64 {
        var h = seed ^ (UInt64(bytes.count) &* 0x9E37_79B9_7F4A_7C15)
        var i = 0
        let n = bytes.count
        while i + 8 <= n {
            h = (h ^ bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0xBF58_476D_1CE4_E5B9
            h ^= h >> 31
            i += 8
        }
        if i < n {
            var word: UInt64 = 0
            var shift: UInt64 = 0
            while i < n {
                word |= UInt64(bytes[i]) << shift
                shift += 8
                i += 1
            }
            h = (h ^ word) &* 0x94D0_49BB_1331_11EB
        }
        h ^= h >> 32
        h &*= 0xD6E8_FEB8_6659_FD93
        h ^= h >> 32
        return h
    }
}

extension InternTable: Equatable {
    /// Equal when they hold the same strings under the same ids (the hash layout aside).
    static func == (lhs: Self, rhs: Self) -> Bool {
        guard lhs.count == rhs.count else { return false }
        for id in 0..<UInt32(lhs.count) {
            let same = lhs.withBytes(id) { a in rhs.withBytes(id) { b in a.elementsEqual(b) } }
            if !same { return false }
        }
        return true
    }
}

// MARK: - Snapshot

extension InternTable {
    /// Section `tag`: the strings in id order. Each is a varint header `length << 1 | packed`;
    /// unpacked, the bytes follow; packed (a string ending in at least 8 lowercase hex digits,
    /// an even number of them, like generated post ids), a varint prefix length, the prefix's
    /// bytes, then the hex digits two to a byte, high nibble first.
    func write(to w: inout SnapshotWriter, section tag: UInt8) {
        w.section(tag, count: count)
        var buffer: [UInt8] = []
        buffer.reserveCapacity(SnapshotWriter.chunkSize + Self.maximumLength * 2)
        func varint(_ value: Int) {
            var v = UInt64(value)
            while v >= 0x80 {
                buffer.append(UInt8(truncatingIfNeeded: v) | 0x80)
                v >>= 7
            }
            buffer.append(UInt8(v))
        }
        for id in 0..<UInt32(count) {
            withBytes(id) { bytes in
                var digits = 0
                while digits < bytes.count, Self.nibble(bytes[bytes.count - 1 - digits]) != nil { digits += 1 }
                digits &= ~1
                guard digits >= 8 else {
                    varint(bytes.count << 1)
                    buffer.append(contentsOf: bytes)
                    return
                }
                let prefix = bytes.count - digits
                varint(bytes.count << 1 | 1)
                varint(prefix)
                buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[0..<prefix]))
                var i = prefix
                while i < bytes.count {
                    buffer.append(Self.nibble(bytes[i])! << 4 | Self.nibble(bytes[i + 1])!)
                    i += 2
                }
            }
            if buffer.count >= SnapshotWriter.chunkSize {
                w.raw(buffer)
                buffer.removeAll(keepingCapacity: true)
            }
        }
        if !buffer.isEmpty { w.raw(buffer) }
    }

    /// A lowercase hex digit's value.
    @inline(__always)
    static func nibble(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        default: nil
        }
    }

    static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// The inverse of `write`: refuses a string twice, a string too long, a packed string
    /// whose parts do not add up, and stored text that is not the UTF-8 `String` would store.
    /// The strings are decoded straight into the arena, then the hash slots are filled in
    /// one pass in slot order (`placeAllSlots`), so loading costs no cache miss per string.
    init(snapshot r: inout SnapshotReader, section tag: UInt8, what: String) throws {
        self.init()
        let count = try r.section(tag, minimumBytes: 1)
        // Ids below 2^31 keep id + 1 under the slots' id bits at half-full slots.
        guard count < 1 << 31 else { throw r.corrupted("\(count) \(what)s are more than a table holds (2^31)") }
        // Slots for them all, none placed yet: `placeAllSlots` fills them at the end.
        _ = resizeSlots(for: count)
        var scratch = [UInt8](repeating: 0, count: Self.maximumLength)
        for _ in 0..<count {
            let header = try r.unsigned(what + " header", max: UInt64(Self.maximumLength) << 1 | 1)
            let length = Int(header >> 1)
            if arena.isEmpty || arena[arena.count - 1].count + length >= Self.arenaChunk {
                guard arena.count < Self.maximumChunks else { throw r.corrupted("\(what)s hold more than 4 GiB") }
                var chunk = ContiguousArray<UInt8>()
                chunk.reserveCapacity(Self.arenaChunk)
                arena.append(chunk)
            }
            let chunk = arena.count - 1
            let offset = arena[chunk].count
            if header & 1 == 0 {
                try r.withRawBytes(what, max: Self.maximumLength, exactly: length) { arena[chunk].append(contentsOf: $0) }
            } else {
                let prefix = Int(try r.unsigned(what + " prefix length", max: UInt64(length)))
                guard (length - prefix) % 2 == 0, length - prefix >= 8 else {
                    throw r.corrupted("a packed \(what) of \(length) bytes has a prefix of \(prefix)")
                }
                try r.withRawBytes(what, max: Self.maximumLength, exactly: prefix) { arena[chunk].append(contentsOf: $0) }
                try r.withRawBytes(what, max: Self.maximumLength, exactly: (length - prefix) / 2) { packed in
                    // Unpacked into the scratch buffer, then appended at once.
                    scratch.withUnsafeMutableBufferPointer { out in
                        Self.hexDigits.withUnsafeBufferPointer { digits in
                            for (i, byte) in packed.enumerated() {
                                out[2 * i] = digits[Int(byte >> 4)]
                                out[2 * i + 1] = digits[Int(byte & 15)]
                            }
                        }
                        arena[chunk].append(contentsOf: UnsafeBufferPointer(rebasing: out[0..<2 * packed.count]))
                    }
                }
            }
            let id = UInt32(starts.count)
            starts.append(UInt32(chunk) << 16 | UInt32(offset))
            let ascii = arena[chunk].withUnsafeBytes { Self.isASCII(UnsafeRawBufferPointer(rebasing: $0[offset..<offset + length])) }
            if !ascii {
                let text = self.string(id)
                guard withBytes(id, { text.utf8.elementsEqual($0) }) else { throw r.corrupted("\(what) is not UTF-8") }
                guard Self.asciiEquivalent(of: text) == nil else { throw r.corrupted("\(what) is stored in a non-ASCII spelling of ASCII text") }
                guard nonASCII.updateValue(id, forKey: text) == nil else { throw r.corrupted("\(what) appears twice") }
            }
        }
        if let twice = placeAllSlots() { throw r.corrupted("\(what) appears twice (id \(twice))") }
    }


    /// Places every id's slot into an empty slot array sized for them, in the order of their
    /// home slots: ids are counted and then grouped by a run of 65536 home slots (256 KiB, in
    /// a core's L2 cache), so the probes walk the array once instead of missing the cache at
    /// random, and the grouping writes few enough streams to stay in L1. Returns an id whose
    /// bytes another id already holds, if any (nothing is placed after it).
    private mutating func placeAllSlots() -> UInt32? {
        let count = self.count
        let shift = 16
        let groups = (slotMask + 1) >> shift
        guard groups > 1, slotMask <= Int(UInt32.max) else {
            for id in 0..<UInt32(count) { if let twice = placeSlot(unless: id) { return twice } }
            return nil
        }
        var groupStarts = [Int](repeating: 0, count: groups + 1)
        for id in 0..<UInt32(count) {
            let home = Int(truncatingIfNeeded: withBytes(id) { Self.hash($0, seed) }) & slotMask
            groupStarts[(home >> shift) + 1] += 1
        }
        for group in 0..<groups { groupStarts[group + 1] += groupStarts[group] }
        // Per position in home order: the slot's hash bits and the home slot in one word
        // (the home fills the id's bits), and the id.
        let idMask = idMask
        var next = groupStarts
        let order = [UInt64](unsafeUninitializedCapacity: count) { order, written in
            for id in 0..<UInt32(count) {
                let hash = withBytes(id) { Self.hash($0, seed) }
                let home = Int(truncatingIfNeeded: hash) & slotMask
                let at = next[home >> shift]
                next[home >> shift] = at + 1
                order.initializeElement(at: at, to: UInt64(tagBits(hash) | UInt32(truncatingIfNeeded: home)) << 32 | UInt64(id))
            }
            written = count
        }
        for word in order {
            let homeAndTag = UInt32(truncatingIfNeeded: word >> 32)
            let id = UInt32(truncatingIfNeeded: word)
            if let twice = placeSlot(unless: id, tag: homeAndTag & ~idMask, home: Int(homeAndTag & idMask)) { return twice }
        }
        return nil
    }

    /// Places `id`'s slot, unless an id with the same bytes holds one: then returns the larger
    /// of the two ids (the repeat).
    private mutating func placeSlot(unless id: UInt32) -> UInt32? {
        let hash = withBytes(id) { Self.hash($0, seed) }
        return placeSlot(unless: id, tag: tagBits(hash), home: Int(truncatingIfNeeded: hash))
    }

    /// The probe both placements share: from `home`, the first empty slot, or the slot of an
    /// id with the same bytes.
    private mutating func placeSlot(unless id: UInt32, tag: UInt32, home: Int) -> UInt32? {
        let idMask = idMask
        var index = home & slotMask
        while true {
            let slot = slots[index]
            if slot == 0 { break }
            if slot & ~idMask == tag, withBytes(id, { equals(Int(slot & idMask) - 1, $0) }) {
                return max(id, (slot & idMask) - 1)
            }
            index = (index + 1) & slotMask
        }
        slots[index] = tag | (id + 1)
        return nil
    }
}
