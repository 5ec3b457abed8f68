extension LogVerifier {
    /// Walks a log directory without trusting any index or open writer state, checking every
    /// batch (header CRC, positions, chain, data CRC, LZ4 checksum, envelopes) and reporting
    /// the first break.
    ///
    /// Verifies `directory`. With `expected`, also checks that the log still holds that exact
    /// prefix: the batch ending at `expected.position` has `expected.chainHash`.
    public static func verify(directory: String, expected: LogHead? = nil, progress: ((LogPosition) -> Void)? = nil) throws -> Report {
        let segments = try SegmentNaming.segments(in: directory)
        var report = Report(segments: segments.count, batches: 0, events: 0, head: LogHead(position: 0, chainHash: BatchHeader.zeroHash))
        var next: LogPosition = 1
        var hash = BatchHeader.zeroHash
        var digestChecked = expected == nil || expected!.position == 0
        if let expected, expected.position == 0, expected.chainHash != BatchHeader.zeroHash {
            report.firstBreak = Break(position: 0, segment: "-", offset: 0, reason: "the digest names position 0 with a non-zero hash")
            return report
        }
        for (i, (name, first)) in segments.enumerated() {
            guard first == next else {
                report.firstBreak = Break(position: next, segment: name, offset: 0, reason: "segment starts at position \(first), expected \(next)")
                return report
            }
            let file = try SystemFile.open(directory + "/" + name, writable: false)
            var digestBreak: Break?
            let scan = try SegmentScanner.scan(file, expectedFirstPosition: next, previousHash: hash) { header, location, _ throws in
                report.batches += 1
                report.events += UInt64(header.eventCount)
                if let expected, !digestChecked, digestBreak == nil, header.firstPosition <= expected.position {
                    if header.lastPosition == expected.position {
                        digestChecked = true
                        if header.chainHash != expected.chainHash {
                            digestBreak = Break(position: header.firstPosition, segment: name, offset: location.offset,
                                                reason: "chain hash at position \(expected.position) differs from the digest: history up to it was changed",
                                                hashes: .init(expected: expected.chainHash, found: header.chainHash))
                        }
                    } else if header.lastPosition > expected.position {
                        digestChecked = true
                        digestBreak = Break(position: expected.position, segment: name, offset: location.offset,
                                            reason: "no batch ends at the digest's position \(expected.position): history was rewritten")
                    }
                }
                progress?(header.lastPosition)
            }
            if let digestBreak {
                report.firstBreak = digestBreak
                return report
            }
            next = scan.nextPosition
            hash = scan.lastHash
            report.head = LogHead(position: next - 1, chainHash: hash)
            switch scan.end {
            case .clean:
                break
            case .tornTail(let offset, let bytes) where i == segments.count - 1:
                report.tornTailBytes = bytes
                _ = offset
            case .tornTail(let offset, _):
                report.firstBreak = Break(position: next, segment: name, offset: offset, reason: "sealed segment ends inside a batch")
                return report
            case .damaged(let offset, let reason, let hashes):
                report.firstBreak = Break(position: next, segment: name, offset: offset, reason: reason, hashes: hashes)
                return report
            }
        }
        if let expected, !digestChecked {
            report.firstBreak = Break(position: report.head.position + 1, segment: segments.last?.name ?? "-", offset: 0,
                                      reason: "the log ends at position \(report.head.position), before the digest's position \(expected.position)")
        }
        return report
    }
}
