public import EventLog

/// `IntervalRows` on disk: `<name>.rows` beside `<name>.snapshot`, written after each
/// snapshot with its position and read only with the snapshot it was written with (same
/// projection, version, position and recorded-at), so the rows always continue the state
/// the runner continues. The file is the snapshot format (header, checksummed chunks,
/// trailer) of kind "interval rows": a header section, then one row per element.
extension SnapshotStore {
    enum RowsSection: UInt8 {
        case header = 1, rows
    }

    public func rowsPath(for name: String) -> String { directory + "/" + name + ".rows" }

    /// Writes `rows` of `P` at the snapshot `position`, replacing the file.
    public func saveRows<P: Projection>(_ rows: IntervalRows<P.View>, of _: P.Type, recordedAt: Int64?,
                                        options: IntervalRowsOptions<P.View>) throws {
        try Self.validate(name: P.name)
        try Self.writeDurably(rowsPath(for: P.name), in: directory, keepingOldAs: nil) { fd, temp in
            var w = SnapshotWriter(fd: fd, path: temp, name: P.name, version: P.version, position: rows.position, recordedAt: recordedAt,
                                   kind: .intervalRows)
            w.section(RowsSection.header.rawValue, count: 0)
            w.signed(rows.every)
            w.optional(rows.maxRecordedAt)
            w.bool(rows.fromStart)
            w.optional(rows.earliest)
            w.section(RowsSection.rows.rawValue, count: rows.rows.count)
            for row in rows.rows {
                w.signed(row.until)
                w.unsigned(row.position)
                options.write(row.view, &w)
            }
            _ = try w.finish()
        }
    }

    /// The rows written with the snapshot at `position` (recorded-at `recordedAt`), or why
    /// there are none to use. A missing file is `.failure` with a nil reason.
    public func loadRows<P: Projection>(_: P.Type, position: LogPosition, recordedAt: Int64?, options: IntervalRowsOptions<P.View>)
        -> Result<IntervalRows<P.View>, RowsRefusal> {
        let path = rowsPath(for: P.name)
        let snapshot: Snapshot
        switch Self.readFile(atPath: path, kind: .intervalRows) {
        case .missing: return .failure(RowsRefusal(reason: nil))
        case .invalid(let reason): return .failure(RowsRefusal(reason: "\(path): \(reason)"))
        case .valid(let file): snapshot = file
        }
        guard snapshot.name == P.name, snapshot.version == P.version, snapshot.position == position, snapshot.recordedAt == recordedAt else {
            return .failure(RowsRefusal(reason: "\(path): written with \(snapshot.name) version \(snapshot.version) at position "
                    + "\(snapshot.position), not with the snapshot loaded (\(P.name) version \(P.version) at \(position)); rows start again"))
        }
        do {
            var r = SnapshotReader(snapshot.payload, sections: snapshot.sections)
            _ = try r.section(RowsSection.header.rawValue, minimumBytes: 0)
            let every = try r.signed("interval")
            guard every == options.every else { throw r.corrupted("rows every \(every) µs, this server keeps every \(options.every) µs") }
            let maxRecordedAt = try r.optionalSigned("largest recorded-at")
            let fromStart = try r.bool("from the start")
            let earliest = try r.optionalSigned("earliest recorded-at")
            let count = try r.section(RowsSection.rows.rawValue, minimumBytes: 3)
            var rows: [AsOfRow<P.View>] = []
            rows.reserveCapacity(min(count, options.kept + options.kept / 8))
            for _ in 0..<count {
                let until = try r.signed("row end")
                let at = try r.unsigned("row position")
                guard until % every == 0, rows.last.map({ $0.until < until }) ?? true, at <= position else {
                    throw r.corrupted("row until \(until) at position \(at) is not a later multiple of \(every) at or before \(position)")
                }
                rows.append(AsOfRow(until: until, position: at, view: try options.read(&r)))
            }
            try r.finish()
            return .success(IntervalRows(every: every, kept: options.kept, position: position, maxRecordedAt: maxRecordedAt, fromStart: fromStart,
                                         earliest: earliest, rows: Array(rows.suffix(options.kept)), emptyView: P().makeView()))
        } catch {
            return .failure(RowsRefusal(reason: "\(path): \(error); rows start again"))
        }
    }
}

/// Why a rows file was not used; `reason` nil when there was none.
public struct RowsRefusal: Error, Sendable {
    public var reason: String?
}

extension SnapshotWriter {
    mutating func optional(_ value: Int64?) {
        if let value {
            byte(1)
            signed(value)
        } else {
            byte(0)
        }
    }
}

extension SnapshotReader {
    mutating func optionalSigned(_ what: @autoclosure () -> String) throws -> Int64? {
        try bool("\(what()) present") ? try signed(what()) : nil
    }
}
