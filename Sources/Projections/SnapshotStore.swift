public import EventLog
import Dispatch

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A projection's fold state at a position, as read from a snapshot file: `payload` is the
/// state's bytes (the chunks joined), in `sections` sections.
public struct Snapshot: Sendable, Hashable {
    public var name: String
    public var version: Int
    public var position: LogPosition
    /// The recorded-at of the event at `position`; nil when `position` is 0.
    public var recordedAt: Int64?
    public var payload: [UInt8]
    public var sections: UInt32
    /// The largest recorded-at of the events folded in, when the writer recorded it (header
    /// flag bit 1): what lets a fold continued from here place as-of checkpoints by time.
    public var maxRecordedAt: Int64?

    public init(name: String, version: Int, position: LogPosition, recordedAt: Int64?, payload: [UInt8], sections: UInt32 = 0) {
        self.name = name
        self.version = version
        self.position = position
        self.recordedAt = recordedAt
        self.payload = payload
        self.sections = sections
    }
}

/// What reading one snapshot file found. A bad file is a reason, never a crash: the runner
/// then folds from the log instead.
public enum SnapshotFile: Sendable, Hashable {
    case missing
    case valid(Snapshot)
    case invalid(reason: String)
}

/// The snapshot a runner starts from, and why others were passed over.
public struct SnapshotLoad<P: Projection>: Sendable {
    /// The restored fold, or `P()` when no snapshot was usable.
    public var projection: P
    public var position: LogPosition
    public var recordedAt: Int64?
    /// The largest recorded-at folded in, when the snapshot recorded it.
    public var maxRecordedAt: Int64?
    /// The file used; nil when none was.
    public var file: String?
    /// The version of an otherwise valid snapshot of an older version of this projection,
    /// when one was passed over: the runner then reports `rebuilding`.
    public var olderVersion: Int?
    /// One line per file passed over, saying why.
    public var ignored: [String]
    /// An older version's snapshot whose state still decodes as `P` (the version changed
    /// the fold, not the state's shape): its view can be served while the new version
    /// rebuilds. Nil when there is none or it does not decode.
    public var previous: RebuiltProjection<P>?
}

/// Snapshots of projections in one directory: `<name>.snapshot` is the newest and
/// `<name>.snapshot.prev` the one before, kept so that a damaged newest file costs a short
/// catch-up instead of a full rebuild. Writes stream the state into a temporary file in
/// checksummed chunks, then fsync, rename and fsync the directory, so a crash leaves the old
/// file or the new one. The format (2, binary) is in docs/snapshot-format.md; files of
/// format 1 (JSON) or of another projection version are passed over with a reason.
public struct SnapshotStore: Sendable {
    public let directory: String

    /// Runners load at most two snapshots at a time (two cores' worth), waiting on their
    /// loading threads, never on the cooperative pool: each load holds its file's bytes and
    /// some scratch until it is decoded, so three at once would raise the peak memory of a
    /// cold start by a whole file for little gain in time.
    private static let loadPermits = DispatchSemaphore(value: 2)

    /// `body` once one of the `loadPermits` is free (blocks the calling thread until then:
    /// call it on a thread of its own).
    static func withLoadPermit<T>(_ body: () -> T) -> T {
        loadPermits.wait()
        defer { loadPermits.signal() }
        return body()
    }

    /// The directory is created on the first write.
    public init(directory: String) {
        self.directory = directory
    }

    public func path(for name: String) -> String { directory + "/" + name + ".snapshot" }
    public func previousPath(for name: String) -> String { path(for: name) + ".prev" }

    /// Writes `projection`'s state at `position` as the newest snapshot of its name and version.
    /// The state streams from `projection` to the file chunk by chunk; no encoded copy of
    /// the whole state is built.
    public func save<P: Projection>(_ projection: P, position: LogPosition, recordedAt: Int64?, maxRecordedAt: Int64? = nil) throws {
        try replace(name: P.name) { fd, temp in
            var writer = SnapshotWriter(fd: fd, path: temp, name: P.name, version: P.version, position: position, recordedAt: recordedAt,
                                        maxRecordedAt: maxRecordedAt)
            projection.writeSnapshot(to: &writer)
            _ = try writer.finish()
        }
    }

    /// The file `load` would read first: the newest snapshot of `name`, else the one before;
    /// nil when there is neither.
    public func existingFile(for name: String) -> String? {
        [path(for: name), previousPath(for: name)].first { access($0, F_OK) == 0 }
    }

