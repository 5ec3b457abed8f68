import Synchronization

/// Reads committed batches of a `FileLog` with positioned reads, keeping the current
/// segment open and the last decoded batch at hand. One per reader; not shared.
final class LogCursor {
    private let core: LogCore
    private var file: SystemFile?
    private let decompressor = LZ4FrameDecompressor()
    private var buffer: [UInt8] = []
    private var raw: [UInt8] = []
    private var cached: (first: LogPosition, events: [RecordedEvent])?

    init(core: LogCore) { self.core = core }

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
            if raw.count < Int(header.rawLength) { raw = [UInt8](repeating: 0, count: Int(header.rawLength)) }
            return try raw.withUnsafeMutableBytes { (r) throws -> [RecordedEvent] in
                let out = UnsafeMutableRawBufferPointer(rebasing: r[0..<Int(header.rawLength)])
                let frame = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(region)[BatchHeader.framedSize...])
                do {
                    try decompressor.decompress(frame, into: out)
                    return try EnvelopeCodec.decodeBatch(UnsafeRawBufferPointer(out), header: header)
                } catch {
                    throw EventLogError(.corrupted, "\(path): batch at byte \(location.offset), position \(location.firstPosition): \(EventLogError.wrapping(error).message)")
                }
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
public struct FileLogEvents: AsyncSequence, Sendable {
    public typealias Element = RecordedEvent
    public typealias Failure = any Error

    let core: LogCore
    let start: LogPosition
    let filter: EventFilter?
    let follow: Bool

    public func makeAsyncIterator() -> Iterator {
        Iterator(cursor: LogCursor(core: core), core: core, next: start, filter: filter, follow: follow)
    }

    /// Whole batches at a time, for consumers that fold many events (replay, projections).
    public var batches: Batches { Batches(events: self) }

    public struct Iterator: AsyncIteratorProtocol {
        let cursor: LogCursor
        let core: LogCore
        var next: LogPosition
        let filter: EventFilter?
        let follow: Bool
        var buffer: [RecordedEvent] = []
        var index = 0

        init(cursor: LogCursor, core: LogCore, next: LogPosition, filter: EventFilter?, follow: Bool) {
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
                if Task.isCancelled { return nil }
                if let (last, events) = try cursor.batch(containing: next, filter: filter) {
                    let skip = events.first.map { Int(next - $0.position) } ?? 0
                    next = last + 1
                    return skip == 0 ? events : Array(events[skip...])
                }
                guard follow else { return nil }
                guard await core.waitForCommit(beyond: next - 1) else { return nil }
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
