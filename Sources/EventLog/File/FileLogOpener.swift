/// The segment the writer appends to. Its streams and keys are held once, by
/// `FileLogState`; the writer holds only those since the last checkpoint record
/// (`checkpoint.delta`) and reads the rest back from the checkpoint when it seals.
struct ActiveSegment {
    var file: SystemFile
    var size: Int
    var firstPosition: LogPosition
    /// The chain hash before the segment's first batch.
    var previousHash: [UInt8]
    var segmentIndex: Int
    var checkpoint: CheckpointWriter
}

/// Opens a data directory: loads sealed segments from their indexes (rebuilding stale
/// ones), scans the last segment from its checkpoint (`ActiveCheckpoint`), cuts a torn tail, and refuses (or, when told to, repairs)
/// damage anywhere before the end.
struct FileLogOpener {
    let directory: String
    let options: FileLog.Options

    struct Opened: ~Copyable {
        var state: FileLogState
        var report: FileLog.RecoveryReport
        var active: ActiveSegment?
        /// Bytes of the last segment taken from its checkpoint rather than scanned.
        var checkpointed = 0

        consuming func takeState() -> FileLogState { state }
    }

    func open() throws -> Opened {
        var state = FileLogState(sealed: SealedIndexes(directory: directory, writable: !options.readOnly, cacheCapacity: options.streamCacheCapacity))
        var report = FileLog.RecoveryReport()
        var checkpointed = 0
        var found = try SegmentNaming.segments(in: directory)
        if found.isEmpty {
            guard !options.readOnly else {
                if !Directory.exists(directory) {
                    throw EventLogError(.io, "there is no log at \(directory): the directory does not exist")
                }
                return Opened(state: state, report: report, active: nil)
            }
            let name = SegmentNaming.segmentName(firstPosition: 1)
            _ = try SystemFile.open(path(name), writable: true, create: true)
            try Directory.sync(directory)
            found = [(name, 1)]
        }
        var previousHash = BatchHeader.zeroHash
        var next: LogPosition = 1
        var active: ActiveSegment?
        var index = 0
        while index < found.count {
            let (name, first) = found[index]
            let isLast = index == found.count - 1
            guard first == next else {
                let reason = "segment \(name) starts at position \(first), expected \(next)"
                if options.repair && !options.readOnly && index > 0 {
                    // Keep the consistent prefix; the rest moves aside.
                    report.repair = .init(segment: name, offset: 0, position: next, reason: reason, bytesCut: 0,
                                          segmentsMovedAside: try moveAside(found[index...].map(\.name)))
                    found.removeSubrange(index...)
                    break
                }
                throw EventLogError(.corrupted, "\(reason): a segment is missing or misnamed in \(directory)")
            }
            let segmentPath = path(name)
            state.segments.append(SegmentRecord(name: name, path: segmentPath, firstPosition: first))
            let file = try SystemFile.open(segmentPath, writable: isLast && !options.readOnly)
            let fileSize = try file.size()

            // A sealed segment's checkpoint is a leftover of a crash during its seal.
            if !isLast && !options.readOnly { Directory.remove(path(SegmentNaming.checkpointName(forSegment: name))) }
            if !isLast, let loaded = loadIndex(segment: name, size: fileSize, firstPosition: first, previousHash: previousHash) {
                state.sealed.append(SealedSegment(name: name, path: segmentPath, index: loaded), activeStreams: [:])
                state.head = loaded.nextPosition - 1
                state.headHash = loaded.lastHash
                state.bytesOnDisk += fileSize
                next = loaded.nextPosition
                previousHash = loaded.lastHash
                index += 1
                continue
            }

            var builder = SegmentIndexBuilder(firstPosition: first, previousHash: previousHash)
            var checkpointLength = 0
            var records: [SealedSegmentIndex] = []
            if isLast, let loaded = ActiveCheckpoint.load(path: path(SegmentNaming.checkpointName(forSegment: name)), segment: file,
                                                          firstPosition: first, previousHash: previousHash) {
                // Only the tail after the checkpointed prefix is scanned; the prefix's streams
                // and keys stay on disk, in the records.
                records = loaded.records
                builder.index.batches = loaded.batches
                builder.index.segmentSize = loaded.segmentSize
                builder.index.lastHash = loaded.lastHash
                checkpointLength = loaded.validLength
                checkpointed = loaded.segmentSize
            }
            let start = (size: builder.index.segmentSize, next: builder.index.nextPosition, hash: builder.index.lastHash)
            // The scanned tail: what the in-memory state holds and the next checkpoint record
            // must cover. The last segment's streams are gathered there only.
            var tail = SegmentIndex(firstPosition: start.next, segmentSize: start.size, previousHash: start.hash,
                                    lastHash: start.hash, batches: [], streams: [:], idempotency: [:])
            let scan = try SegmentScanner.scan(file, from: start.size, expectedFirstPosition: start.next, previousHash: start.hash) {
                header, location, events throws in
                let (streams, keys) = SegmentIndexBuilder.group(events)
                if isLast {
                    tail.add(batch: location, chainHash: header.chainHash, streams: streams, keys: keys)
                    builder.add(batch: location, chainHash: header.chainHash, streams: [:], keys: [:])
                } else {
                    builder.add(batch: location, chainHash: header.chainHash, streams: streams, keys: keys)
                }
            }
            if let last = builder.index.batches.last {
                state.head = last.lastPosition
                state.headHash = builder.index.lastHash
            }
            next = scan.nextPosition
            previousHash = scan.lastHash
            builder.index.segmentSize = scan.validLength

            var end = scan.end
            if case .tornTail = end, !isLast {
                end = .damaged(offset: scan.validLength, reason: "sealed segment ends inside a batch")
            }
            if case .clean = end, !isLast {
                // A sealed segment whose index was unusable: rebuilt (written back unless read-only).
                let rebuilt = try SealedIndexes.install(builder.index, segment: name, directory: directory, write: !options.readOnly)
                state.sealed.append(SealedSegment(name: name, path: segmentPath, index: rebuilt), activeStreams: [:])
                if !options.readOnly { report.rebuiltIndexes.append(name) }
            } else {
                // The segment is the last one (or becomes it by a repair): the streams after its
                // checkpoint stay in memory.
                state.activeSegment = index
                state.activeBatches = builder.index.batches
                state.streams = isLast ? tail.streams : builder.index.streams
                state.idempotency = isLast ? tail.idempotency : builder.index.idempotency
                state.sealed.setRecords(isLast ? records : [], segmentPath: segmentPath)
            }
            switch end {
            case .clean:
                break
            case .tornTail(let offset, let bytes):
                if !options.readOnly {
                    try file.truncate(to: offset)
                    try file.sync()
                }
                report.tornTail = .init(segment: name, offset: offset, bytes: bytes, fromPosition: next)
            case .damaged(let offset, let reason, _):
                guard options.repair else {
                    throw EventLogError(
                        .corrupted,
                        "\(directory)/\(name) is damaged at byte \(offset), position \(next): \(reason). "
                            + "Nothing was changed. Inspect it with `replay verify --log \(directory)`; to cut the log at position \(next) (the cut bytes kept as *.damaged), run `replay repair --log \(directory)` or start `tally-server --repair`"
                    )
                }
                var movedAside: [String] = []
                if !options.readOnly {
                    let cut = try file.read(count: fileSize - offset, at: offset)
                    try Directory.writeAtomically(cut, to: segmentPath + ".damaged", directory: directory)
                    // A sealed segment was opened read-only: ftruncate needs a writable descriptor.
                    let writable = isLast ? file : try SystemFile.open(segmentPath, writable: true)
                    try writable.truncate(to: offset)
                    try writable.sync()
                    movedAside = try moveAside(found[(index + 1)...].map(\.name))
                }
                report.repair = .init(segment: name, offset: offset, position: next, reason: reason,
                                      bytesCut: fileSize - offset, segmentsMovedAside: movedAside)
                found.removeSubrange((index + 1)...)
            }
            state.bytesOnDisk += scan.validLength
            if index == found.count - 1 && !options.readOnly {
                // Reopen writable: a damaged sealed segment that became the last one was opened read-only.
                let writable = isLast ? file : try SystemFile.open(segmentPath, writable: true)
                let checkpoint = CheckpointWriter(
                    path: path(SegmentNaming.checkpointName(forSegment: name)), segmentFirst: first, length: isLast ? checkpointLength : 0,
                    records: isLast ? records : [], delta: isLast ? tail : builder.index, deltaStart: isLast ? start.size : 0
                )
                active = ActiveSegment(file: writable, size: scan.validLength, firstPosition: first, previousHash: builder.index.previousHash,
                                       segmentIndex: index, checkpoint: checkpoint)
            }
            index += 1
        }
        if active == nil && !options.readOnly, let last = state.segments.last {
            // The last segment was loaded from an index (possible only after a repair moved later ones aside).
            let file = try SystemFile.open(last.path, writable: true)
            // Scanned from the hash before it (its index's), not the hash it ends with.
            let before = state.sealed.removeLast()?.index.previousHash ?? previousHash
            var builder = SegmentIndexBuilder(firstPosition: last.firstPosition, previousHash: before)
            let scan = try SegmentScanner.scan(file, expectedFirstPosition: last.firstPosition, previousHash: before) {
                header, location, events throws in builder.add(batch: location, chainHash: header.chainHash, events: events)
            }
            guard case .clean = scan.end else {
                throw EventLogError(.corrupted, "\(last.path) is damaged at byte \(scan.validLength), though its index held; inspect it with `replay verify`")
            }
            state.activeSegment = state.segments.count - 1
            state.activeBatches = builder.index.batches
            state.streams = builder.index.streams
            state.idempotency = builder.index.idempotency
            state.sealed.setRecords([], segmentPath: last.path)
            let checkpoint = CheckpointWriter(path: path(SegmentNaming.checkpointName(forSegment: last.name)), segmentFirst: last.firstPosition,
                                              length: 0, delta: builder.index, deltaStart: 0)
            active = ActiveSegment(file: file, size: try file.size(), firstPosition: last.firstPosition, previousHash: before,
                                   segmentIndex: state.segments.count - 1, checkpoint: checkpoint)
        }
        return Opened(state: state, report: report, active: active, checkpointed: checkpointed)
    }

    private func path(_ name: String) -> String { directory + "/" + name }

    /// The segment's index if it is readable and matches the segment: same first position,
    /// same size, same chain hash the previous segment ended with.
    /// Reads only the index's header, batch list, fences and filters (`SealedSegmentIndex`):
    /// stream and key entries stay on disk.
    private func loadIndex(segment: String, size: Int, firstPosition: LogPosition, previousHash: [UInt8]) -> SealedSegmentIndex? {
        let indexPath = path(SegmentNaming.indexName(forSegment: segment))
        guard Directory.exists(indexPath),
              let file = try? SystemFile.open(indexPath, writable: false),
              let index = try? SealedSegmentIndex(source: .file(file)),
              index.firstPosition == firstPosition, index.segmentSize == size,
              index.previousHash == previousHash, !index.batches.isEmpty
        else { return nil }
        return index
    }

    private func moveAside(_ names: [String]) throws -> [String] {
        for name in names {
            try Directory.rename(path(name), path(name) + ".damaged")
            Directory.remove(path(SegmentNaming.indexName(forSegment: name)))
            Directory.remove(path(SegmentNaming.checkpointName(forSegment: name)))
        }
        if !names.isEmpty { try Directory.sync(directory) }
        return names
    }
}
