/// The tree index of a PostgreSQL log: `tally_merkle_nodes` (migration 2), one row per node
/// hash in the same MMR order as a `FileLog`'s `merkle.tree`. Rows are derived from the
/// events, so several processes filling the same range write the same rows
/// (`ON CONFLICT DO NOTHING`).
public final class PostgresMerkleNodes: MerkleNodeStorage, Sendable {
    private let pool: PGConnectionPool

    init(pool: PGConnectionPool) { self.pool = pool }

    public func count() async throws -> UInt64 {
        try await pool.run { connection in
            let result = try connection.query("SELECT coalesce(max(node) + 1, 0)::bigint FROM tally_merkle_nodes")
            return UInt64(try result.int64(0, 0))
        }
    }

    public func read(_ indices: [UInt64]) async throws -> [MerkleHash] {
        guard !indices.isEmpty else { return [] }
        let found: [UInt64: MerkleHash] = try await pool.run { connection in
            let result = try connection.query(
                "SELECT node, hash FROM tally_merkle_nodes WHERE node = ANY($1::text[]::bigint[])", [.textArray(indices.map { String($0) })]
            )
            var found: [UInt64: MerkleHash] = [:]
            for row in 0..<result.rowCount {
                guard let hash = MerkleHash(bytes: try result.bytes(row, 1)) else {
                    throw MerkleNodeDamage(node: UInt64(try result.int64(row, 0)), reason: "its tally_merkle_nodes row does not hold 32 bytes")
                }
                found[UInt64(try result.int64(row, 0))] = hash
            }
            return found
        }
        return try indices.map { index in
            guard let hash = found[index] else { throw MerkleNodeDamage(node: index, reason: "missing from tally_merkle_nodes") }
            return hash
        }
    }

    public func append(_ hashes: [MerkleHash]) async throws {
        guard !hashes.isEmpty else { return }
        let start = try await count()
        var bytes: [UInt8] = []
        bytes.reserveCapacity(hashes.count * 32)
        for hash in hashes { bytes.append(contentsOf: hash.bytes) }
        let data = bytes
        try await pool.run { connection in
            try connection.query(
                """
                INSERT INTO tally_merkle_nodes (node, hash)
                SELECT $1 + i, substring($2 FROM (i * 32 + 1)::int FOR 32) FROM generate_series(0::bigint, $3 - 1) AS i
                ON CONFLICT (node) DO NOTHING
                """,
                [.int64(Int64(start)), .bytes(data), .int64(Int64(hashes.count))]
            )
            return ()
        }
    }

    public func truncate(toCount count: UInt64) async throws {
        try await pool.run { connection in
            try connection.query("DELETE FROM tally_merkle_nodes WHERE node >= $1", [.int64(Int64(count))])
            return ()
        }
    }
}

extension PostgresLog {
    /// The storage of this log's Merkle tree index.
    public func merkleNodes() -> PostgresMerkleNodes { PostgresMerkleNodes(pool: pool) }
}
