#if canImport(Glibc)
import Glibc
#endif

/// Where a `MerkleTreeIndex` keeps its node hashes: an append-only array of hashes in
/// Merkle-mountain-range order (docs/log-format.md, "Tree index"). A file beside a `FileLog`'s
/// segments, a table in PostgreSQL, or memory (tests, read-only logs); the one extension point.
public protocol MerkleNodeStorage: Sendable {
    /// Hashes stored (every one readable).
    func count() async throws -> UInt64
    /// The hashes at `indices` (each < `count()`), in the order asked.
    func read(_ indices: [UInt64]) async throws -> [MerkleHash]
    /// Appends `hashes` at index `count()`, durably, as one step: after a crash either all of
    /// them are there or a prefix the next open finds (records are checksummed).
    func append(_ hashes: [MerkleHash]) async throws
    /// Drops every hash from index `count` on (damage found, or a log cut shorter).
    func truncate(toCount count: UInt64) async throws
}

/// A stored node that cannot be read back as written (checksum, length, missing row): the
/// index drops it and everything after, and rebuilds them from the events.
public struct MerkleNodeDamage: Error, CustomStringConvertible {
    public var node: UInt64
    public var reason: String
    public var description: String { "tree node \(node): \(reason)" }
}

/// Node hashes in memory: for tests, and for a log opened read-only with no tree file.
public final class MemoryMerkleNodes: MerkleNodeStorage, @unchecked Sendable {
    private let hashes = Locked<[MerkleHash]>([])

    public init() {}

    public func count() -> UInt64 { UInt64(hashes.withLock { $0.count }) }

    public func read(_ indices: [UInt64]) throws -> [MerkleHash] {
        try hashes.withLock { all in
            try indices.map { index in
                guard index < UInt64(all.count) else { throw MerkleNodeDamage(node: index, reason: "not stored") }
                return all[Int(index)]
            }
        }
    }

    public func append(_ new: [MerkleHash]) { hashes.withLock { $0.append(contentsOf: new) } }

    public func truncate(toCount count: UInt64) {
        hashes.withLock { if UInt64($0.count) > count { $0.removeLast($0.count - Int(count)) } }
    }

    /// Replaces one stored hash (tests: damage the index without the checksum noticing).
    public func overwrite(_ index: UInt64, with hash: MerkleHash) { hashes.withLock { $0[Int(index)] = hash } }
}

/// The tree index file (`merkle.tree`): a 32-byte header, then 36-byte records, each a node
/// hash and a CRC-32C over the hash and its record index, so a torn or moved record is found.
public final class FileMerkleNodes: MerkleNodeStorage, @unchecked Sendable {
    static let magic: UInt32 = 0x4D59_4C54  // "TLYM"
    static let version: UInt16 = 1
    static let headerSize = 32
    static let recordSize = 36

    public let path: String
    private let file: SystemFile
    private let stored = Locked<UInt64>(0)

    /// Opens (and, when `writable`, creates) the file; a trailing partial or damaged record
    /// is ignored and, when writable, cut.
    public init(path: String, writable: Bool, chunkLevel: Int) throws {
        self.path = path
        let exists = Directory.exists(path)
        guard exists || writable else { throw EventLogError(.io, "no tree index at \(path)") }
        file = try SystemFile.open(path, writable: writable, create: writable)
        var size = try file.size()
        let header = size < Self.headerSize ? [] : try file.read(count: Self.headerSize, at: 0)
        if header != Self.header(chunkLevel: chunkLevel) {
            // Short, damaged or of another version: derived data, so start it again.
            guard writable else {
                throw EventLogError(.corrupted, "tree index \(path) has no valid header (\(size) bytes); open the log writable and it is rebuilt from the events")
            }
            try file.truncate(to: 0)
            try Self.header(chunkLevel: chunkLevel).withUnsafeBytes { try file.write([$0], at: 0) }
            size = Self.headerSize
        }
        var records = UInt64((size - Self.headerSize) / Self.recordSize)
        // A valid count ends a whole chunk: 2c − popcount(c) for some chunk count c.
        while records > 0, MerkleTreeIndex.chunks(forNodeCount: records) == nil { records -= 1 }
        if records > 0, (try? readRecords([records - 1])) == nil {
            records = MerkleTreeIndex.previousValidCount(below: records)
        }
        if writable, size != Self.headerSize + Int(records) * Self.recordSize {
            try file.truncate(to: Self.headerSize + Int(records) * Self.recordSize)
        }
        stored.withLock { $0 = records }
    }

    static func header(chunkLevel: Int) -> [UInt8] {
        var w = ByteWriter(capacity: headerSize)
        w.writeLE(magic)
        w.writeLE(version)
        w.writeLE(UInt16(chunkLevel))
        w.bytes.append(contentsOf: [UInt8](repeating: 0, count: 20))
        let crc = w.bytes.withUnsafeBytes { CRC32C.checksum($0) }
        w.writeLE(crc)
        return w.bytes
    }

    static func recordCRC(_ hash: MerkleHash, _ index: UInt64) -> UInt32 {
        var bytes = hash.bytes
        withUnsafeBytes(of: index.littleEndian) { bytes.append(contentsOf: $0) }
        return bytes.withUnsafeBytes { CRC32C.checksum($0) }
    }

    public func count() -> UInt64 { stored.withLock { $0 } }

    public func read(_ indices: [UInt64]) throws -> [MerkleHash] {
        let count = count()
        for index in indices where index >= count { throw MerkleNodeDamage(node: index, reason: "not stored in \(path)") }
        return try readRecords(indices)
    }

    private func readRecords(_ indices: [UInt64]) throws -> [MerkleHash] {
        var record = [UInt8](repeating: 0, count: Self.recordSize)
        return try indices.map { index in
            try record.withUnsafeMutableBytes { try file.read(into: $0, at: Self.headerSize + Int(index) * Self.recordSize) }
            let hash = MerkleHash(bytes: record[0..<32])!
            let crc = UInt32(record[32]) | UInt32(record[33]) << 8 | UInt32(record[34]) << 16 | UInt32(record[35]) << 24
            guard crc == Self.recordCRC(hash, index) else {
                throw MerkleNodeDamage(node: index, reason: "record fails its checksum in \(path)")
            }
            return hash
        }
    }

    public func append(_ hashes: [MerkleHash]) throws {
        guard !hashes.isEmpty else { return }
        let start = count()
        var bytes: [UInt8] = []
        bytes.reserveCapacity(hashes.count * Self.recordSize)
        for (i, hash) in hashes.enumerated() {
            bytes.append(contentsOf: hash.bytes)
            withUnsafeBytes(of: Self.recordCRC(hash, start + UInt64(i)).littleEndian) { bytes.append(contentsOf: $0) }
        }
        try bytes.withUnsafeBytes { try file.write([$0], at: Self.headerSize + Int(start) * Self.recordSize) }
        try file.syncData()
        stored.withLock { $0 = start + UInt64(hashes.count) }
    }

    public func truncate(toCount count: UInt64) throws {
        guard count < self.count() else { return }
        try file.truncate(to: Self.headerSize + Int(count) * Self.recordSize)
        stored.withLock { $0 = count }
    }
}
