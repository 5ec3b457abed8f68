import ArgumentParser
import EventLog
import Events

#if canImport(Glibc)
import Glibc
#endif

extension ReplayExit {
    /// The input file holds invalid lines (sysexits' EX_DATAERR).
    static let invalidInput = ExitCode(65)
}

struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Append events from JSON lines of the export format, in large batches.",
        discussion: """
            Reads the lines `replay export --format jsonl` writes into --log (a data directory is \
            created if missing). Positions and stream versions \
            are reassigned; recorded_at, stream, type, schema version, actor, correlation and \
            causation ids and the payload are kept, and so are idempotency keys: the events of \
            one keyed append of the source are appended together with that key (a key the log \
            already holds writes nothing and counts as deduplicated). Order is kept exactly. \
            Every line is checked; a bad line is reported on stderr as `line N: reason`. \
            Without --skip-invalid the lines before the first bad one are written and nothing \
            from it on (the rest of the file is still checked and reported). Prints a JSON \
            summary. Exit 0 when every line was imported or skipped, 65 when a bad line stopped \
            the import, 2 when the file or the log cannot be read or written.
            """
    )

    @OptionGroup var target: LogOption
    @Argument(help: "The JSON lines file.") var file: String
    @Flag(help: "Skip and report bad lines instead of stopping at the first.") var skipInvalid = false
    @Option(help: "Events per append batch.") var batch = 10_000

    func validate() throws {
        guard batch > 0, batch <= 1_000_000 else { throw ValidationError("--batch must be 1...1,000,000") }
    }

    func run() async throws {
        let summary = try await execute()
        print(summary.json.rendered)
        if summary.firstInvalidLine != nil && !skipInvalid { throw ReplayExit.invalidInput }
    }

    /// Does the work of `run` and returns the summary instead of printing it (tests call this).
    /// `reportInvalid` gets each bad line's number and reason (number 0: a closing note).
    func execute(reportInvalid: @escaping (Int, String) -> Void = { printError($0 > 0 ? "line \($0): \($1)" : $1) }) async throws -> ImportSummary {
        let input: LineFile
        do {
            input = try LineFile(path: file)
        } catch {
            printError("cannot read \(file): \(error)")
            throw ReplayExit.unreadable
        }
        defer { input.release() }
        let (store, head) = try await target.openAtHead(writable: true)
        var importer = EventImporter(store: store, head: head, batchSize: batch, skipInvalid: skipInvalid, reportInvalid: reportInvalid)
        let summary: ImportSummary
        do {
            summary = try await importer.run(input)
        } catch {
            try? await store.close()
            printError("import into \(target.name) failed: \(error)")
            throw ReplayExit.unreadable
        }
        do {
            try await store.close()  // syncs what fsync .never left unsynced
        } catch {
            printError("cannot close the log at \(target.name): \(error)")
            throw ReplayExit.unreadable
        }
        return summary
    }
}

struct ImportSummary: Sendable {
    var lines = 0
    /// Events written.
    var events = 0
    /// Bad lines passed over with --skip-invalid.
    var skipped = 0
    var invalidLines = 0
    var firstInvalidLine: Int?
    /// Events not written because the log already held their idempotency key.
    var deduplicated = 0
    var seconds = 0.0
    var headPosition: LogPosition = 0

    var json: JSONObject {
        var out = JSONObject()
        out.set("events", events)
        out.set("seconds", seconds)
        out.set("events_per_second", seconds > 0 ? Double(events) / seconds : 0, decimals: 0)
        out.set("skipped", skipped)
        out.set("lines", lines)
        out.set("invalid_lines", invalidLines)
        if let firstInvalidLine { out.set("first_invalid_line", firstInvalidLine) }
        out.set("deduplicated", deduplicated)
        out.set("head_position", headPosition)
        return out
    }
}

struct ImportError: Error, CustomStringConvertible {
    var description: String
}

/// Parses lines into events and appends them in order. A batch is cut into appends of
/// distinct streams (the log takes a stream once per append) and runs of one idempotency
/// key; they are queued back to back with `Task.immediate`, which enqueues each before the
/// next starts, so the writer commits them as one batch and positions follow the file.
/// Two batches are queued at a time, so the writer always has the next one while this
/// task parses the one after.
struct EventImporter {
    let store: any EventStore
    let batchSize: Int
    let skipInvalid: Bool
    let reportInvalid: (Int, String) -> Void
    static let maxReports = 100
    static let maxAppendBytes = 16 << 20

    /// One append: streams distinct (runs of one stream merged), one idempotency key or none.
    private struct Round {
        var appends: [StreamAppend] = []
        var key: String?
        var events = 0
        var bytes = 0
    }

