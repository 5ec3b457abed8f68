/// Segment files are named by their first position, zero-padded so that names sort in
/// position order: `00000000000000000001.seg`. The sealed segment's index sits beside it, and the active segment's checkpoint.
enum SegmentNaming {
    static let segmentSuffix = ".seg"
    static let indexSuffix = ".idx"
    static let checkpointSuffix = ".ckp"
    static let lockFile = "LOCK"

    static func segmentName(firstPosition: LogPosition) -> String {
        let digits = String(firstPosition)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits + segmentSuffix
    }

    static func indexName(forSegment name: String) -> String {
        String(name.dropLast(segmentSuffix.count)) + indexSuffix
    }

    /// The active segment's checkpoint file (see `ActiveCheckpoint`).
    static func checkpointName(forSegment name: String) -> String {
        String(name.dropLast(segmentSuffix.count)) + checkpointSuffix
    }

    /// The first position encoded in a segment file name, or nil if it is not one.
    static func firstPosition(ofSegment name: String) -> LogPosition? {
        guard name.hasSuffix(segmentSuffix) else { return nil }
        let digits = name.dropLast(segmentSuffix.count)
        guard digits.count == 20, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return LogPosition(digits)
    }

    /// The segments in a directory, sorted by first position.
    static func segments(in directory: String) throws -> [(name: String, firstPosition: LogPosition)] {
        try Directory.list(directory)
            .compactMap { name in firstPosition(ofSegment: name).map { (name, $0) } }
            .sorted { $0.firstPosition < $1.firstPosition }
    }
}
