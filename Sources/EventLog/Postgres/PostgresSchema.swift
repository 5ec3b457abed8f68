/// The PostgreSQL log's tables, as numbered migrations applied at start-up. Layout and the
/// reasons for it are in docs/log-format.md ("The PostgreSQL log").
///
/// Several servers may start at once: each takes a session advisory lock before reading
/// `tally_schema`, so migrations run exactly once and the others wait, then find them done.
enum PostgresSchema {
    /// An arbitrary constant naming Tally's migration lock among the database's advisory locks.
    static let migrationLock: Int64 = 0x7461_6C6C_795F_6D69  // "tally_mi"

    /// Migrations in order; the index + 1 is the version. Never edit one that shipped: add one.
    static let migrations: [String] = [
        """
        CREATE TABLE tally_head (
            id smallint PRIMARY KEY CHECK (id = 1),
            position bigint NOT NULL,
            chain_hash bytea NOT NULL
        );
        INSERT INTO tally_head VALUES (1, 0, '\\x0000000000000000000000000000000000000000000000000000000000000000');
        CREATE TABLE tally_batches (
            position bigint PRIMARY KEY,
            event_count integer NOT NULL CHECK (event_count > 0),
            raw_length integer NOT NULL,
            min_recorded_at_us bigint NOT NULL,
            max_recorded_at_us bigint NOT NULL,
            data_checksum integer NOT NULL,
            chain_hash bytea NOT NULL,
            idempotency_key text,
            frame bytea NOT NULL
        );
        ALTER TABLE tally_batches ALTER COLUMN frame SET STORAGE EXTERNAL;
        CREATE UNIQUE INDEX tally_batches_idempotency_key ON tally_batches (idempotency_key)
            WHERE idempotency_key IS NOT NULL;
        CREATE TABLE tally_streams (
            stream text NOT NULL,
            first_version bigint NOT NULL,
            last_version bigint NOT NULL,
            batch_position bigint NOT NULL,
            event_types text NOT NULL,
            recorded_at_us bigint NOT NULL,
            PRIMARY KEY (stream, first_version)
        );
        CREATE VIEW tally_stream_events AS
            SELECT s.stream, s.first_version, s.last_version, s.batch_position, s.event_types,
                   to_timestamp(s.recorded_at_us / 1e6) AS recorded_at
            FROM tally_streams s;
        """,
        // The Merkle tree index over events (docs/log-format.md, "Tree index"): derived data.
        """
        CREATE TABLE tally_merkle_nodes (
            node bigint PRIMARY KEY,
            hash bytea NOT NULL CHECK (octet_length(hash) = 32)
        );
        """,
    ]

    /// Brings the database to the newest schema; returns the version it found.
    @discardableResult
    static func migrate(_ connection: PGConnection) throws -> Int {
        try connection.query("SELECT pg_advisory_lock($1)", [.int64(migrationLock)])
        defer { _ = try? connection.query("SELECT pg_advisory_unlock($1)", [.int64(migrationLock)]) }
        try connection.execute("CREATE TABLE IF NOT EXISTS tally_schema (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
        let found = try connection.query("SELECT coalesce(max(version), 0)::bigint FROM tally_schema")
        let current = Int(try found.int64(0, 0))
        guard current <= migrations.count else {
            throw EventLogError(
                .invalidInput,
                "the PostgreSQL log's schema is version \(current), newer than this build knows (\(migrations.count)); upgrade tally"
            )
        }
        for version in (current + 1)..<(migrations.count + 1) {
            try connection.execute("BEGIN")
            do {
                try connection.execute(migrations[version - 1])
                try connection.query("INSERT INTO tally_schema (version) VALUES ($1)", [.int32(Int32(version))])
                try connection.execute("COMMIT")
            } catch {
                try? connection.execute("ROLLBACK")
                throw error
            }
        }
        return current
    }
}
