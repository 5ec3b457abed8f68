public import EventLog
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A projection's fold state at a position, as stored in a snapshot file.
public struct Snapshot: Sendable, Hashable {
    public var name: String
    public var version: Int
    public var position: LogPosition
    /// The recorded-at of the event at `position`; nil when `position` is 0.
    public var recordedAt: Int64?
    public var payload: [UInt8]

    public init(name: String, version: Int, position: LogPosition, recordedAt: Int64?, payload: [UInt8]) {
        self.name = name
        self.version = version
        self.position = position
        self.recordedAt = recordedAt
        self.payload = payload
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
/// catch-up instead of a full rebuild. Writes are atomic and durable (temporary file,
/// fsync, rename, fsync of the directory), so a crash leaves the old file or the new one.
///
/// File format, little-endian: "TLYS", format version u16 (1), name length u16, projection
/// version i64, position u64, recorded-at i64, flags u32 (bit 0: recorded-at present),
/// payload length u64, payload CRC-32C u32, header CRC-32C u32 (over the 48 bytes before it
/// and the name); then the name (UTF-8), then the payload.
public struct SnapshotStore: Sendable {
    public let directory: String

    static let magic: [UInt8] = Array("TLYS".utf8)
    static let formatVersion: UInt16 = 1
    static let fixedHeaderSize = 52

    /// The directory is created on the first write.
    public init(directory: String) {
        self.directory = directory
    }

    public func path(for name: String) -> String { directory + "/" + name + ".snapshot" }
    public func previousPath(for name: String) -> String { path(for: name) + ".prev" }

    /// Writes `projection`'s state at `position` as the newest snapshot of its name and version.
    public func save<P: Projection>(_ projection: P, position: LogPosition, recordedAt: Int64?) throws {
        try write(Snapshot(name: P.name, version: P.version, position: position, recordedAt: recordedAt,
                           payload: try projection.snapshotBytes()))
    }

    /// The newest usable snapshot for `P`: same name and version, intact, decodable; the
    /// previous file is tried when the newest is not usable.
    public func load<P: Projection>(_ type: P.Type) -> SnapshotLoad<P> {
        var result = SnapshotLoad<P>(projection: P(), position: 0, recordedAt: nil, file: nil, olderVersion: nil, ignored: [], previous: nil)
        for path in [path(for: P.name), previousPath(for: P.name)] {
            switch Self.readFile(atPath: path) {
            case .missing:
                continue
            case .invalid(let reason):
                result.ignored.append("\(path): \(reason)")
            case .valid(let snapshot):
                guard snapshot.name == P.name else {
                    result.ignored.append("\(path): holds projection \"\(snapshot.name)\", not \"\(P.name)\"")
                    continue
                }
                guard snapshot.version == P.version else {
                    if snapshot.version < P.version {
                        result.olderVersion = max(result.olderVersion ?? snapshot.version, snapshot.version)
                        if result.previous == nil, let old = try? P(snapshotBytes: snapshot.payload) {
                            result.previous = RebuiltProjection(projection: old, position: snapshot.position, recordedAt: snapshot.recordedAt)
                        }
                    }
                    result.ignored.append("\(path): projection version \(snapshot.version), this build folds version \(P.version)")
                    continue
                }
                do {
                    result.projection = try P(snapshotBytes: snapshot.payload)
                } catch {
                    result.ignored.append("\(path): payload does not decode: \(error)")
                    continue
                }
                result.position = snapshot.position
                result.recordedAt = snapshot.recordedAt
                result.file = path
                return result
            }
        }
        return result
    }

    /// Writes `snapshot` atomically as `<name>.snapshot`, keeping the file it replaces as
    /// `<name>.snapshot.prev`.
    public func write(_ snapshot: Snapshot) throws {
        try Self.validate(name: snapshot.name)
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw ProjectionError(.io, "cannot create the snapshot directory \(directory): \(error)")
        }
        let target = path(for: snapshot.name)
        let temp = "\(target).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let bytes = Self.encode(snapshot)
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Self.systemError("open", temp) }
        var renamed = false
        defer { if !renamed { unlink(temp) } }
        do {
            try Self.writeAll(fd, bytes, path: temp)
            guard fsync(fd) == 0 else { throw Self.systemError("fsync", temp) }
        } catch {
            close(fd)
            throw error
        }
        close(fd)
        if rename(target, previousPath(for: snapshot.name)) != 0, errno != ENOENT {
            throw Self.systemError("rename", target)
        }
        guard rename(temp, target) == 0 else { throw Self.systemError("rename", temp) }
        renamed = true
        let dir = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dir >= 0 else { throw Self.systemError("open", directory) }
        defer { close(dir) }
        guard fsync(dir) == 0 else { throw Self.systemError("fsync", directory) }
    }