    /// The round being filled, and the streams it holds.
    private var current = Round()
    private var currentStreams: Set<String> = []
    /// Closed rounds of the batch being filled, and their events.
    private var closed: [Round] = []
    private var closedEvents = 0
    /// Full batches waiting to be queued.
    private var ready: [[Round]] = []
    /// Queued appends, by batch, oldest first; at most `pipelineDepth` batches.
    private var inFlight: [[(task: Task<AppendResult, any Error>, events: Int)]] = []
    static let pipelineDepth = 2
    private var nextPosition: LogPosition
    private var summary = ImportSummary()
    /// A bad line was seen without --skip-invalid: nothing from it on is written.
    private var stopped = false
    private let progress = Progress(label: "import")

    init(store: any EventStore, head: LogPosition, batchSize: Int, skipInvalid: Bool, reportInvalid: @escaping (Int, String) -> Void) {
        self.store = store
        self.batchSize = batchSize
        self.skipInvalid = skipInvalid
        self.reportInvalid = reportInvalid
        nextPosition = head + 1
    }

    mutating func run(_ input: LineFile) async throws -> ImportSummary {
        let started = monotonicSeconds()
        var input = input
        while let chunk = try input.nextChunk() {
            for part in await Self.parse(chunk) {
                for (number, parsed) in part {
                    summary.lines = max(summary.lines, number)
                    switch parsed {
                    case .event(let event): if !stopped { add(event) }
                    case .blank: break
                    case .bad(let reason): invalid(number, reason)
                    }
                }
            }
            try await queueReadyBatches()
        }
        closeRound()
        cutBatch()
        try await queueReadyBatches()
        while !inFlight.isEmpty { try await awaitOldestBatch() }
        progress.finish()
        if summary.invalidLines > Self.maxReports {
            reportInvalid(0, "… and \(summary.invalidLines - Self.maxReports) more bad lines not shown")
        }
        summary.seconds = monotonicSeconds() - started
        summary.headPosition = nextPosition - 1
        return summary
    }

    /// What one line gave.
    enum Parsed: Sendable {
        case event(ImportedEvent)
        case blank
        case bad(String)
    }

    static let parseWorkers = max(1, min(4, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))))

    /// The chunk's lines parsed in order, split over the cores: parsing is most of the work
    /// on this side of the log, and lines are independent.
    static func parse(_ chunk: [LineFile.Line]) async -> [[(Int, Parsed)]] {
        let parts = chunk.count < 1_024 ? 1 : parseWorkers
        let size = (chunk.count + parts - 1) / max(1, parts)
        let lines = UncheckedLines(lines: chunk)
        let total = chunk.count
        return await withTaskGroup(of: (Int, [(Int, Parsed)]).self) { group in
            for part in 1..<max(1, parts) {
                group.addTask { (part, parse(lines.lines[min(total, part * size)..<min(total, (part + 1) * size)])) }
            }
            var results = [[(Int, Parsed)]](repeating: [], count: max(1, parts))
            results[0] = parse(chunk[0..<min(chunk.count, size)])
            for await (part, parsed) in group { results[part] = parsed }
            return results
        }
    }

    static func parse(_ lines: ArraySlice<LineFile.Line>) -> [(Int, Parsed)] {
        var out: [(Int, Parsed)] = []
        out.reserveCapacity(lines.count)
        for line in lines {
            switch line {
            case .tooLong(let number):
                out.append((number, .bad("longer than \(EventLine.maxLineBytes) bytes")))
            case .text(let raw, let number):
                var bytes = raw
                if bytes.last == 0x0D { bytes = UnsafeRawBufferPointer(rebasing: bytes.dropLast()) }
                if bytes.isEmpty {
                    out.append((number, .blank))
                    continue
                }
                do {
                    out.append((number, .event(try EventLine.parse(bytes))))
                } catch {
                    out.append((number, .bad("\(error)")))
                }
            }
        }
        return out
    }

    private mutating func invalid(_ number: Int, _ reason: String) {
        summary.lines = max(summary.lines, number)
        summary.invalidLines += 1
        if summary.firstInvalidLine == nil { summary.firstInvalidLine = number }
        if summary.invalidLines <= Self.maxReports { reportInvalid(number, reason) }
        if skipInvalid { summary.skipped += 1 } else { stopped = true }
    }

    /// Adds an event to the open round, or closes it and opens another when the event's key
    /// differs or its stream already appears earlier in the round. A batch is cut only
    /// between rounds, so the events of one key stay in one append.
    private mutating func add(_ event: consuming ImportedEvent) {
        let continues = current.events > 0 && event.idempotencyKey == current.key && current.bytes < Self.maxAppendBytes
            && (current.appends[current.appends.count - 1].stream == event.stream || !currentStreams.contains(event.stream))
        if !continues {
            closeRound()
            if closedEvents >= batchSize { cutBatch() }
            current.key = event.idempotencyKey
        }
        current.events += 1
        current.bytes += 128 + event.stream.utf8.count + event.event.payload.count
        if let last = current.appends.indices.last, current.appends[last].stream == event.stream {
            current.appends[last].events.append(event.event)
        } else {
            currentStreams.insert(event.stream)
            current.appends.append(StreamAppend(stream: event.stream, expected: .any, events: [event.event]))
        }
        if current.key == nil && closedEvents + current.events >= batchSize {
            closeRound()
            cutBatch()
        }
    }

    private mutating func closeRound() {
        guard current.events > 0 else { return }
        closedEvents += current.events
        closed.append(current)
        current = Round()
        currentStreams.removeAll(keepingCapacity: true)
    }

    private mutating func cutBatch() {
        guard !closed.isEmpty else { return }
        ready.append(closed)
        closed = []
        closedEvents = 0
    }

    /// Queues the full batches, each once fewer than `pipelineDepth` batches are in flight.
    private mutating func queueReadyBatches() async throws {
        let batches = ready
        ready = []
        for batch in batches {
            while inFlight.count >= Self.pipelineDepth { try await awaitOldestBatch() }
            inFlight.append([])
            for round in batch { try await start(round.appends, key: round.key, events: round.events) }
        }
    }

    /// Queues one append without waiting for it (where `Task.immediate` exists); otherwise
    /// appends and waits.
    private mutating func start(_ appends: [StreamAppend], key: String?, events: Int) async throws {
        let store = store
        if #available(macOS 26.0, *) {
            inFlight[inFlight.count - 1].append((Task.immediate { try await store.append(appends, idempotencyKey: key) }, events))
        } else {
            try record(try await store.append(appends, idempotencyKey: key), events: events)
        }
    }

    private mutating func awaitOldestBatch() async throws {
        var failure: (any Error)?
        for (task, events) in inFlight.removeFirst() {
            do {
                try record(try await task.value, events: events)
            } catch {
                failure = failure ?? error
            }
        }
        if let failure { throw failure }
        progress.update(nextPosition - 1)
    }

    private mutating func record(_ result: AppendResult, events: Int) throws {
        if result.deduplicated {
            summary.deduplicated += events
            return
        }
        guard result.positions.lowerBound == nextPosition else {
            throw ImportError(description: "events landed at position \(result.positions.lowerBound), expected \(nextPosition): another writer, or an append out of order")
        }
        nextPosition = result.positions.upperBound + 1
        summary.events += events
    }
}

