/// Where a batch sits: enough to read it back with one positioned read.
struct BatchLocation: Sendable, Equatable {
    var firstPosition: LogPosition
    var eventCount: UInt32
    var offset: Int
    var dataLength: UInt32

    var lastPosition: LogPosition { firstPosition + UInt64(eventCount) - 1 }
    var totalSize: Int { BatchHeader.framedSize + Int(dataLength) }
}

/// How a scan of one segment ended.
enum SegmentScanEnd: Sendable, Equatable {
    /// Every byte belongs to a valid batch.
    case clean
    /// The segment ends inside a batch (or in zero bytes): what a crash mid-write leaves.
    case tornTail(offset: Int, bytes: Int)
    /// A complete batch fails a check: corruption, not a crash. `hashes` when a chain hash
    /// (or the data under it) is what failed.
    case damaged(offset: Int, reason: String, hashes: LogVerifier.HashMismatch? = nil)
}

struct SegmentScan {
    var batches: [BatchLocation] = []
    var end: SegmentScanEnd = .clean
    /// Bytes of valid batches from the start of the segment.
    var validLength = 0
    /// The position after the last valid batch.
    var nextPosition: LogPosition
    /// The chain hash of the last valid batch (or the one the scan started from).
    var lastHash: [UInt8]
}

/// Walks the batches of one segment, checking each against everything stored about it:
/// header CRC, position continuity, the previous chain hash, data CRC, the chain hash,
/// the LZ4 frame and its content checksum, and every envelope.
enum SegmentScanner {
    /// Scans from byte `start` (a batch boundary: 0, or the end of a checkpointed prefix) to
    /// the file's end, or to byte `end` when given (one checkpoint record's stretch).
    static func scan(
        _ file: SystemFile,
        from start: Int = 0,
        to end: Int? = nil,
        expectedFirstPosition: LogPosition,
        previousHash: [UInt8],
        visit: (BatchHeader, BatchLocation, [RecordedEvent]) throws -> Void
    ) throws -> SegmentScan {
        let size = min(try file.size(), end ?? Int.max)
        var scan = SegmentScan(validLength: start, nextPosition: expectedFirstPosition, lastHash: previousHash)
        let decompressor = LZ4FrameDecompressor()
        var headerBytes = [UInt8](repeating: 0, count: BatchHeader.framedSize)
        var data: [UInt8] = []
        var offset = start
        while offset < size {
            let remaining = size - offset
            guard remaining >= BatchHeader.framedSize else {
                scan.end = try endInside(file, offset: offset, size: size, reason: "a partial batch header")
                return scan
            }
            try headerBytes.withUnsafeMutableBytes { (b) throws in try file.read(into: b, at: offset) }
            let header: BatchHeader
            do {
                header = try headerBytes.withUnsafeBytes { (b) throws in try BatchHeader.parse(b) }
            } catch {
                scan.end = try endInside(file, offset: offset, size: size, reason: EventLogError.wrapping(error).message)
                return scan
            }
            guard header.totalSize <= remaining else {
                scan.end = .tornTail(offset: offset, bytes: remaining)
                return scan
            }
            func damaged(_ reason: String, hashes: LogVerifier.HashMismatch? = nil) -> SegmentScan {
                var s = scan
                s.end = .damaged(offset: offset, reason: reason, hashes: hashes)
                return s
            }
            guard header.firstPosition == scan.nextPosition else {
                return damaged("batch starts at position \(header.firstPosition), expected \(scan.nextPosition)")
            }
            guard header.previousHash == scan.lastHash else {
                return damaged("batch's previous chain hash does not match the batch before it",
                               hashes: .init(expected: scan.lastHash, found: header.previousHash))
            }
            if data.count < Int(header.dataLength) { data = [UInt8](repeating: 0, count: Int(header.dataLength)) }
            let events: [RecordedEvent]
            // The chain hash the header records against the one its bytes give, when the data
            // (or the hash) is what failed: the auditor sees which hash broke, not only where.
            var mismatch: LogVerifier.HashMismatch?
            do {
                events = try data.withUnsafeMutableBytes { (d) throws -> [RecordedEvent] in
                    let frame = UnsafeMutableRawBufferPointer(rebasing: d[0..<Int(header.dataLength)])
                    try file.read(into: frame, at: offset + BatchHeader.framedSize)
                    let frameView = UnsafeRawBufferPointer(frame)
                    guard CRC32C.checksum(frameView) == header.dataChecksum else {
                        let found = header.computeChainHash(dataFrame: frameView)
                        if found != header.chainHash { mismatch = .init(expected: header.chainHash, found: found) }
                        throw EventLogError(.corrupted, "data frame checksum mismatch")
                    }
                    let found = header.computeChainHash(dataFrame: frameView)
                    guard found == header.chainHash else {
                        mismatch = .init(expected: header.chainHash, found: found)
                        throw EventLogError(.corrupted, "chain hash mismatch")
                    }
                    return try decompressor.decodeBatch(frame: frameView, header: header)
                }
            } catch {
                return damaged(EventLogError.wrapping(error).message, hashes: mismatch)
            }
            let location = BatchLocation(
                firstPosition: header.firstPosition, eventCount: header.eventCount, offset: offset, dataLength: header.dataLength
            )
            try visit(header, location, events)
            scan.batches.append(location)
            scan.nextPosition = header.lastPosition + 1
            scan.lastHash = header.chainHash
            offset += header.totalSize
            scan.validLength = offset
        }
        return scan
    }

    /// A header that cannot be read: torn when the bytes left are too few for a header or
    /// are all zero (a crash after the size grew, before the data landed); damaged otherwise.
    private static func endInside(_ file: SystemFile, offset: Int, size: Int, reason: String) throws -> SegmentScanEnd {
        let remaining = size - offset
        if remaining < BatchHeader.framedSize { return .tornTail(offset: offset, bytes: remaining) }
        var position = offset
        var chunk = [UInt8](repeating: 0, count: min(1 << 20, remaining))
        while position < size {
            let n = min(chunk.count, size - position)
            try chunk.withUnsafeMutableBytes { (b) throws in
                try file.read(into: UnsafeMutableRawBufferPointer(rebasing: b[0..<n]), at: position)
            }
            if chunk[0..<n].contains(where: { $0 != 0 }) { return .damaged(offset: offset, reason: reason) }
            position += n
        }
        return .tornTail(offset: offset, bytes: remaining)
    }
}
