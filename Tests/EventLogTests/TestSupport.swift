import Foundation
import Synchronization
import TallyTestSupport
import Testing
@testable import EventLog

#if canImport(Glibc)
import Glibc
#endif

// Shared helpers of the EventLog test suites: event builders, file surgery on segments and
// the batch layout of a segment. Temporary directories, waiting, processes and the seeded
// generator are TallyTestSupport's.

// MARK: - Deterministic randomness

/// `count` incompressible bytes determined by `seed`.
func noiseBytes(count: Int, seed: UInt64) -> [UInt8] {
    var rng = SplitMix64(seed: seed)
    var out = [UInt8]()
    out.reserveCapacity(count + 8)
    while out.count < count {
        withUnsafeBytes(of: rng.next()) { out.append(contentsOf: $0) }
    }
    return Array(out.prefix(count))
}

// MARK: - Events

func event(
    _ type: String = "Probe", payload: [UInt8], recordedAt: Int64? = nil, actor: String = "",
    correlation: String = "", causation: String = "", schema: UInt16 = 1
) -> ProposedEvent {
    ProposedEvent(type: type, schemaVersion: schema, recordedAt: recordedAt, actor: actor,
                  correlationID: correlation, causationID: causation, payload: payload)
}

/// A small event whose payload spells `text`.
func textEvent(_ text: String, type: String = "Probe") -> ProposedEvent {
    ProposedEvent(type: type, recordedAt: 1_000, payload: Array(text.utf8))
}

func text(_ event: RecordedEvent) -> String { String(decoding: event.payload, as: UTF8.self) }

/// A read ends early, without an error, when the task is cancelled (a suite's time limit):
/// that is thrown here, so no test goes on with a partial read and traps slicing by it.
func readAll(_ log: FileLog, from position: LogPosition = 1) async throws -> [RecordedEvent] {
    var events: [RecordedEvent] = []
    for try await event in log.read(from: position) { events.append(event) }
    try Task.checkCancellation()
    return events
}

/// Reads from `position` until the read throws; returns what came before and the error.
func readUntilError(_ log: FileLog, from position: LogPosition = 1) async -> ([RecordedEvent], (any Error)?) {
    var events: [RecordedEvent] = []
    do {
        for try await event in log.read(from: position) { events.append(event) }
        try Task.checkCancellation()
        return (events, nil)
    } catch {
        return (events, error)
    }
}

/// Microseconds since the epoch, the clock the writer stamps with.
func nowMicros() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1_000
}

// MARK: - Errors

/// Runs `body`, expecting it to throw an `EventLogError` with `code`; returns the error.
@discardableResult
func expectLogError(
    _ code: EventLogError.Code, _ comment: String = "", sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> Void
) async -> EventLogError? {
    do {
        try await body()
        Issue.record("expected EventLogError(\(code)), nothing was thrown. \(comment)", sourceLocation: sourceLocation)
        return nil
    } catch let error as EventLogError {
        #expect(error.code == code, "\(comment): \(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected EventLogError(\(code)), got \(error). \(comment)", sourceLocation: sourceLocation)
        return nil
    }
}

// MARK: - Files and segments

func readFile(_ path: String) throws -> [UInt8] {
    guard let data = FileManager.default.contents(atPath: path) else { throw TestFailure("cannot read \(path)") }
    return [UInt8](data)
}

func writeFile(_ path: String, _ bytes: some Collection<UInt8>) throws {
    guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else { throw TestFailure("cannot write \(path)") }
}

func fileExists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

func listDirectory(_ path: String) throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: path).sorted() }

func removeFile(_ path: String) throws { try FileManager.default.removeItem(atPath: path) }

func fileSize(_ path: String) throws -> Int { try readFile(path).count }

/// Segment file names of a log directory, in position order.
func segmentNames(_ directory: String) throws -> [String] {
    try SegmentNaming.segments(in: directory).map(\.name)
}

func indexName(_ segment: String) -> String { SegmentNaming.indexName(forSegment: segment) }

/// One batch as it sits in a segment file.
struct BatchInfo: Sendable {
    var offset: Int
    var header: BatchHeader
    var end: Int { offset + header.totalSize }
    var dataRange: Range<Int> { offset + BatchHeader.framedSize..<end }
}

/// Walks a segment's bytes header to header (trusting them: use on intact segments).
func batchLayout(_ bytes: [UInt8]) throws -> [BatchInfo] {
    var batches: [BatchInfo] = []
    var offset = 0
    while offset < bytes.count {
        let header = try bytes.withUnsafeBytes { all in
            try BatchHeader.parse(UnsafeRawBufferPointer(rebasing: all[offset..<min(all.count, offset + BatchHeader.framedSize)]))
        }
        batches.append(BatchInfo(offset: offset, header: header))
        offset += header.totalSize
    }
    guard offset == bytes.count else { throw TestFailure("segment ends inside a batch at \(offset)") }
    return batches
}

func batchLayout(ofSegment path: String) throws -> [BatchInfo] { try batchLayout(try readFile(path)) }

/// The raw (decompressed) envelopes of one batch of `segment`.
func rawEnvelopes(_ segment: [UInt8], _ batch: BatchInfo) throws -> [UInt8] {
    var raw = [UInt8](repeating: 0, count: Int(batch.header.rawLength))
    let decompressor = LZ4FrameDecompressor()
    try segment.withUnsafeBytes { all in
        try raw.withUnsafeMutableBytes { out in
            try decompressor.decompress(UnsafeRawBufferPointer(rebasing: all[batch.dataRange]), into: out)
        }
    }
    return raw
}

/// A value shared between a test and the tasks it starts.
final class Shared<Value: Sendable>: Sendable {
    private let storage: Mutex<Value>
    init(_ value: Value) { storage = Mutex(value) }
    var value: Value { storage.withLock { $0 } }
    func update<R: Sendable>(_ body: (inout Value) -> R) -> R { storage.withLock { body(&$0) } }
}