    /// Reads and checks one snapshot file.
    public static func readFile(atPath path: String) -> SnapshotFile {
        guard FileManager.default.fileExists(atPath: path) else { return .missing }
        guard let data = FileManager.default.contents(atPath: path) else { return .invalid(reason: "cannot be read") }
        switch decode([UInt8](data)) {
        case .success(let snapshot): return .valid(snapshot)
        case .failure(let error): return .invalid(reason: error.message)
        }
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

    public static func encode(_ snapshot: Snapshot) -> [UInt8] {
        let name = Array(snapshot.name.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(fixedHeaderSize + name.count + snapshot.payload.count)
        out.append(contentsOf: magic)
        func put<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) } }
        put(formatVersion)
        put(UInt16(truncatingIfNeeded: name.count))
        put(Int64(snapshot.version))
        put(snapshot.position)
        put(snapshot.recordedAt ?? 0)
        put(UInt32(snapshot.recordedAt == nil ? 0 : 1))
        put(UInt64(snapshot.payload.count))
        put(SnapshotCRC32C.checksum(snapshot.payload[...]))
        put(SnapshotCRC32C.checksum(name[...], continuing: SnapshotCRC32C.checksum(out[...])))
        out.append(contentsOf: name)
        out.append(contentsOf: snapshot.payload)
        return out
    }

    /// Checks every length against the bytes at hand and both checksums; never traps.
    public static func decode(_ bytes: [UInt8]) -> Result<Snapshot, ProjectionError> {
        func bad(_ why: String) -> Result<Snapshot, ProjectionError> { .failure(ProjectionError(.corrupted, why)) }
        func read<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
            var value: T = 0
            for i in (0..<MemoryLayout<T>.size).reversed() { value = value << 8 | T(truncatingIfNeeded: bytes[offset + i]) }
            return value
        }
        guard bytes.count >= fixedHeaderSize else {
            return bad("truncated: \(bytes.count) bytes, the header alone needs \(fixedHeaderSize)")
        }
        guard bytes[0..<4].elementsEqual(magic) else { return bad("not a snapshot file (bad magic)") }
        let format = read(UInt16.self, at: 4)
        guard format == formatVersion else { return bad("snapshot format \(format) is not supported (expected \(formatVersion))") }
        let nameLength = Int(read(UInt16.self, at: 6))
        guard nameLength >= 1, nameLength <= bytes.count - fixedHeaderSize else {
            return bad("name length \(nameLength) does not fit in \(bytes.count) bytes")
        }
        let nameEnd = fixedHeaderSize + nameLength
        let headerCRC = SnapshotCRC32C.checksum(bytes[fixedHeaderSize..<nameEnd], continuing: SnapshotCRC32C.checksum(bytes[0..<48]))
        guard headerCRC == read(UInt32.self, at: 48) else { return bad("header checksum mismatch") }
        let flags = read(UInt32.self, at: 32)
        guard flags & ~1 == 0 else { return bad("unknown flags \(flags)") }
        let payloadLength = read(UInt64.self, at: 36)
        guard payloadLength == UInt64(bytes.count - nameEnd) else {
            return bad("payload length \(payloadLength) but \(bytes.count - nameEnd) bytes follow the header")
        }
        guard let name = String(validating: bytes[fixedHeaderSize..<nameEnd], as: UTF8.self) else {
            return bad("name is not UTF-8")
        }
        let payload = Array(bytes[nameEnd...])
        guard SnapshotCRC32C.checksum(payload[...]) == read(UInt32.self, at: 44) else { return bad("payload checksum mismatch") }
        let version = read(Int64.self, at: 8)
        guard let intVersion = Int(exactly: version) else { return bad("version \(version) out of range") }
        let position = read(UInt64.self, at: 16)
        let recordedAt = flags & 1 == 1 ? read(Int64.self, at: 24) : nil
        return .success(Snapshot(name: name, version: intVersion, position: position, recordedAt: recordedAt, payload: payload))
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

    private static func systemError(_ call: String, _ path: String) -> ProjectionError {
        let code = errno
        return ProjectionError(.io, "\(call) \(path) failed: \(String(cString: strerror(code))) (errno \(code))")
    }
}

/// `write(2)`, out of reach of `SnapshotStore.write(_:)`'s name.
private func systemWrite(_ fd: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, bytes, count)
}

/// CRC-32C (Castagnoli), a byte at a time: snapshots are written every minute or so, so the
/// simple table is fast enough and keeps this module free of EventLog's internals.
enum SnapshotCRC32C {
    static let table: [UInt32] = (0..<256).map { index in
        var crc = UInt32(index)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        return crc
    }

    /// The CRC of `bytes`; pass the CRC of earlier bytes as `continuing` to extend it.
    static func checksum(_ bytes: ArraySlice<UInt8>, continuing seed: UInt32 = 0) -> UInt32 {
        var crc = ~seed
        table.withUnsafeBufferPointer { t in
            bytes.withUnsafeBufferPointer { b in
                for byte in b { crc = t[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
            }
        }
        return ~crc
    }
}
