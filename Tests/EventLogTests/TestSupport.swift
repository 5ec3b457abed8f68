import Foundation
import Synchronization
import Testing
@testable import EventLog

#if canImport(Glibc)
import Glibc
#endif

// Shared helpers of the EventLog test suites: temporary directories, event builders, file
// surgery on segments, the batch layout of a segment, and running the `replay` binary.

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

// MARK: - Temporary directories

/// A fresh directory from mkdtemp under /tmp; `remove()` deletes it and everything in it.
struct TempDir: Sendable {
    let path: String

    init(_ label: String) throws {
        let safe = String(label.unicodeScalars.filter { CharacterSet.alphanumerics.contains($0) }.prefix(40))
        var template = Array("/tmp/tally-eventlog-\(safe)-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard let made else { throw TestFailure("mkdtemp failed: errno \(errno)") }
        path = String(cString: made)
    }

    func sub(_ name: String) -> String { path + "/" + name }

    /// Deletes the directory; retried, since a file that vanishes mid-walk (an index's
    /// temporary file renamed away) makes FileManager give up.
    func remove() {
        for _ in 0..<5 {
            try? FileManager.default.removeItem(atPath: path)
            if !FileManager.default.fileExists(atPath: path) { return }
            usleep(20_000)
        }
    }
}

/// Runs `body` with a unique temporary directory that is removed afterwards, pass or fail.
func withTempDir<T>(_ label: String = #function, _ body: (TempDir) async throws -> T) async throws -> T {
    let dir = try TempDir(label)
    defer { dir.remove() }
    return try await body(dir)
}

// MARK: - Deterministic randomness

/// SplitMix64: seeded, so every property test can be replayed from its printed seed.
struct SeededRandom: RandomNumberGenerator, Sendable {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// `count` incompressible bytes determined by `seed`.
func noiseBytes(count: Int, seed: UInt64) -> [UInt8] {
    var rng = SeededRandom(seed: seed)
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

func readAll(_ log: FileLog, from position: LogPosition = 1) async throws -> [RecordedEvent] {
    var events: [RecordedEvent] = []
    for try await event in log.read(from: position) { events.append(event) }
    return events
}

/// Reads from `position` until the read throws; returns what came before and the error.
func readUntilError(_ log: FileLog, from position: LogPosition = 1) async -> ([RecordedEvent], (any Error)?) {
    var events: [RecordedEvent] = []
    do {
        for try await event in log.read(from: position) { events.append(event) }
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

// MARK: - Polling

/// Polls `condition` every 5 ms for up to `seconds`; true once it holds. A liveness bound,
/// not a performance assertion.
func eventually(seconds: Double = 20, _ condition: () -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        try? await Task.sleep(nanoseconds: 5_000_000)
    }
    return condition()
}

/// A value shared between a test and the tasks it starts.
final class Shared<Value: Sendable>: Sendable {
    private let storage: Mutex<Value>
    init(_ value: Value) { storage = Mutex(value) }
    var value: Value { storage.withLock { $0 } }
    func update<R: Sendable>(_ body: (inout Value) -> R) -> R { storage.withLock { body(&$0) } }
}

// MARK: - Processes

/// The `replay` executable SwiftPM built beside the test bundle (the test target depends
/// on it). `TALLY_REPLAY_BIN` overrides.
func replayBinary() throws -> String {
    let fm = FileManager.default
    if let path = ProcessInfo.processInfo.environment["TALLY_REPLAY_BIN"], fm.isExecutableFile(atPath: path) { return path }
    var candidates: [String] = []
    if let exe = try? fm.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // Inside an .xctest bundle directory on other platforms: walk up a few levels.
        for _ in 0..<4 {
            candidates.append(dir.appendingPathComponent("replay").path)
            dir = dir.deletingLastPathComponent()
        }
    }
    candidates.append(fm.currentDirectoryPath + "/.build/debug/replay")
    for path in candidates where fm.isExecutableFile(atPath: path) { return path }
    throw TestFailure("cannot find the replay binary; looked at \(candidates)")
}

struct ProcessOutput: Sendable {
    var status: Int32
    var stdoutBytes: [UInt8]
    var stderr: String
    var stdout: String { String(decoding: stdoutBytes, as: UTF8.self) }
}

/// Runs `executable` to completion, capturing stdout and stderr.
func runProcess(_ executable: String, _ arguments: [String]) throws -> ProcessOutput {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    // Drain stderr on another thread so neither pipe can fill and block the child.
    let errData = Shared(Data())
    let errDone = DispatchSemaphore(value: 0)
    let errHandle = err.fileHandleForReading
    DispatchQueue.global().async {
        let data = errHandle.readDataToEndOfFile()
        errData.update { $0 = data }
        errDone.signal()
    }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    errDone.wait()
    return ProcessOutput(status: process.terminationStatus,
                         stdoutBytes: [UInt8](outData),
                         stderr: String(decoding: errData.value, as: UTF8.self))
}
