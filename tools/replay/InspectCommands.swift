import ArgumentParser
import EventLog
import Events

#if canImport(Glibc)
import Glibc
#endif

/// `replay inspect` and `replay export`: events as the JSON lines `EventLine` defines (the
/// same lines `replay import` and the audit endpoint read), or as CSV.

struct InspectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Print events as JSON lines, filtered by stream, type, position and time.",
        discussion: """
            One event per line: position, stream, version, type, schema_version, recorded_at \
            (ISO 8601 UTC), actor, correlation_id, causation_id, idempotency_key (when set), \
            data (null for an event this build cannot read, which then carries "opaque"). \
            --stream reads the stream's index, not the whole log. --type takes the catalogue's \
            types; an unknown one is refused (exit 64) unless --allow-unknown-type, for events \
            this build cannot read. \(RangeOptions.vocabulary) Exit 2 when the log cannot be read.
            """
    )

    @OptionGroup var target: LogOption
    @OptionGroup var range: RangeOptions
    @Option(help: "Only this stream (e.g. user-42).") var stream: String?
    @Option(help: "Only events of this type; repeat for several.") var type: [String] = []
    @Flag(help: "Accept a --type outside this build's catalogue (events it shows as opaque).") var allowUnknownType = false
    @Option(help: "Print at most this many events.") var limit: Int?

    func validate() throws {
        _ = try selection()
    }

    func selection() throws -> EventSelection {
        var s = try range.selection()
        s.stream = stream
        if !allowUnknownType {
            let unknown = type.filter { EventType(rawValue: $0) == nil }
            if !unknown.isEmpty {
                throw ValidationError("""
                    unknown event type \(unknown.joined(separator: ", ")); the types are \
                    \(EventType.allCases.map(\.rawValue).joined(separator: ", ")) \
                    (add --allow-unknown-type for a type this build cannot read)
                    """)
            }
        }
        s.types = type.isEmpty ? nil : Set(type)
        if let limit, limit < 0 { throw ValidationError("--limit must be 0 or more") }
        s.limit = limit
        return s
    }

    func run() async throws {
        var output = LineOutput(descriptor: 1)
        do {
            try await execute(into: &output)
        } catch {
            try? output.flush()  // the events read before a damaged batch are still printed
            throw error
        }
        try output.flush()
    }

    /// Does the work of `run`, writing into `output` (tests collect it in memory).
    func execute(into output: inout LineOutput) async throws {
        let store = try target.open()
        try await EventSelection.writing(target) {
            try await selection().forEach(in: store) { event in
                EventLine.render(event, into: &output.buffer)
                try output.flushIfFull()
            }
        }
    }
}

struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write every event, up to a time or position, as JSON lines or CSV.",
        discussion: """
            jsonl: exactly the lines `replay inspect` prints, which `replay import` reads back. \
            csv (RFC 4180): a header row, then one row per event with one column per envelope \
            field, the data as JSON text and, for an event this build cannot read, the opaque \
            object as JSON. \(RangeOptions.vocabulary) Exit 2 when the log cannot be read.
            """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case jsonl, csv
    }

    @OptionGroup var target: LogOption
    @OptionGroup var range: RangeOptions
    @Option(help: "jsonl or csv.") var format: Format = .jsonl

    func validate() throws {
        _ = try selection()
    }

    func selection() throws -> EventSelection {
        try range.selection()
    }

    func run() async throws {
        var output = LineOutput(descriptor: 1)
        do {
            try await execute(into: &output)
        } catch {
            try? output.flush()  // the events read before a damaged batch are still printed
            throw error
        }
        try output.flush()
    }

    func execute(into output: inout LineOutput) async throws {
        let store = try target.open()
        let selection = try selection()
        let head = try await store.head().position
        let progress = Progress(label: "export", total: min(selection.untilPosition ?? head, head))
        defer { progress.finish() }
        if format == .csv {
            CSV.appendRow(EventLine.keys, to: &output.buffer)
        }
        try await EventSelection.writing(target) {
            try await write(selection, from: store, into: &output, progress: progress)
        }
    }

    /// Events per rendering task: enough that a task's overhead is noise.
    static let chunkEvents = 4_096
    /// Chunks read ahead of the one being written, which bounds the memory held.
    static let chunksInFlight = 4

    /// Reads the selected events on this task and renders them a chunk at a time on child
    /// tasks, so both cores render while the read goes on; chunks are written in order.
    /// (Once the log is open, rendering is nearly all of export's cost.)
    func write(_ selection: EventSelection, from store: any EventStore, into output: inout LineOutput, progress: Progress) async throws {
        let format = format
        try await withThrowingTaskGroup(of: (Int, [UInt8]).self) { group in
            var submitted = 0
            var written = 0
            var finished: [Int: [UInt8]] = [:]
            var lastPosition: LogPosition = 0
            func submit(_ chunk: [RecordedEvent]) {
                let index = submitted
                group.addTask { (index, Self.render(chunk, format)) }
                submitted += 1
                lastPosition = chunk.last?.position ?? lastPosition
            }
            /// Waits for one chunk, then writes every chunk that is next in order.
            func drain() async throws {
                guard let (index, bytes) = try await group.next() else { return }
                finished[index] = bytes
                while let ready = finished.removeValue(forKey: written) {
                    output.buffer.append(contentsOf: ready)
                    written += 1
                    try output.flushIfFull()
                }
                progress.update(lastPosition)
            }
            var chunk: [RecordedEvent] = []
            chunk.reserveCapacity(Self.chunkEvents)
            reading: for try await batch in store.read(from: selection.fromPosition, filter: selection.filter).batches {
                var last = false
                for event in batch {
                    if let untilPosition = selection.untilPosition, event.position > untilPosition { break reading }
                    if selection.selects(event) { chunk.append(event) }
                    if let untilPosition = selection.untilPosition, event.position >= untilPosition { last = true }
                }
                if last {
                    // Stop without reading the batch after --until-position (possibly a damaged one).
                    break reading
                }
                if chunk.count >= Self.chunkEvents {
                    submit(chunk)
                    chunk.removeAll(keepingCapacity: true)
                    while submitted - written > Self.chunksInFlight { try await drain() }
                }
            }
            if !chunk.isEmpty { submit(chunk) }
            while written < submitted { try await drain() }
        }
    }

    static func render(_ events: [RecordedEvent], _ format: Format) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(events.count * 320)
        var scratch: [UInt8] = []
        for event in events {
            switch format {
            case .jsonl: EventLine.render(event, into: &bytes)
            case .csv: EventLine.renderCSV(event, into: &bytes, scratch: &scratch)
            }
        }
        return bytes
    }
}

