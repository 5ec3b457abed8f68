/// An append waiting for a batch to be published, and what to tell it then: its result, or
/// a conflict decided against that batch (told only once the batch is readable, so that a
/// loser that reads the stream and decides again sees the winner's events).
struct Acknowledgement {
    var continuation: CheckedContinuation<AppendResult, any Error>
    var outcome: Result<AppendResult, any Error>
}

/// A batch written to its segment, waiting to be made durable and published.
struct WrittenBatch {
    var sequence: Int
    var location: BatchLocation
    var chainHash: [UInt8]
    var segmentIndex: Int
    var file: SystemFile
    var touched: [String: SegmentStream]
    var keys: [String: AppendResult]
    var acknowledgements: [Acknowledgement]

    var lastPosition: LogPosition { location.lastPosition }
}