    /// `P`'s state from a snapshot's bytes: every section read, nothing left over.
    public static func decodeState<P: Projection>(_: P.Type, from snapshot: Snapshot) throws -> P {
        try decodeState(P.self, reading: SnapshotReader(snapshot.payload, sections: snapshot.sections))
    }

    /// `P`'s state streamed from a checked file (`openFile`), one chunk at a time.
    static func decodeState<P: Projection>(_: P.Type, from chunks: SnapshotChunks) throws -> P {
        try decodeState(P.self, reading: SnapshotReader(streaming: chunks))
    }

    private static func decodeState<P: Projection>(_: P.Type, reading start: SnapshotReader) throws -> P {
        var reader = start
        let projection = try P(snapshot: &reader)
        try reader.finish()
        return projection
    }

    /// The newest usable snapshot for `P`: same name and version, intact, decodable; the
    /// previous file is tried when the newest is not usable. Each file is checked whole,
    /// then decoded as it is read again, so a load holds about one chunk of it.
    public func load<P: Projection>(_ type: P.Type) -> SnapshotLoad<P> {
        var result = SnapshotLoad<P>(projection: P(), position: 0, recordedAt: nil, maxRecordedAt: nil, file: nil, olderVersion: nil,
                                     ignored: [], previous: nil)
        for path in [path(for: P.name), previousPath(for: P.name)] {
            switch Self.openFile(atPath: path) {
            case .missing:
                continue
            case .invalid(let reason):
                result.ignored.append("\(path): \(reason)")
            case .valid(let chunks):
                let snapshot = chunks.framing
                guard snapshot.name == P.name else {
                    result.ignored.append("\(path): holds projection \"\(snapshot.name)\", not \"\(P.name)\"")
                    continue
                }
                guard snapshot.version == P.version else {
                    if snapshot.version < P.version {
                        result.olderVersion = max(result.olderVersion ?? snapshot.version, snapshot.version)
                        if result.previous == nil, let old = try? Self.decodeState(P.self, from: chunks) {
                            result.previous = RebuiltProjection(projection: old, position: snapshot.position, recordedAt: snapshot.recordedAt)
                        }
                    }
                    result.ignored.append("\(path): projection version \(snapshot.version), this build folds version \(P.version)")
                    continue
                }
                do {
                    result.projection = try Self.decodeState(P.self, from: chunks)
                } catch {
                    result.ignored.append("\(path): state does not decode: \(error)")
                    continue
                }
                result.position = snapshot.position
                result.recordedAt = snapshot.recordedAt
                result.maxRecordedAt = snapshot.maxRecordedAt
                result.file = path
                return result
            }
        }
        return result
    }

    /// Writes `snapshot` (an encoded state) atomically as `<name>.snapshot`, keeping the
    /// file it replaces as `<name>.snapshot.prev`.
    public func write(_ snapshot: Snapshot) throws {
        try replace(name: snapshot.name) { fd, temp in
            try Self.writeAll(fd, Self.encode(snapshot), path: temp)
        }
    }

    /// Runs `body` on a new temporary file, then makes it durable and renames it over
    /// `<name>.snapshot`, the old file becoming `<name>.snapshot.prev`.
    private func replace(name: String, _ body: (Int32, String) throws -> Void) throws {
        try Self.validate(name: name)
        try Self.writeDurably(path(for: name), in: directory, keepingOldAs: previousPath(for: name), body)
    }

    /// Runs `body` on a new temporary file next to `target`, fsyncs it, renames it over
    /// `target` (the old file first becoming `previous`, when given) and fsyncs the
    /// directory, so a crash leaves the old file or the new one, never a part.
    static func writeDurably(_ target: String, in directory: String, keepingOldAs previous: String?,
                             _ body: (Int32, String) throws -> Void) throws {
        try makeDirectories(directory)
        let temp = "\(target).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw systemError("open", temp) }
        var renamed = false
        defer { if !renamed { unlink(temp) } }
        do {
            try body(fd, temp)
            guard fsync(fd) == 0 else { throw systemError("fsync", temp) }
        } catch {
            close(fd)
            throw error
        }
        close(fd)
        if let previous, rename(target, previous) != 0, errno != ENOENT {
            throw systemError("rename", target)
        }
        guard rename(temp, target) == 0 else { throw systemError("rename", temp) }
        renamed = true
        let dir = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dir >= 0 else { throw systemError("open", directory) }
        defer { close(dir) }
        guard fsync(dir) == 0 else { throw systemError("fsync", directory) }
    }