/// Which events a command reads, and the one loop that reads them.
struct EventSelection {
    var stream: String?
    var types: Set<String>?
    var fromPosition: LogPosition = 1
    /// Inclusive.
    var untilPosition: LogPosition?
    /// Inclusive lower bound of recorded-at, µs.
    var since: Int64?
    /// Exclusive upper bound of recorded-at, µs.
    var until: Int64?
    var limit: Int?

    static func time(_ text: String, option: String) throws -> Int64 {
        do {
            return try EventTime.parseISO8601(text, field: option)
        } catch let error as DomainError {
            throw ValidationError(error.message)
        }
    }

    /// Runs `body`, turning a read failure of the log into exit 2 with its reason. Errors
    /// writing the output are reported as such.
    static func writing(_ target: LogOption, _ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as OutputError {
            printError("cannot write the output: \(error)")
            throw ReplayExit.unreadable
        } catch {
            throw target.unreadable("cannot read the log at \(target.name)", error)
        }
    }

    /// Whether `event` is selected, bar `untilPosition` (where a scan stops) and `limit`.
    func selects(_ event: RecordedEvent) -> Bool {
        if event.position < fromPosition { return false }
        if let since, event.recordedAt < since { return false }
        if let until, event.recordedAt >= until { return false }
        if let types, !types.contains(event.type) { return false }
        return true
    }

    /// What the log may skip whole batches by, without decompressing them.
    var filter: EventFilter { EventFilter(types: types, since: since, until: until) }

    /// Calls `body` with each selected event in position order; returns how many. A stream
    /// is read through its index a page at a time; otherwise the log is scanned from
    /// `fromPosition`, skipping batches outside the time range without decompressing them.
    @discardableResult
    func forEach(in store: any EventStore, _ body: (RecordedEvent) throws -> Void) async throws -> Int {
        var count = 0
        if let limit, limit == 0 { return 0 }
        func accept(_ event: RecordedEvent) throws -> Bool {
            if let untilPosition, event.position > untilPosition { return false }
            // Stop at --until-position itself, without reading the batch after it (which may
            // be the damaged one of a log whose intact prefix is asked for).
            let last = untilPosition.map { event.position >= $0 } ?? false
            guard selects(event) else { return !last }
            try body(event)
            count += 1
            if let limit, count >= limit { return false }
            return !last
        }
        if let stream {
            var version: UInt64 = 0
            while true {
                let page = try await store.readStream(stream, fromVersion: version, limit: 4_096)
                for event in page {
                    guard try accept(event) else { return count }
                }
                if page.count < 4_096 { return count }
                version += UInt64(page.count)
            }
        }
        for try await batch in store.read(from: fromPosition, filter: filter).batches {
            for event in batch {
                guard try accept(event) else { return count }
            }
        }
        return count
    }
}

struct OutputError: Error, CustomStringConvertible {
    var description: String
}

/// Output lines gathered in a buffer and written with one write(2) per MiB, or kept in
/// memory (`descriptor` nil) for tests.
struct LineOutput {
    var buffer: [UInt8] = []
    let descriptor: Int32?
    static let flushThreshold = 1 << 20

    init(descriptor: Int32?) {
        self.descriptor = descriptor
        buffer.reserveCapacity(descriptor == nil ? 0 : Self.flushThreshold + (64 << 10))
    }

    /// True when it wrote.
    @discardableResult
    mutating func flushIfFull() throws -> Bool {
        guard descriptor != nil, buffer.count >= Self.flushThreshold else { return false }
        try flush()
        return true
    }

    mutating func flush() throws {
        guard let descriptor, !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(descriptor, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw OutputError(description: String(cString: strerror(errno))) }
                offset += n
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }

    var text: String { String(decoding: buffer, as: UTF8.self) }
}

/// The CSV header row (RFC 4180, CRLF); the rows are `EventLine.renderCSV`.
enum CSV {
    static func appendRow(_ fields: [String], to bytes: inout [UInt8]) {
        for (i, field) in fields.enumerated() {
            if i > 0 { bytes.append(UInt8(ascii: ",")) }
            CSVText.appendField(field, to: &bytes)
        }
        bytes.append(contentsOf: [0x0D, 0x0A])
    }
}
