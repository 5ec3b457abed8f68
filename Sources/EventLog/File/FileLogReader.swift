import Synchronization

/// Reads committed batches of a `FileLog` with positioned reads, keeping the current
/// segment open and the last decoded batch at hand. One per reader. It is used by one
/// task at a time: a reader's read-ahead task is always awaited before the reader touches
/// the cursor again, hence `@unchecked Sendable`.
final class FileLogCursor: @unchecked Sendable {
    private let core: FileLogCore
    private var file: SystemFile?
    private let decompressor = LZ4FrameDecompressor()
    private var buffer: [UInt8] = []
    private var cached: (first: LogPosition, events: [RecordedEvent])?

    init(core: FileLogCore) { self.core = core }

    /// The committed batch holding `position`, decoded, or nil when `position` is past the
    /// head. With a filter whose time range misses the batch, returns its range and no
    /// events, without decompressing.
    func batch(containing position: LogPosition, filter: EventFilter? = nil) throws -> (last: LogPosition, events: [RecordedEvent])? {
        guard let (location, path) = core.state.withLock({ $0.locate(position) }) else { return nil }
        if let cached, cached.first == location.firstPosition { return (location.lastPosition, cached.events) }
        if file?.path != path {
            file = try SystemFile.open(path, writable: false)
        }
        let total = location.totalSize
        if buffer.count < total { buffer = [UInt8](repeating: 0, count: total) }
        let file = file!
        let events = try buffer.withUnsafeMutableBytes { (b) throws -> [RecordedEvent]? in
            let region = UnsafeMutableRawBufferPointer(rebasing: b[0..<total])
            try file.read(into: region, at: location.offset)
            let header = try BatchHeader.parse(UnsafeRawBufferPointer(region))
            guard header.firstPosition == location.firstPosition, header.dataLength == location.dataLength,
                  header.eventCount == location.eventCount else {
                throw EventLogError(.corrupted, "\(path): batch at byte \(location.offset) is not the batch the index names (position \(location.firstPosition))")
            }
            if let filter, !filter.mayMatchBatch(minRecordedAt: header.minRecordedAt, maxRecordedAt: header.maxRecordedAt) {
                return nil
            }
            let frame = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(region)[BatchHeader.framedSize...])
            do {
                return try decompressor.decodeBatch(frame: frame, header: header)
            } catch {
                throw EventLogError(.corrupted, "\(path): batch at byte \(location.offset), position \(location.firstPosition): \(EventLogError.wrapping(error).message)")
            }
        }
        guard let events else { return (location.lastPosition, []) }
        cached = (location.firstPosition, events)
        return (location.lastPosition, events)
    }

    func event(at position: LogPosition) throws -> RecordedEvent? {
        guard let (_, events) = try batch(containing: position), let first = events.first?.position else { return nil }
        let index = Int(position - first)
        return index < events.count ? events[index] : nil
    }
}

/// Events of a `FileLog` from a position: to the head (`read`) or on, as they commit
/// (`subscribe`). Reads a batch at a time; each iterator has its own cursor.
public struct FileLogEvents: EventSequence {
    public typealias Element = RecordedEvent
    public typealias Failure = any Error

    let core: FileLogCore
    let start: LogPosition
    let filter: EventFilter?
    let follow: Bool

    public func makeAsyncIterator() -> Iterator {
        Iterator(cursor: FileLogCursor(core: core), core: core, next: start, filter: filter, follow: follow)
    }

    /// Whole batches at a time, for consumers that fold many events (replay, projections).
    public var batches: Batches { Batches(events: self) }

    public struct Iterator: AsyncIteratorProtocol {
        let cursor: FileLogCursor
        let core: FileLogCore
        var next: LogPosition
        let filter: EventFilter?
        let follow: Bool
        var buffer: [RecordedEvent] = []
        var index = 0
        /// Large batches ahead of `next`, decoding on other threads while the caller works
        /// (each with its own cursor), in position order.
        var readAhead: [(task: Task<(last: LogPosition, events: [RecordedEvent])?, any Error>, cursor: FileLogCursor)] = []
        var spareCursors: [FileLogCursor] = []
        /// The first position not yet handed to a read-ahead task.
        var planned: LogPosition = 0
        /// Batches handed out. Reading ahead starts with the second: a reader that wants a
        /// few events (a proof's chunk, a page) stops within one batch, and a read-ahead it
        /// never takes still decodes two whole batches on the other core (for a proof on a log
        /// of 20,000-event batches, two thirds of its work).
        var handedOut = 0
        static let readAheadDepth = 2
        /// Smaller batches are decoded inline: a task would cost more than it saves.
        static let readAheadMinimumEvents: UInt32 = 256

        init(cursor: FileLogCursor, core: FileLogCore, next: LogPosition, filter: EventFilter?, follow: Bool) {
            self.cursor = cursor
            self.core = core
            self.next = next
            self.filter = filter
            self.follow = follow
        }

        public mutating func next() async throws -> RecordedEvent? {
            while true {
                while index < buffer.count {
                    let event = buffer[index]
                    index += 1
                    if let filter, !filter.matches(event) { continue }
                    return event
                }
                guard let batch = try await nextBatch() else { return nil }
                buffer = batch
                index = 0
            }
        }

        /// The next batch's events from `next` on (possibly empty when filtered out), or nil
        /// at the end.
        mutating func nextBatch() async throws -> [RecordedEvent]? {
            while true {
                if Task.isCancelled {
                    for pending in readAhead { pending.task.cancel() }
                    return nil
                }
                let fetched: (last: LogPosition, events: [RecordedEvent])?
                if !readAhead.isEmpty {
                    let pending = readAhead.removeFirst()
                    fetched = try await pending.task.value
                    spareCursors.append(pending.cursor)
                } else {
                    fetched = try cursor.batch(containing: next, filter: filter)
                }
                if let (last, events) = fetched {
                    let skip = events.first.map { Int(next - $0.position) } ?? 0
                    next = last + 1
                    handedOut += 1
                    if handedOut >= 2 { scheduleReadAhead() }
                    return skip == 0 ? events : Array(events[skip...])
                }
                guard follow else { return nil }
                guard await core.commits.wait(until: next) else { return nil }
            }
        }

        /// Starts decoding the large committed batches after `next`, up to the read-ahead depth.
        private mutating func scheduleReadAhead() {
            if readAhead.isEmpty { planned = next }
            while readAhead.count < Self.readAheadDepth {
                guard let (location, _) = core.state.withLock({ $0.locate(planned) }),
                      location.eventCount >= Self.readAheadMinimumEvents else { return }
                let reader = spareCursors.popLast() ?? FileLogCursor(core: core)
                let (position, filter) = (planned, filter)
                readAhead.append((Task { try reader.batch(containing: position, filter: filter) }, reader))
                planned = location.lastPosition + 1
            }
        }
    }

    public struct Batches: AsyncSequence, Sendable {
        public typealias Element = [RecordedEvent]
        public typealias Failure = any Error
        let events: FileLogEvents

        public func makeAsyncIterator() -> Iterator { Iterator(inner: events.makeAsyncIterator()) }

        public struct Iterator: AsyncIteratorProtocol {
            var inner: FileLogEvents.Iterator

            public mutating func next() async throws -> [RecordedEvent]? {
                while let batch = try await inner.nextBatch() {
                    guard let filter = inner.filter else { return batch }
                    let kept = batch.filter(filter.matches)
                    if !kept.isEmpty { return kept }
                }
                return nil
            }
        }
    }
}
