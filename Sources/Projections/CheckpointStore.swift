public import EventLog

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a checkpoint stands in the log, and what binds it to that log: the fingerprint of
/// the event at `position`, checked against the log before the checkpoint is used.
public struct CheckpointMark: Sendable, Hashable {
    /// Every event up to and including it is folded in; none after it.
    public var position: LogPosition
    /// The recorded-at of the event at `position`.
    public var recordedAt: Int64
    /// The largest recorded-at of the events 1...position; nil when not known (a fold that
    /// started from a snapshot without it). Event time is not monotonic in position, so a
    /// checkpoint answers "as of time T" only when this is before T.
    public var maxRecordedAt: Int64?
    /// `EventFingerprint.of` the event at `position`.
    public var fingerprint: UInt64

    public init(position: LogPosition, recordedAt: Int64, maxRecordedAt: Int64?, fingerprint: UInt64) {
        self.position = position
        self.recordedAt = recordedAt
        self.maxRecordedAt = maxRecordedAt
        self.fingerprint = fingerprint
    }

    /// The mark after folding up to `last`, with `maxRecordedAt` over everything folded.
    public init(after last: RecordedEvent, maxRecordedAt: Int64?) {
        self.init(position: last.position, recordedAt: last.recordedAt, maxRecordedAt: maxRecordedAt,
                  fingerprint: EventFingerprint.of(last))
    }
}

/// One checkpoint file as its name describes it; the name is only a hint for choosing: the
/// file's checked contents must agree with it before it is used.
public struct CheckpointEntry: Sendable, Hashable, Comparable {
    public var position: LogPosition
    public var maxRecordedAt: Int64?
    public var path: String

    public static func < (a: CheckpointEntry, b: CheckpointEntry) -> Bool { a.position < b.position }
}

/// A checkpoint read back and checked: the fold state of `P` at `mark`.
public struct Checkpoint<P: Projection>: Sendable {
    public var projection: P
    public var mark: CheckpointMark
}

/// Periodic checkpoints of projections' fold states, for answers as of any point: one file
/// per checkpoint in `DIR/checkpoints/<projection>/`, named
/// `<position, 20 digits>-<max recorded-at µs, or "none">.checkpoint`, so a directory listing
/// is enough to choose one. Each file is the snapshot framing (chunked, CRC-32C, streamed,
/// docs/snapshot-format.md) with the magic `TLYA` (as-of; the log's own active-segment checkpoint is `TLYC`): a binding section (the mark) and then the
/// projection's own snapshot sections, written by its one encoder.
public struct CheckpointStore: Sendable {
    /// The snapshot directory the checkpoints live under.
    public let snapshotDirectory: String

    public init(snapshotDirectory: String) {
        self.snapshotDirectory = snapshotDirectory
    }

    /// The binding section's tag, outside the projections' own tags (1...).
    static let bindingTag: UInt8 = 0xC1
    /// The number of values in the binding section.
    static let bindingValues = 3

    public func directory(for name: String) -> String { snapshotDirectory + "/checkpoints/" + name }

    public func path(for name: String, mark: CheckpointMark) -> String {
        directory(for: name) + "/" + Self.fileName(position: mark.position, maxRecordedAt: mark.maxRecordedAt)
    }

    static func fileName(position: LogPosition, maxRecordedAt: Int64?) -> String {
        let digits = String(position)
        let padded = String(repeating: "0", count: max(0, 20 - digits.count)) + digits
        return padded + "-" + (maxRecordedAt.map { String($0) } ?? "none") + ".checkpoint"
    }

