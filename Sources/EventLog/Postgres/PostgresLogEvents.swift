/// Events of a `PostgresLog` from a position: to the head (`read`) or on, as they commit
/// (`subscribe`). Fetches pages of batch rows in position order while the caller decodes
/// the previous page.
///
/// Every row must start exactly where the previous one ended: a missing position is
/// reported as damage, never skipped. (The writers' head lock makes commit order equal
/// position order, so a snapshot never shows a later batch without the earlier ones.)
public struct PostgresLogEvents: EventSequence {
    public typealias Element = RecordedEvent
    public typealias Failure = any Error

    let pool: PGConnectionPool
    let notifier: PostgresNotifier
    let start: LogPosition
    let filter: EventFilter?
    let follow: Bool

    public func makeAsyncIterator() -> Iterator { Iterator(batches: batches.makeAsyncIterator()) }

    public var batches: Batches { Batches(events: self) }

    public struct Iterator: AsyncIteratorProtocol {
        var batches: Batches.Iterator
        var current: [RecordedEvent] = []
        var index = 0

        public mutating func next() async throws -> RecordedEvent? {
            while index == current.count {
                guard let batch = try await batches.next() else { return nil }
                current = batch
                index = 0
            }
            defer { index += 1 }
            return current[index]
        }
    }

    public struct Batches: AsyncSequence, Sendable {
        public typealias Element = [RecordedEvent]
        public typealias Failure = any Error
        let events: PostgresLogEvents

        public func makeAsyncIterator() -> Iterator { Iterator(events: events, next: Swift.max(1, events.start)) }

        public struct Iterator: AsyncIteratorProtocol {
            let events: PostgresLogEvents
            var next: LogPosition
            var rows: [PostgresBatchRow] = []
            var rowIndex = 0
            var prefetch: Task<[PostgresBatchRow], any Error>?
            let decompressor = LZ4FrameDecompressor()
            /// Rows per page: grows while pages come back full, bounded by bytes.
            var pageRows = 64

            init(events: PostgresLogEvents, next: LogPosition) {
                self.events = events
                self.next = next
            }

            public mutating func next() async throws -> [RecordedEvent]? {
                while true {
                    try Task.checkCancellation()
                    if rowIndex < rows.count {
                        let row = rows[rowIndex]
                        rowIndex += 1
                        if let batch = try take(row) { return batch }
                        continue
                    }
                    let page = try await fetchPage()
                    if page.isEmpty {
                        guard events.follow else { return nil }
                        guard await events.notifier.wait(beyond: next - 1) else { return nil }
                        continue
                    }
                    rows = page
                    rowIndex = 0
                    if page.count == pageRows {
                        let bytes = page.reduce(0) { $0 + $1.frame.count }
                        pageRows = bytes < 8 << 20 ? Swift.min(pageRows * 2, 4096) : Swift.max(1, pageRows / 2)
                        prefetch = startFetch(after: page.last!.header.lastPosition + 1)
                    }
                }
            }

            /// The page starting at `next`: the prefetched one when it matches.
            private mutating func fetchPage() async throws -> [PostgresBatchRow] {
                if let pending = prefetch {
                    prefetch = nil
                    let page = try await pending.value
                    if let first = page.first, first.header.firstPosition == next { return page }
                    if page.isEmpty, !events.follow { return page }
                }
                return try await Self.query(events.pool, from: next, rows: pageRows)
            }

            private func startFetch(after position: LogPosition) -> Task<[PostgresBatchRow], any Error> {
                let pool = events.pool
                let rows = pageRows
                return Task { try await Self.query(pool, from: position, rows: rows) }
            }

            static func query(_ pool: PGConnectionPool, from position: LogPosition, rows: Int) async throws -> [PostgresBatchRow] {
                try await pool.run { connection in
                    let result = try connection.query(
                        """
                        SELECT \(PostgresBatchRow.columns) FROM tally_batches
                        WHERE position >= coalesce((SELECT position FROM tally_batches WHERE position <= $1 ORDER BY position DESC LIMIT 1), $1)
                          AND position + event_count > $1
                        ORDER BY position LIMIT $2
                        """,
                        [.int64(Int64(bitPattern: position)), .int64(Int64(rows))]
                    )
                    return try (0..<result.rowCount).map { try PostgresBatchRow(result, row: $0) }
                }
            }

            /// The row's events from `next` on, filtered; nil when none is left.
            private mutating func take(_ row: PostgresBatchRow) throws -> [RecordedEvent]? {
                let header = row.header
                guard header.firstPosition <= next, header.lastPosition >= next else {
                    throw EventLogError(
                        .corrupted,
                        "the PostgreSQL log has no batch holding position \(next) (the next starts at \(header.firstPosition)); run `replay verify`"
                    )
                }
                let skip = Int(next - header.firstPosition)
                next = header.lastPosition + 1
                if let filter = events.filter, !filter.mayMatchBatch(minRecordedAt: header.minRecordedAt, maxRecordedAt: header.maxRecordedAt) {
                    return nil
                }
                var decoded = try row.decode(decompressor)
                if skip > 0 { decoded.removeFirst(skip) }
                if let filter = events.filter { decoded = decoded.filter(filter.matches) }
                return decoded.isEmpty ? nil : decoded
            }
        }
    }
}