/// Lines of the current chunk, handed to parsing tasks that all finish before the chunk's
/// buffer is reused.
struct UncheckedLines: @unchecked Sendable {
    let lines: [LineFile.Line]
}

/// A file read in 4 MiB chunks and split into lines on bytes; a line may span chunks.
struct LineFile {
    enum Line {
        case text(UnsafeRawBufferPointer, number: Int)
        case tooLong(number: Int)
    }

    static let chunkSize = 4 << 20
    private let descriptor: Int32
    private let storage: UnsafeMutableRawBufferPointer
    private var filled = 0
    private var consumed = 0
    private var lineNumber = 0
    private var skippingLongLine = false
    private var atEOF = false

    init(path: String) throws {
        descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw ImportError(description: String(cString: strerror(errno))) }
        storage = .allocate(byteCount: Self.chunkSize + EventLine.maxLineBytes, alignment: 16)
    }

    func release() {
        _ = close(descriptor)
        storage.deallocate()
    }

    /// The complete lines of the next read (valid until the next call), or nil at the end.
    mutating func nextChunk() throws -> [Line]? {
        guard !atEOF else { return nil }
        // Keep the partial last line of the previous chunk at the front.
        let tail = filled - consumed
        if tail > 0 && consumed > 0 { storage.baseAddress!.copyMemory(from: storage.baseAddress! + consumed, byteCount: tail) }
        filled = tail
        consumed = 0
        if filled == storage.count {
            // A line longer than the buffer: report it once and drop bytes to its end.
            filled = 0
            if skippingLongLine { return [] }
            lineNumber += 1
            skippingLongLine = true
            return [.tooLong(number: lineNumber)]
        }
        var n: Int
        repeat {
            n = read(descriptor, storage.baseAddress! + filled, storage.count - filled)
        } while n < 0 && errno == EINTR
        guard n >= 0 else { throw ImportError(description: String(cString: strerror(errno))) }
        filled += n
        var lines: [Line] = []
        let base = storage.baseAddress!
        var start = 0
        while start < filled, let found = memchr(base + start, 0x0A, filled - start) {
            let end = base.distance(to: found)
            if skippingLongLine {
                skippingLongLine = false
            } else {
                lineNumber += 1
                lines.append(.text(UnsafeRawBufferPointer(start: base + start, count: end - start), number: lineNumber))
            }
            start = end + 1
        }
        consumed = start
        if n == 0 {
            atEOF = true
            if start < filled && !skippingLongLine {
                lineNumber += 1
                lines.append(.text(UnsafeRawBufferPointer(start: base + start, count: filled - start), number: lineNumber))
            }
            consumed = filled
        }
        return lines
    }
}
