/// One `tally_batches` row: a batch header's fields as columns plus its LZ4 data frame.
/// Reading one back checks every field against the same bounds a `FileLog` header gets.
struct PostgresBatchRow: Sendable {
    static let columns = "position, event_count, raw_length, min_recorded_at_us, max_recorded_at_us, data_checksum, chain_hash, idempotency_key, frame"

    var header: BatchHeader
    var frame: [UInt8]

    /// Reads row `row` of a result selected with `columns`; `previousHash` is the hash the
    /// batch before it ended with, when the caller knows it (verify and reads check chains).
    init(_ result: PGResult, row: Int, previousHash: [UInt8] = BatchHeader.zeroHash) throws {
        let first = try result.int64(row, 0)
        let count = try result.int32(row, 1)
        let rawLength = try result.int32(row, 2)
        let minAt = try result.int64(row, 3)
        let maxAt = try result.int64(row, 4)
        let checksum = UInt32(bitPattern: try result.int32(row, 5))
        let chain = try result.bytes(row, 6)
        let frame = try result.bytes(row, 8)
        guard first >= 1, count >= 1, count <= Int32(EventLimits.maxBatchEvents), UInt64(first) <= UInt64.max - UInt64(count) else {
            throw EventLogError(.corrupted, "tally_batches row at position \(first) holds \(count) events")
        }
        guard rawLength >= count, Int(rawLength) <= EventLimits.maxBatchBytes else {
            throw EventLogError(.corrupted, "tally_batches row at position \(first) has raw length \(rawLength)")
        }
        guard !frame.isEmpty, frame.count <= BatchHeader.maxFrameSize(rawLength: Int(rawLength)) else {
            throw EventLogError(.corrupted, "tally_batches row at position \(first) has a \(frame.count)-byte frame for \(rawLength) raw bytes")
        }
        guard minAt <= maxAt, chain.count == 32 else {
            throw EventLogError(.corrupted, "tally_batches row at position \(first) has a reversed time range or a bad chain hash")
        }
        header = BatchHeader(
            firstPosition: UInt64(first), eventCount: UInt32(count), rawLength: UInt32(rawLength), minRecordedAt: minAt,
            maxRecordedAt: maxAt, dataLength: UInt32(frame.count), dataChecksum: checksum, previousHash: previousHash, chainHash: chain
        )
        self.frame = frame
    }

    static func encode(_ header: BatchHeader, key: String?, frame: UnsafeRawBufferPointer, into copy: inout PGCopyEncoder) {
        copy.beginRow(fields: 9)
        copy.add(Int64(bitPattern: header.firstPosition))
        copy.add(Int32(header.eventCount))
        copy.add(Int32(header.rawLength))
        copy.add(header.minRecordedAt)
        copy.add(header.maxRecordedAt)
        copy.add(Int32(bitPattern: header.dataChecksum))
        header.chainHash.withUnsafeBytes { copy.add($0) }
        if let key { copy.add(key) } else { copy.addNull() }
        copy.add(frame)
    }

    /// Checks the frame's CRC-32C and decodes its events (LZ4 content checksum included).
    func decode(_ decompressor: LZ4FrameDecompressor) throws -> [RecordedEvent] {
        try frame.withUnsafeBytes { frame in
            guard CRC32C.checksum(frame) == header.dataChecksum else {
                throw EventLogError(.corrupted, "batch at position \(header.firstPosition): data checksum mismatch")
            }
            do {
                return try decompressor.decodeBatch(frame: frame, header: header)
            } catch {
                throw EventLogError(.corrupted, "batch at position \(header.firstPosition): \(EventLogError.wrapping(error).message)")
            }
        }
    }

    /// The chain hash this row must carry after `previousHash`.
    func expectedChainHash(after previousHash: [UInt8]) -> [UInt8] {
        var header = header
        header.previousHash = previousHash
        return frame.withUnsafeBytes { header.computeChainHash(dataFrame: $0) }
    }
}