    /// `mkdir -p`.
    static func makeDirectories(_ path: String) throws {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") {
            prefix += component
            if mkdir(prefix, 0o755) != 0, errno != EEXIST {
                throw ProjectionError(.io, "cannot create the snapshot directory \(path): mkdir \(prefix): \(String(cString: strerror(errno)))")
            }
            prefix += "/"
        }
    }

    /// Reads and checks one snapshot file, in time proportional to its bytes.
    public static func readFile(atPath path: String) -> SnapshotFile {
        readFile(atPath: path, kind: .snapshot)
    }

    /// Reads and checks one file of `kind`, in time proportional to its bytes.
    static func readFile(atPath path: String, kind: SnapshotFormat.Kind) -> SnapshotFile {
        let (fd, size): (Int32, Int)
        switch openSized(path) {
        case .opened(let file): (fd, size) = file
        case .missing: return .missing
        case .unreadable(let reason): return .invalid(reason: reason)
        }
        defer { close(fd) }
        var failed = false
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            while count < size {
                let n = read(fd, buffer.baseAddress! + count, size - count)
                if n < 0, errno == EINTR { continue }
                if n <= 0 { failed = n < 0; break }
                count += n
            }
        }
        if failed { return .invalid(reason: "cannot be read: \(String(cString: strerror(errno)))") }
        switch SnapshotFormat.decode(bytes, kind: kind) {
        case .success(let snapshot): return .valid(snapshot)
        case .failure(let error): return .invalid(reason: error.message)
        }
    }

    enum OpenedFile {
        case missing
        case valid(SnapshotChunks)
        case invalid(reason: String)
    }

    /// Checks one snapshot file whole, reading it in chunks, and keeps it open for decoding.
    static func openFile(atPath path: String) -> OpenedFile {
        let (fd, size): (Int32, Int)
        switch openSized(path) {
        case .opened(let file): (fd, size) = file
        case .missing: return .missing
        case .unreadable(let reason): return .invalid(reason: reason)
        }
        let framed = SnapshotFormat.frame(size: size, kind: .snapshot) { offset, count in
            try SnapshotChunks.read(fd, count: count, at: offset, path: path)[...]
        }
        switch framed {
        case .success(let framing): return .valid(SnapshotChunks(fd: fd, path: path, framing: framing))
        case .failure(let error):
            close(fd)
            return .invalid(reason: error.message)
        }
    }

    private enum SizedFile {
        case opened(fd: Int32, size: Int)
        case missing
        case unreadable(String)
    }

    /// `path` opened for reading, with its size; the caller closes it.
    private static func openSized(_ path: String) -> SizedFile {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            return errno == ENOENT ? .missing : .unreadable("cannot be opened: \(String(cString: strerror(errno)))")
        }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_size >= 0 else {
            close(fd)
            return .unreadable("cannot be read: fstat failed")
        }
        return .opened(fd: fd, size: Int(info.st_size))
    }

    /// Snapshot names become file names: 1–100 of `A-Z a-z 0-9 . _ -`, not starting with a dot.
    public static func validate(name: String) throws {
        let allowed = name.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2E || c == 0x5F || c == 0x2D
        }
        guard allowed, (1...100).contains(name.utf8.count), name.utf8.first != 0x2E else {
            throw ProjectionError(.invalidInput, "projection name \"\(name)\" cannot name a snapshot file: use 1-100 of A-Z a-z 0-9 . _ - not starting with a dot")
        }
    }

    /// The file for an already encoded state, in memory (tests and small tools; `save`
    /// streams instead).
    public static func encode(_ snapshot: Snapshot) -> [UInt8] {
        var writer = SnapshotWriter(fd: -1, path: "", name: snapshot.name, version: snapshot.version,
                                    position: snapshot.position, recordedAt: snapshot.recordedAt, maxRecordedAt: snapshot.maxRecordedAt)
        writer.raw(snapshot.payload)
        writer.sectionCount = snapshot.sections
        return (try? writer.finish()) ?? []
    }

    /// Checks the header, every chunk's length and checksum and the trailer; never traps.
    public static func decode(_ bytes: consuming [UInt8]) -> Result<Snapshot, ProjectionError> {
        SnapshotFormat.decode(bytes)
    }

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws {
        try bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = systemWrite(fd, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw systemError("write", path)
                }
                offset += written
            }
        }
    }

    static func systemError(_ call: String, _ path: String) -> ProjectionError {
        let code = errno
        return ProjectionError(.io, "\(call) \(path) failed: \(String(cString: strerror(code))) (errno \(code))")
    }
}

/// `write(2)`, out of reach of `SnapshotStore.write(_:)`'s name.
private func systemWrite(_ fd: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, bytes, count)
}