    /// `(position, max recorded-at)` from a file name, nil for any other name.
    static func parse(fileName: String) -> (LogPosition, Int64?)? {
        guard fileName.hasSuffix(".checkpoint") else { return nil }
        let stem = fileName.dropLast(".checkpoint".count)
        let parts = stem.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].utf8.count == 20, parts[0].utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
              let position = LogPosition(parts[0]), position > 0 else { return nil }
        if parts[1] == "none" { return (position, nil) }
        guard let max = Int64(parts[1]) else { return nil }
        return (position, max)
    }

    /// The checkpoints of projection `name`, by position; an unreadable or missing directory
    /// has none. Files that are not checkpoints by name (temporaries) are left out.
    public func entries(for name: String) -> [CheckpointEntry] {
        let dir = directory(for: name)
        guard let handle = opendir(dir) else { return [] }
        defer { closedir(handle) }
        var entries: [CheckpointEntry] = []
        while let entry = readdir(handle) {
            let fileName = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard let (position, max) = Self.parse(fileName: fileName) else { continue }
            entries.append(CheckpointEntry(position: position, maxRecordedAt: max, path: dir + "/" + fileName))
        }
        return entries.sorted()
    }

    /// Writes `projection`'s state at `mark` durably (temporary file, fsync, rename, fsync of
    /// the directory), streaming it chunk by chunk; replaces any checkpoint at the same
    /// position. Returns the file's path.
    @discardableResult
    public func save<P: Projection>(_ projection: P, at mark: CheckpointMark) throws -> String {
        try SnapshotStore.validate(name: P.name)
        let dir = directory(for: P.name)
        let target = path(for: P.name, mark: mark)
        try SnapshotStore.writeDurably(target, in: dir, keepingOldAs: nil) { fd, temp in
            var writer = SnapshotWriter(fd: fd, path: temp, name: P.name, version: P.version, position: mark.position,
                                        recordedAt: mark.recordedAt, kind: .checkpoint)
            writer.section(Self.bindingTag, count: Self.bindingValues)
            writer.unsigned(mark.fingerprint)
            if let max = mark.maxRecordedAt {
                writer.byte(1)
                writer.signed(max)
            } else {
                writer.byte(0)
            }
            projection.writeSnapshot(to: &writer)
            _ = try writer.finish()
        }
        for other in entries(for: P.name) where other.position == mark.position && other.path != target {
            unlink(other.path)
        }
        return target
    }

    /// Reads `entry` back as a checkpoint of `P`: framing and checksums, name, version, the
    /// binding section against the file name, and every section of the state. Any failure
    /// is a reason, never a trap.
    public func load<P: Projection>(_ entry: CheckpointEntry, as _: P.Type) -> Result<Checkpoint<P>, ProjectionError> {
        func refuse(_ why: String) -> Result<Checkpoint<P>, ProjectionError> {
            .failure(ProjectionError(.corrupted, "checkpoint \(entry.path): \(why)"))
        }
        let snapshot: Snapshot
        switch SnapshotStore.readFile(atPath: entry.path, kind: .checkpoint) {
        case .missing: return refuse("is gone")
        case .invalid(let reason): return refuse(reason)
        case .valid(let valid): snapshot = valid
        }
        guard snapshot.name == P.name else { return refuse("holds projection \"\(snapshot.name)\", not \"\(P.name)\"") }
        guard snapshot.version == P.version else {
            return refuse("projection version \(snapshot.version), this build folds version \(P.version)")
        }
        guard snapshot.position == entry.position else {
            return refuse("holds position \(snapshot.position), its name says \(entry.position)")
        }
        guard let recordedAt = snapshot.recordedAt else { return refuse("has no recorded-at for its position") }
        var reader = SnapshotReader(snapshot.payload, sections: snapshot.sections)
        do {
            guard try reader.section(Self.bindingTag, minimumBytes: 1) == Self.bindingValues else {
                throw reader.corrupted("the binding section holds \(Self.bindingValues) values")
            }
            let fingerprint = try reader.unsigned("fingerprint")
            let max: Int64? = try reader.bool("max recorded-at present") ? try reader.signed("max recorded-at") : nil
            guard max == entry.maxRecordedAt else {
                throw reader.corrupted("max recorded-at \(max.map(String.init) ?? "none") differs from its name's")
            }
            let projection = try P(snapshot: &reader)
            try reader.finish()
            let mark = CheckpointMark(position: snapshot.position, recordedAt: recordedAt, maxRecordedAt: max, fingerprint: fingerprint)
            return .success(Checkpoint(projection: projection, mark: mark))
        } catch let error as ProjectionError {
            return refuse("state does not decode: \(error.message)")
        } catch {
            return refuse("state does not decode: \(error)")
        }
    }
}

/// A 64-bit FNV-1a digest of everything an event holds (position, stream, version, type,
/// schema, recorded-at, actor, ids, key, payload, each length-prefixed): what binds a
/// checkpoint to the log it was folded from. Not a defence against forgery, which needs write
/// access to the snapshot directory anyway; it tells another log (or a rewritten one) apart.
public enum EventFingerprint {
    public static func of(_ event: RecordedEvent) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        func mix(_ byte: UInt8) {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        func mix(_ value: UInt64) {
            for shift in stride(from: 0, to: 64, by: 8) { mix(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
        }
        func mix(_ bytes: some Collection<UInt8>) {
            mix(UInt64(bytes.count))
            for byte in bytes { mix(byte) }
        }
        mix(event.position)
        mix(event.streamVersion)
        mix(UInt64(bitPattern: event.recordedAt))
        mix(UInt64(event.schemaVersion))
        mix(event.stream.utf8)
        mix(event.type.utf8)
        mix(event.actor.utf8)
        mix(event.correlationID.utf8)
        mix(event.causationID.utf8)
        mix((event.idempotencyKey ?? "").utf8)
        event.withPayload { mix($0) }
        return hash
    }
}
